//! tcp-echo: a TCP echo server on every core that has its own NIC queue pair (each connection
//! lives on the core its flow is hashed to: its home core), on the kernel's smoltcp endpoint.
//!
//! Arguments: `port=N` (default 7), `exit-after=N` (exit 0 once N connections have closed),
//! `crab-vip=IP` (a CRAB server behind a load balancer with VIP IP: redirected SYNs get the
//! option echoed, and the VIP is served too, direct server return, for clients without CRAB),
//! `crab-report-ms=N` (with `crab-vip`: every N ms core 0 reports the open connections of all
//! cores to `VIP:crab-report-port`, default 7001, for the least-connections policy; the
//! report is `ferrix_crab_lb::report`'s).
//! `client=IP:PORT` runs the client instead ([`client`]); `service-us=N` the queueing server
//! with optional SLO-aware flow control (`slo-us=W`, [`queue`]). Needs `ferrix.ip=A.B.C.D/N` on the
//! command line. Cores without a queue pair idle.
#![no_std]
#![no_main]

mod client;
mod queue;

use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrix::net::tcp::{TcpConfig, TcpEvent};
use ferrix::println;

/// Connections closed and bytes echoed, all cores.
static CLOSED: AtomicU64 = AtomicU64::new(0);
/// Connections accepted and not yet closed, all cores.
static OPEN: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

fn arg<T: core::str::FromStr>(name: &str) -> Option<T> {
    ferrix::args().find_map(|a| a.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The listening endpoint of both servers: 8 listeners, 256 connections, 8 KiB buffers.
fn server_config(port: u16) -> TcpConfig {
    TcpConfig {
        port,
        listeners: 8,
        max_conns: 256,
        rx_buf: 8192,
        tx_buf: 8192,
        ..TcpConfig::default()
    }
}

fn main(core: usize) {
    if let Some(c) = ferrix::args().find_map(|a| a.strip_prefix("client=")) {
        if core != 0 {
            ferrix::idle();
        }
        let Ok(server) = c.parse() else {
            println!("tcp-echo: bad value client={c} (want IP:PORT)");
            ferrix::exit(1);
        };
        let crab = match ferrix::args().find_map(|a| a.strip_prefix("crab=")) {
            None | Some("off") => false,
            Some("on") => true,
            Some(v) => {
                println!("tcp-echo: bad value crab={v} (on or off)");
                ferrix::exit(1);
            }
        };
        client::run(server, arg, crab);
    }
    let port: u16 = arg("port").unwrap_or(7);
    if let Some(us) = arg("service-us") {
        queue::run(core, port, us, arg);
    }
    let exit_after: Option<u64> = arg("exit-after");
    let vip: Option<core::net::Ipv4Addr> =
        match ferrix::args().find_map(|a| a.strip_prefix("crab-vip=")) {
            None => None,
            Some(v) => match v.parse() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    println!("tcp-echo: bad value crab-vip={v} (an IPv4 address)");
                    ferrix::exit(1);
                }
            },
        };
    let cfg = TcpConfig {
        crab_server: vip.is_some(),
        vip,
        ..server_config(port)
    };
    ferrix::net::or_idle("tcp-echo", core, ferrix::net::tcp_listen(cfg));
    let report_every_ns = arg::<u64>("crab-report-ms").map(|ms| ms.max(1) * 1_000_000);
    let report_to = vip.map(|v| SocketAddrV4::new(v, arg("crab-report-port").unwrap_or(7001)));
    let mut next_report = 0u64;
    if core == 0 {
        match vip {
            Some(v) => println!("tcp-echo: listening on port {port} (CRAB, VIP {v})"),
            None => println!("tcp-echo: listening on port {port}"),
        }
    }
    loop {
        let polled = ferrix::net::poll_tcp(
            |_, _| None,
            |ep, ev| match ev {
                TcpEvent::Received(c, _) => {
                    // Echo what fits in the send buffer; the rest stays unread until the peer
                    // acknowledges (a later Received or Sent event retries).
                    let n = match ep.recv(c) {
                        Ok(data) if !data.is_empty() => {
                            let mut tmp = [0u8; 2048];
                            let k = data.len().min(tmp.len());
                            tmp[..k].copy_from_slice(&data[..k]);
                            ep.send(c, &tmp[..k]).unwrap_or(0)
                        }
                        _ => 0,
                    };
                    if n > 0 {
                        let _ = ep.recv_done(c, n);
                        BYTES.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                TcpEvent::Sent(c, _) => {
                    if let Ok(data) = ep.recv(c)
                        && !data.is_empty()
                    {
                        let mut tmp = [0u8; 2048];
                        let k = data.len().min(tmp.len());
                        tmp[..k].copy_from_slice(&data[..k]);
                        let n = ep.send(c, &tmp[..k]).unwrap_or(0);
                        let _ = ep.recv_done(c, n);
                        BYTES.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                TcpEvent::PeerClosed(c) => {
                    let _ = ep.close(c);
                }
                TcpEvent::Accepted(_) => {
                    OPEN.fetch_add(1, Ordering::Relaxed);
                }
                TcpEvent::Closed(_) => {
                    CLOSED.fetch_add(1, Ordering::Relaxed);
                    let _ = OPEN
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                }
                _ => {}
            },
        );
        if core == 0
            && let (Some(every), Some(to)) = (report_every_ns, report_to)
        {
            let now = ferrix::time::now_ns();
            if now >= next_report {
                next_report = now + every;
                let open = u32::try_from(OPEN.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
                // A report lost (ARP not resolved yet, a full queue) is replaced by the next.
                let _ = ferrix::net::send_udp(to.port(), to, &ferrix_crab_lb::report::encode(open));
            }
        }
        if let Err(e) = polled {
            println!("tcp-echo: core {core}: {e}");
            ferrix::exit(1);
        }
        if exit_after.is_some_and(|n| CLOSED.load(Ordering::Relaxed) >= n)
            && !EXITING.swap(true, Ordering::AcqRel)
        {
            println!(
                "tcp-echo: {} connections closed, {} bytes echoed",
                CLOSED.load(Ordering::Relaxed),
                BYTES.load(Ordering::Relaxed)
            );
            if let Ok(c) = ferrix::net::with_tcp(|ep| ep.crab_stats()) {
                println!("tcp-echo: crab {c:?}");
            }
            ferrix::exit(0);
        }
    }
}

ferrix::entry!(main);
