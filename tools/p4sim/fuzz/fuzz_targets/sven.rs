//! Fuzzes p4sim's packet path on p4/sven.p4 (SVEN in front of JBSQ) with five servers,
//! drop rates 0.25 and the control loop every 8 frames: each input is a sequence of frames
//! (2-byte big-endian length prefixes, the first byte after it the ingress port). A
//! `PacketError` other than the pass limit is a finding (`p4sim::fuzzing::SvenHarness`;
//! tests/fuzz_paths.rs runs the same harness on bounded random inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p4sim::fuzzing::SvenHarness;
use std::sync::OnceLock;

/// The loaded program with its entries, built once and cloned per input.
fn base() -> Option<&'static SvenHarness> {
    static BASE: OnceLock<Option<SvenHarness>> = OnceLock::new();
    BASE.get_or_init(|| SvenHarness::new().ok()).as_ref()
}

fuzz_target!(|data: &[u8]| {
    if let Some(h) = base() {
        let r = h.run(data);
        assert!(r.is_ok(), "{:?}", r.err());
    }
});
