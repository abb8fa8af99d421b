//! udp-echo: every core serves UDP echo on one port from its own NIC queue pair (the device
//! spreads flows over the queues). The reply is built in the receive buffer (zero copy).
//!
//! Arguments: `port=N` (default 7), `exit-after=N` (exit 0 after N echoes in total; default:
//! serve until stopped). Client mode, for VM-to-VM tests: `peer=A.B.C.D:P count=N` makes core
//! 0 send N datagrams to the peer's echo server (resolving it by ARP first) and exit 0 once all
//! N echoes came back (1 if they do not within 30 s); no core echoes in this mode. Needs `ferrix.ip=A.B.C.D/N` (and optionally `ferrix.gw=`) on the
//! command line. Cores without a queue pair of their own (the NIC has fewer pairs than there
//! are cores) serve the flows their queue's owner steers to them in software.
#![no_std]
#![no_main]

use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ferrix::println;

/// Echoes sent, all cores.
static ECHOED: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds spent in polls that received frames, and those frames (all cores). Under
/// QEMU's `-icount shift=0` a guest nanosecond is one instruction, so their ratio is the
/// instructions per frame of the driver + stack + echo path (`ferrix bench udp-echo`).
static BUSY_NS: AtomicU64 = AtomicU64::new(0);
static BUSY_FRAMES: AtomicU64 = AtomicU64::new(0);
/// Echoes received back from the peer (client mode), all cores.
static REPLIES: AtomicU64 = AtomicU64::new(0);
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
    ferrix::net::or_idle("udp-echo", core, ferrix::net::bind_udp(port));
    // Every core serves: on its own queue pair, or on flows its queue's owner steers to it.
    let serving = SERVING.fetch_add(1, Ordering::AcqRel) + 1;
    if serving == ferrix::cpus()
        && let Ok(cfg) = ferrix::net::config()
    {
        println!("udp-echo: serving {}:{port} on {serving} cores", cfg.ip);
    }
    let peer: Option<SocketAddrV4> = arg("peer");
    if let Some(peer) = peer
        && core == 0
    {
        client(port, peer, arg("count").unwrap_or(10));
    }
    loop {
        let t0 = ferrix::time::now_ns();
        let polled = ferrix::net::poll(|d, _payload| {
            if peer.is_some() {
                REPLIES.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            ECHOED.fetch_add(1, Ordering::Relaxed);
            Some(d.len)
        });
        match polled {
            Ok(0) => {}
            Ok(n) => {
                BUSY_NS.fetch_add(ferrix::time::now_ns() - t0, Ordering::Relaxed);
                BUSY_FRAMES.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                println!("udp-echo: core {core}: {e}");
                ferrix::exit(1);
            }
        }
        if exit_after.is_some_and(|n| ECHOED.load(Ordering::Relaxed) >= n)
            && !EXITING.swap(true, Ordering::AcqRel)
        {
            let frames = BUSY_FRAMES.load(Ordering::Relaxed).max(1);
            println!(
                "udp-echo: {} echoes, {} ns per received frame in poll",
                ECHOED.load(Ordering::Relaxed),
                BUSY_NS.load(Ordering::Relaxed) / frames
            );
            ferrix::exit(0);
        }
    }
}

/// Client mode on core 0: one datagram at a time, resent every 500 ms until its echo is in.
fn client(port: u16, peer: SocketAddrV4, count: u64) -> ! {
    let deadline = ferrix::time::now_ns() + 30_000_000_000;
    for i in 0..count {
        let mut sent_at = 0;
        while REPLIES.load(Ordering::Relaxed) <= i {
            let now = ferrix::time::now_ns();
            if now > deadline {
                println!(
                    "udp-echo: only {} of {count} echoes from {peer}",
                    REPLIES.load(Ordering::Relaxed)
                );
                ferrix::exit(1);
            }
            if now - sent_at > 500_000_000 {
                // An error here (ARP still pending) is retried on the next round.
                let _ = ferrix::net::send_udp(port, peer, b"ferrix peer ping");
                sent_at = now;
            }
            let _ = ferrix::net::poll(|_, _| {
                REPLIES.fetch_add(1, Ordering::Relaxed);
                None
            });
        }
    }
    println!("udp-echo: {count} echoes from {peer}");
    ferrix::exit(0)
}

ferrix::entry!(main);
