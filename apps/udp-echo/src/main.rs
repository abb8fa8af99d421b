//! udp-echo: every core serves UDP echo on one port from its own NIC queue pair (the device
//! spreads flows over the queues). The reply is built in the receive buffer (zero copy).
//!
//! Arguments: `port=N` (default 7), `exit-after=N` (exit 0 after N echoes in total; default:
//! serve until stopped). Needs `ferrix.ip=A.B.C.D/N` (and optionally `ferrix.gw=`) on the
//! command line. Cores without a queue pair of their own (the NIC has fewer pairs than there
//! are cores) idle.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ferrix::net::NetError;
use ferrix::println;

/// Echoes sent, all cores.
static ECHOED: AtomicU64 = AtomicU64::new(0);
/// Set by the core that ends the VM (so the summary is printed once).
static EXITING: AtomicBool = AtomicBool::new(false);
/// Cores that are serving.
static SERVING: AtomicUsize = AtomicUsize::new(0);

fn arg<T: core::str::FromStr>(name: &str) -> Option<T> {
    ferrix::args().find_map(|a| a.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

fn main(core: usize) {
    let port: u16 = arg("port").unwrap_or(7);
    let exit_after: Option<u64> = arg("exit-after");
    match ferrix::net::bind_udp(port) {
        Ok(()) => {}
        Err(NetError::NoQueue) if core != 0 => ferrix::idle(),
        Err(e) => {
            println!("udp-echo: core {core}: {e}");
            ferrix::exit(1);
        }
    }
    let serving = SERVING.fetch_add(1, Ordering::AcqRel) + 1;
    let pairs = ferrix::net::info().map_or(0, |i| i.queue_pairs);
    if serving == pairs.min(ferrix::cpus())
        && let Ok(cfg) = ferrix::net::config()
    {
        println!("udp-echo: serving {}:{port} on {serving} cores", cfg.ip);
    }
    loop {
        let polled = ferrix::net::poll(|d, _payload| {
            ECHOED.fetch_add(1, Ordering::Relaxed);
            Some(d.len)
        });
        if let Err(e) = polled {
            println!("udp-echo: core {core}: {e}");
            ferrix::exit(1);
        }
        if exit_after.is_some_and(|n| ECHOED.load(Ordering::Relaxed) >= n)
            && !EXITING.swap(true, Ordering::AcqRel)
        {
            println!("udp-echo: {} echoes", ECHOED.load(Ordering::Relaxed));
            ferrix::exit(0);
        }
    }
}

ferrix::entry!(main);
