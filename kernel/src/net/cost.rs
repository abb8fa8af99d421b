//! Where a busy poll's time goes (`ferrix.netcost`): each poll of an own queue pair that
//! received frames is timed in four stages, the driver's receive burst (`rx`), the stack and
//! the app's handler over every frame (`stack+app`), TCP (`tcp`: smoltcp and the app's TCP
//! handler), and sending the burst (`flush`: the driver's transmit, the notification). Under
//! `--profile microvm-icount` a guest nanosecond is one instruction, so the figures are
//! instruction counts. At exit each core prints
//! `ferrix-cost: core C: P busy polls, F frames; per frame: rx X stack+app Y tcp Z flush W (clock read K, taken out)`.
//!
//! Off by default: then a poll pays one relaxed load for it.

use crate::percpu::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// The stages, in order.
pub(crate) const STAGES: [&str; 4] = ["rx", "stack+app", "tcp", "flush"];

struct Core {
    polls: AtomicU64,
    frames: AtomicU64,
    ns: [AtomicU64; 4],
}

static COST: [Core; MAX_CPUS] = [const {
    Core {
        polls: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        ns: [const { AtomicU64::new(0) }; 4],
    }
}; MAX_CPUS];

/// Turns the meter on (boot, from `ferrix.netcost`).
pub(crate) fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether polls are timed.
#[inline]
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Adds a poll that received `frames` frames to `core`'s totals; `at` holds the clock at its
/// start and at the end of each stage.
pub(crate) fn record(core: usize, frames: usize, at: &[u64; 5]) {
    let Some(c) = COST.get(core) else { return };
    if frames == 0 {
        return;
    }
    c.polls.fetch_add(1, Ordering::Relaxed);
    c.frames.fetch_add(frames as u64, Ordering::Relaxed);
    for (i, ns) in c.ns.iter().enumerate() {
        ns.fetch_add(at[i + 1].saturating_sub(at[i]), Ordering::Relaxed);
    }
}

/// What one clock read costs (each stage's figure holds one).
fn clock_read_ns() -> u64 {
    const N: u64 = 1000;
    let t0 = crate::time::now_ns();
    let mut last = t0;
    for _ in 0..N {
        last = core::hint::black_box(crate::time::now_ns());
    }
    last.saturating_sub(t0) / N
}

/// Prints every core's figures (at exit; the first core to exit prints, once).
pub(crate) fn report() {
    if !ON.swap(false, Ordering::AcqRel) {
        return;
    }
    let k = clock_read_ns();
    for (core, c) in COST.iter().enumerate() {
        let (polls, frames) = (
            c.polls.load(Ordering::Relaxed),
            c.frames.load(Ordering::Relaxed),
        );
        if frames == 0 {
            continue;
        }
        let mut line = alloc::format!(
            "ferrix-cost: core {core}: {polls} busy polls, {frames} frames; per frame:"
        );
        for (name, ns) in STAGES.iter().zip(&c.ns) {
            let per = ns
                .load(Ordering::Relaxed)
                .saturating_sub(k.saturating_mul(polls))
                / frames;
            line.push_str(&alloc::format!(" {name} {per}"));
        }
        crate::println!("{line} (clock read {k}, taken out)");
    }
}
