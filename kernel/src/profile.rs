//! A sampling profiler for guest code: with `ferrix.profile=HZ` on the command line every core
//! runs its APIC timer at HZ and records the interrupted instruction pointer; at exit the
//! kernel prints the most frequent addresses (`ferrix-profile:` lines), which
//! `ferrix profile` maps to function names. Under QEMU's `-icount` the timer follows guest
//! instructions, so the profile counts instructions, not noisy host time.

use crate::percpu::MAX_CPUS;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Samples kept per core.
pub const SAMPLES_PER_CORE: usize = 1 << 16;
/// Addresses printed at exit.
pub const TOP: usize = 60;

static ENABLED: AtomicBool = AtomicBool::new(false);
static HZ: AtomicU32 = AtomicU32::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Per-core sample buffers; only the owning core pushes (from its timer interrupt).
static SAMPLES: [spin::Mutex<Vec<u64>>; MAX_CPUS] =
    [const { spin::Mutex::new(Vec::new()) }; MAX_CPUS];

/// Boot CPU: turns the profiler on at `hz` for `cpus` cores (buffers are allocated here, never
/// in the interrupt handler).
pub fn enable(hz: u32, cpus: usize) {
    for s in SAMPLES.iter().take(cpus) {
        *s.lock() = Vec::with_capacity(SAMPLES_PER_CORE);
    }
    HZ.store(hz, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Release);
}

/// Every core, before the app entry: starts its sampling timer.
pub fn start_on_this_core() {
    if ENABLED.load(Ordering::Acquire) {
        crate::time::start_periodic(HZ.load(Ordering::Relaxed), |_| {});
    }
}

/// From the timer interrupt: records `rip` for this core.
pub fn sample(rip: u64) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let core = crate::percpu::core_id();
    // The lock is never contended except by `report` at exit.
    match SAMPLES[core].try_lock() {
        Some(mut v) if v.len() < v.capacity() => v.push(rip),
        _ => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints the profile: total samples, then the `TOP` most frequent addresses.
pub fn report() {
    if !ENABLED.swap(false, Ordering::AcqRel) {
        return;
    }
    let mut hist: BTreeMap<u64, u64> = BTreeMap::new();
    let mut total = 0u64;
    for s in SAMPLES.iter().take(crate::sdk::cpus()) {
        if let Some(v) = s.try_lock() {
            for &rip in v.iter() {
                *hist.entry(rip).or_default() += 1;
                total += 1;
            }
        }
    }
    let mut top: Vec<(u64, u64)> = hist.into_iter().collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    crate::println!(
        "ferrix-profile: samples {total} dropped {} hz {}",
        DROPPED.load(Ordering::Relaxed),
        HZ.load(Ordering::Relaxed)
    );
    for (rip, n) in top.into_iter().take(TOP) {
        crate::println!("ferrix-profile: {rip:#x} {n}");
    }
}
