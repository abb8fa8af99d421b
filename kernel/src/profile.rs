//! A sampling profiler for guest code: with `ferrix.profile=HZ` on the command line every core
//! runs its APIC timer at HZ and records the interrupted instruction pointer; at exit the
//! kernel prints the most frequent addresses (`ferrix-profile:` lines), which
//! `ferrix profile` maps to function names. Under QEMU's `-icount` the timer follows guest
//! instructions, so the profile counts instructions, not noisy host time.

use crate::percpu::MAX_CPUS;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Distinct addresses counted per core (an open-addressing table, so the interrupt handler
/// never allocates and a long run keeps counting).
pub const SLOTS_PER_CORE: usize = 1 << 14;
/// Probes before a sample is dropped as "table full".
const MAX_PROBES: usize = 32;
/// Addresses printed at exit.
pub const TOP: usize = 4000;

static ENABLED: AtomicBool = AtomicBool::new(false);
static HZ: AtomicU32 = AtomicU32::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Per-core (address, count) tables; only the owning core writes (from its timer interrupt).
static SAMPLES: [spin::Mutex<Vec<(u64, u64)>>; MAX_CPUS] =
    [const { spin::Mutex::new(Vec::new()) }; MAX_CPUS];

/// Boot CPU: turns the profiler on at `hz` for `cpus` cores (buffers are allocated here, never
/// in the interrupt handler).
pub fn enable(hz: u32, cpus: usize) {
    for s in SAMPLES.iter().take(cpus) {
        *s.lock() = alloc::vec![(0, 0); SLOTS_PER_CORE];
    }
    HZ.store(hz, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Release);
}

/// Whether the profiler is on (every core's timer then ticks at its rate).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
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
    let counted = SAMPLES[core]
        .try_lock()
        .is_some_and(|mut t| count(&mut t[..], rip));
    if !counted {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Adds one sample of `rip` to an open-addressing table; false if no slot was found.
fn count(t: &mut [(u64, u64)], rip: u64) -> bool {
    if t.is_empty() {
        return false;
    }
    let mut i = (rip.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % t.len();
    for _ in 0..MAX_PROBES {
        match t[i] {
            (a, ref mut n) if a == rip => {
                *n += 1;
                return true;
            }
            (_, 0) => {
                t[i] = (rip, 1);
                return true;
            }
            _ => i = (i + 1) % t.len(),
        }
    }
    false
}

/// Prints the profile: total samples, then the `TOP` most frequent addresses.
pub fn report() {
    if !ENABLED.swap(false, Ordering::AcqRel) {
        return;
    }
    let mut hist: BTreeMap<u64, u64> = BTreeMap::new();
    let mut total = 0u64;
    for s in SAMPLES.iter().take(crate::sdk::cpus()) {
        if let Some(t) = s.try_lock() {
            for &(rip, n) in t.iter().filter(|e| e.1 > 0) {
                *hist.entry(rip).or_default() += n;
                total += n;
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
