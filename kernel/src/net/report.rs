//! What the kernel tells the host about its counters: the `ferrix-stats:` / `ferrix-sched:`
//! lines printed at exit (`ferrix.stats`) and the live records pushed every N ms
//! (`ferrix.stats-ms=N`, format in `ferrix_abi::stats`). Both are built from one
//! [`CoreSnapshot`] per core, so the final live record holds exactly the values printed.
//!
//! Live records come from core 0's timer interrupt (a 1 kHz APIC tick started when the option
//! is on, or the profiler's): no lock is waited for there (the heap masks interrupts while
//! it is locked, so allocating is safe). A core
//! whose endpoint is busy at that moment (in the middle of its own poll) is reported with the
//! values of its previous snapshot, at most one interval old. Cores serving TCP
//! (`serve_tcp`) take interrupts only in app handlers and halts, so their loop calls
//! [`on_tick`] itself whenever it finds nothing to do; the final record is always sent.

use super::{ENDPOINTS, ForwardStats, forward_stats, steer, zygos};
use crate::percpu::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrix_abi::stats::{Header, RECORD_MAX, RecordWriter};
use ferrix_drivers::QueueStats;
use ferrix_net::Stats;

/// How long [`snapshot`] waits for a core that is in the middle of a poll (long: a vCPU can be
/// descheduled by the host while it holds its endpoint).
const STATS_WAIT_NS: u64 = 2_000_000_000;

/// The scheduler counters of one core, in the order of [`SCHED_KEYS`].
type SchedCounters = [u64; 9];
/// Names of the scheduler counters (the `ferrix-sched:` line's and the record's keys).
const SCHED_KEYS: [&str; 9] = [
    "events",
    "local",
    "steals",
    "ipis_sent",
    "ipi_runs",
    "remote_batches",
    "refused",
    "busy_ns",
    "app_ns",
];

/// One core's counters at one moment.
#[derive(Clone)]
pub struct CoreSnapshot {
    /// Its endpoint's queue pair, the queue's counters and its stack's (None: no endpoint).
    pub net: Option<(usize, QueueStats, Stats)>,
    /// Its scheduler counters (None: `serve_tcp` is not running).
    pub sched: Option<SchedCounters>,
    /// Its scheduler queue depths: ready flows, waiting remote batches (live records only;
    /// None without `serve_tcp`).
    pub depths: Option<(usize, usize)>,
}

/// Counters of core `core`'s endpoint: None if it has none; `Err(())` if it is held by its
/// core (or by the caller) right now.
fn try_net_of(core: usize) -> Result<Option<(usize, QueueStats, Stats)>, ()> {
    let slot = ENDPOINTS.get(core).ok_or(())?;
    let g = slot.try_lock().ok_or(())?;
    Ok(g.as_ref()
        .map(|ep| (ep.queue_index(), ep.queue_stats(), ep.stack.stats().clone())))
}

/// Statistics of core `core`'s endpoint: the queue pair it uses (its own, or its owner's when
/// flows are steered to it in software: then the queue counters are zero), the queue's
/// counters and its stack's. None if the core has no endpoint, or it stayed busy (e.g. this
/// very core, inside a poll) for [`STATS_WAIT_NS`].
pub fn stats_of(core: usize) -> Option<(usize, QueueStats, Stats)> {
    let deadline = crate::time::now_ns() + STATS_WAIT_NS;
    loop {
        if let Ok(r) = try_net_of(core) {
            return r;
        }
        if crate::time::now_ns() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
}

fn sched_of(core: usize) -> Option<SchedCounters> {
    zygos::policy()?;
    let s = zygos::stats(core)?;
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Some([
        l(&s.events),
        l(&s.local_runs),
        l(&s.steals),
        l(&s.ipis_sent),
        l(&s.ipi_runs),
        l(&s.remote_batches),
        l(&s.refused),
        l(&s.busy_ns),
        l(&s.app_ns),
    ])
}

/// Core `core`'s counters, waiting for its endpoint like [`stats_of`].
fn snapshot(core: usize) -> CoreSnapshot {
    CoreSnapshot {
        net: stats_of(core),
        sched: sched_of(core),
        depths: zygos::queue_depths(core),
    }
}

/// Prints every core's statistics (`ferrix run --stats`): one `ferrix-stats:` line per core
/// with its counters, then one per non-zero drop reason.
pub fn print_stats() {
    let (snaps, fwd, lost) = snapshot_all();
    print_lines(&snaps, fwd, lost);
}

/// Every core's snapshot (waiting for busy endpoints) and the VM-wide counters.
fn snapshot_all() -> (alloc::vec::Vec<CoreSnapshot>, ForwardStats, u64) {
    let cores = crate::sdk::cpus().min(MAX_CPUS);
    let snaps = (0..cores).map(snapshot).collect();
    (snaps, forward_stats(), steer::dropped())
}

/// At exit: takes every core's snapshot once, prints it if `print` (`ferrix.stats`) and sends
/// it as the final live record if live records are on.
pub fn report_at_exit(print: bool) {
    let live = LIVE_MS.load(Ordering::Relaxed) > 0 && !FINAL_SENT.swap(true, Ordering::AcqRel);
    if !print && !live {
        return;
    }
    let (snaps, fwd, lost) = snapshot_all();
    if print {
        print_lines(&snaps, fwd, lost);
    }
    if live {
        let mut buf = LIVE_BUF.lock();
        let now = crate::time::now_ns();
        push(&mut buf[..], now, true, &snaps, fwd, lost);
    }
}

fn print_lines(snaps: &[CoreSnapshot], f: ForwardStats, steered_lost: u64) {
    for (core, s) in snaps.iter().enumerate() {
        let Some((q, qs, st)) = &s.net else {
            continue;
        };
        let steered = if *q == core { "" } else { " (steered)" };
        crate::println!(
            "ferrix-stats: core {core} queue {q}{steered}: rx {} frames {} bytes, tx {} frames {} bytes, drops {}, driver rx_dropped {} tx_ring_full {} device_errors {}",
            st.rx_packets,
            st.rx_bytes,
            st.tx_packets,
            st.tx_bytes,
            st.total_drops(),
            qs.rx_dropped,
            qs.tx_ring_full,
            qs.device_errors
        );
        for (reason, n) in st.drop_counts() {
            if n > 0 {
                crate::println!("ferrix-stats: core {core} drop {} {n}", reason.name());
            }
        }
    }
    if f != ForwardStats::default() {
        crate::println!(
            "ferrix-stats: forwarded in place {} parked for ARP {} copied {} failed {}",
            f.in_place,
            f.parked,
            f.copied,
            f.failed
        );
    }
    if let Some(policy) = zygos::policy() {
        for (core, s) in snaps.iter().enumerate() {
            let c = s.sched.unwrap_or_default();
            crate::println!(
                "ferrix-sched: core {core} policy {policy}: events {} local {} steals {} ipis_sent {} ipi_runs {} remote_batches {} refused {} busy_ns {} app_ns {}",
                c[0],
                c[1],
                c[2],
                c[3],
                c[4],
                c[5],
                c[6],
                c[7],
                c[8],
            );
        }
    }
    if steered_lost > 0 {
        crate::println!(
            "ferrix-stats: steering dropped {steered_lost} frames (a steered core's inbox was full)"
        );
    }
}

/// Live record interval in ms (0: off).
static LIVE_MS: AtomicU64 = AtomicU64::new(0);
/// Guest time of the next live record.
static NEXT_NS: AtomicU64 = AtomicU64::new(0);
/// Sequence number of the next record.
static SEQ: AtomicU64 = AtomicU64::new(0);
/// Records that did not fit in [`RECORD_MAX`] (not sent).
static OVERSIZED: AtomicU64 = AtomicU64::new(0);
/// The final record went out (once per boot).
static FINAL_SENT: AtomicBool = AtomicBool::new(false);
/// The record buffer (a static: the timer interrupt does not allocate).
static LIVE_BUF: spin::Mutex<[u8; RECORD_MAX]> = spin::Mutex::new([0; RECORD_MAX]);
/// Each core's last snapshot, for when its endpoint is busy at the next tick.
static LAST: [spin::Mutex<Option<CoreSnapshot>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];

/// Rate of the APIC tick that drives live records (when the profiler does not tick already).
const TICK_HZ: u32 = 1000;

/// Boot CPU: turns live records on, one every `ms` milliseconds (0: off).
pub fn enable_live(ms: u32) {
    LIVE_MS.store(u64::from(ms), Ordering::Relaxed);
}

/// Core 0, before the app entry: starts the tick that drives live records, unless the
/// profiler's periodic timer already runs (its ticks then drive them).
pub fn start_live_on_this_core(profiler_ticks: bool) {
    let ms = LIVE_MS.load(Ordering::Relaxed);
    if ms == 0 || crate::percpu::core_id() != 0 {
        return;
    }
    NEXT_NS.store(crate::time::now_ns() + ms * 1_000_000, Ordering::Relaxed);
    if !profiler_ticks {
        crate::time::start_periodic(TICK_HZ, |_| {});
    }
}

/// From every timer interrupt, and from `serve_tcp`'s idle turns (interrupts off there): on
/// core 0, pushes a record when one is due.
pub fn on_tick(core: usize) {
    let ms = LIVE_MS.load(Ordering::Relaxed);
    if ms == 0 || core != 0 || FINAL_SENT.load(Ordering::Acquire) {
        return;
    }
    let now = crate::time::now_ns();
    if now < NEXT_NS.load(Ordering::Relaxed) {
        return;
    }
    NEXT_NS.store(now + ms * 1_000_000, Ordering::Relaxed);
    // The exit path may hold the buffer (on another core, or this one before the tick).
    let Some(mut buf) = LIVE_BUF.try_lock() else {
        return;
    };
    let cores = crate::sdk::cpus().min(MAX_CPUS);
    let mut snaps = alloc::vec::Vec::with_capacity(cores);
    for (core, last) in LAST.iter().enumerate().take(cores) {
        let sched = sched_of(core);
        let depths = zygos::queue_depths(core);
        // Only this handler takes `LAST`; try_lock keeps it that way without a deadlock.
        let Some(mut last) = last.try_lock() else {
            snaps.push(CoreSnapshot {
                net: None,
                sched,
                depths,
            });
            continue;
        };
        let net = match try_net_of(core) {
            Ok(n) => n,
            Err(()) => last.as_ref().and_then(|s| s.net.clone()),
        };
        let s = CoreSnapshot { net, sched, depths };
        *last = Some(s.clone());
        snaps.push(s);
    }
    push(
        &mut buf[..],
        now,
        false,
        &snaps,
        forward_stats(),
        steer::dropped(),
    );
}

/// Encodes one record of `snaps` (core i is `snaps[i]`), stamped `t_ns` (for periodic
/// records the time the record fell due, so consecutive stamps are at least an interval
/// apart however long the snapshots took), and sends it.
fn push(
    buf: &mut [u8],
    t_ns: u64,
    is_final: bool,
    snaps: &[CoreSnapshot],
    f: ForwardStats,
    lost: u64,
) {
    let header = Header {
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        t_ns,
        is_final,
        cores: snaps.len() as u64,
    };
    let mut w = RecordWriter::new(buf, header);
    w.field("fwd_in_place", f.in_place);
    w.field("fwd_parked", f.parked);
    w.field("fwd_copied", f.copied);
    w.field("fwd_failed", f.failed);
    w.field("steer_dropped", lost);
    w.field("oversized", OVERSIZED.load(Ordering::Relaxed));
    for (core, s) in snaps.iter().enumerate() {
        w.core(core as u64);
        if let Some((q, qs, st)) = &s.net {
            for (k, v) in [
                ("queue", *q as u64),
                ("rx", st.rx_packets),
                ("rx_bytes", st.rx_bytes),
                ("tx", st.tx_packets),
                ("tx_bytes", st.tx_bytes),
                ("drops", st.total_drops()),
                ("rx_dropped", qs.rx_dropped),
                ("tx_ring_full", qs.tx_ring_full),
                ("device_errors", qs.device_errors),
            ] {
                w.field(k, v);
            }
            for (reason, n) in st.drop_counts().filter(|&(_, n)| n > 0) {
                w.drop_field(reason.name(), n);
            }
        }
        for (k, v) in SCHED_KEYS.iter().zip(s.sched.iter().flatten()) {
            w.field(k, *v);
        }
        if let Some((ready, remote)) = s.depths {
            w.field("ready_depth", ready as u64);
            w.field("remote_depth", remote as u64);
        }
    }
    match w.finish() {
        Some(rec) => crate::arch::vmm::push_stats(rec),
        None => {
            OVERSIZED.fetch_add(1, Ordering::Relaxed);
        }
    }
}
