//! Fuzzes p4sim's packet path on p4/jbsq.p4 with five servers: each input is a sequence of
//! frames (2-byte big-endian length prefixes, the first byte after it the ingress port),
//! each run to completion with a bound on recirculations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p4sim::control::jbsq;
use std::sync::OnceLock;

/// The loaded program with its entries, built once and cloned per input.
fn base() -> Option<&'static p4sim::Switch> {
    static BASE: OnceLock<Option<p4sim::Switch>> = OnceLock::new();
    BASE.get_or_init(|| {
        let cfg = p4sim::fuzzing::jbsq_config(2);
        jbsq::switch(&cfg, 1).ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(mut sw) = base().cloned() else {
        return;
    };
    for (port, frame) in p4sim::fuzzing::frames(data) {
        let _ = sw.run(port, frame, 0, 256);
    }
});
