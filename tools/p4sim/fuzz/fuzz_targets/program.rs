//! Fuzzes p4sim's front end: any text loads or gives a `LoadError`, never a panic.
//! Run: `cargo +nightly fuzz run program` in tools/p4sim (seed with p4/*.p4).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let _ = p4sim::Switch::load(&src, 0);
});
