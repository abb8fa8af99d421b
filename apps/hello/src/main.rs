//! hello: every core prints its id, then the cores pass IPIs around a ring (core i interrupts
//! core i+1); core 0 checks that every core received its IPI and exits 0.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use ferrix::percpu::MAX_CPUS;
use ferrix::println;

/// IPIs each core received through the ring.
static RING_HITS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Cores that have seen their ring IPI.
static ANSWERED: AtomicUsize = AtomicUsize::new(0);
/// Cores that have printed their greeting (the ring starts after everyone printed).
static GREETED: AtomicUsize = AtomicUsize::new(0);

/// How long core 0 waits for the ring to complete.
const RING_TIMEOUT_NS: u64 = 20_000_000_000;

fn on_ipi(core: usize) {
    RING_HITS[core].fetch_add(1, Ordering::Relaxed);
}

fn main(core: usize) {
    let n = ferrix::cpus();
    if core == 0 {
        ferrix::ipi::set_handler(on_ipi);
    }
    println!("hello from core {core} of {n}");
    GREETED.fetch_add(1, Ordering::AcqRel);
    while GREETED.load(Ordering::Acquire) < n {
        core::hint::spin_loop();
    }
    if !ferrix::ipi::send((core + 1) % n) {
        println!("core {core}: core {} is not up", (core + 1) % n);
        ferrix::exit(1);
    }
    let deadline = ferrix::time::now_ns() + RING_TIMEOUT_NS;
    while RING_HITS[core].load(Ordering::Relaxed) == 0 {
        if ferrix::time::now_ns() > deadline {
            println!(
                "core {core}: no IPI from core {} within the timeout",
                (core + n - 1) % n
            );
            ferrix::exit(2);
        }
        core::hint::spin_loop();
    }
    ANSWERED.fetch_add(1, Ordering::AcqRel);
    if core == 0 {
        while ANSWERED.load(Ordering::Acquire) < n {
            if ferrix::time::now_ns() > deadline {
                println!(
                    "ipi ring: only {}/{n} cores answered",
                    ANSWERED.load(Ordering::Acquire)
                );
                ferrix::exit(3);
            }
            core::hint::spin_loop();
        }
        let total: u32 = RING_HITS[..n]
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .sum();
        println!("ipi ring: {n}/{n} cores answered ({total} IPIs)");
        ferrix::exit(0);
    }
}

ferrix::entry!(main);
