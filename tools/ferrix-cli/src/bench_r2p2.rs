//! `ferrix bench r2p2`: R2P2 echo, measured two ways in one run.
//!
//! * `linux-udp` / `linux-r2p2`: Linux to Linux on 127.0.0.1, the same closed loop (one
//!   request outstanding) against a plain UDP echo server and against an R2P2 echo server
//!   (`r2p2-linux`, a thread of this process); the R2P2 row gives its round trips/s as a
//!   ratio of plain UDP's: the cost of the protocol logic and its bookkeeping on Linux.
//! * `ferrix-icount`: `apps/synthetic` under QEMU `-icount shift=0` (one guest nanosecond is
//!   one guest instruction, `--profile microvm-icount`), one vCPU, on QEMU's user network
//!   (host port forwarded from 127.0.0.1, no root). The Linux R2P2 client sends echo requests
//!   of `size` bytes (service time 0); the guest reports the instructions it spends per R2P2
//!   request in the polls that received them (driver RX, ferrix-net, R2P2 server, the reply
//!   built in place, driver TX). Deterministic, unlike the wall-clock rows.

use crate::bench_guest::GuestVm;
use crate::bench_udp::{closed_loop, fmt_loop, linux_echo_server};
use crate::error::CliError;
use crate::run::resolve_image;
use ferrix_net::r2p2::ServerConfig;
use r2p2_linux::client::{Load, Report, run};
use r2p2_linux::server::{Mode, serve};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Options of `ferrix bench r2p2`.
#[derive(Debug, Clone)]
pub struct R2p2BenchOptions {
    pub app: String,
    pub requests: u32,
    /// Request (and echo) size, bytes.
    pub size: usize,
    pub qemu: String,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct R2p2Row {
    pub config: &'static str,
    pub outcome: Result<String, String>,
}

fn load(server: SocketAddrV4, count: u64, size: usize) -> Load {
    Load {
        server,
        count,
        size,
        service_ns: None,
        timeout_ns: 1_000_000_000,
        depth: 1,
        verify_echo: true,
        sack: false,
        rto_ns: 1_000_000,
    }
}

/// Round trips per second of a report measured over `elapsed`.
fn per_sec(r: &Report, elapsed: Duration) -> f64 {
    r.ok as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn fmt_report(r: &Report, elapsed: Duration) -> String {
    format!(
        "{:.0} req/s  p50 {:.1} us  p99 {:.1} us  ({} ok, {} timeouts, {} errors, {} mismatches)",
        per_sec(r, elapsed),
        r.percentile(0.5) as f64 / 1e3,
        r.percentile(0.99) as f64 / 1e3,
        r.ok,
        r.timeouts,
        r.errors,
        r.mismatches
    )
}

/// Linux to Linux R2P2 echo on 127.0.0.1: (report, elapsed) of `n` requests after `warmup`.
fn linux_r2p2(n: u32, warmup: u32, size: usize) -> Result<(Report, Duration), String> {
    let e = |e: r2p2_linux::Error| e.to_string();
    let server = r2p2_linux::bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).map_err(e)?;
    let addr = match server.local_addr().map_err(|e| e.to_string())? {
        std::net::SocketAddr::V4(a) => a,
        std::net::SocketAddr::V6(_) => return Err("IPv6 socket".into()),
    };
    let total = u64::from(n + warmup);
    let h = std::thread::spawn(move || {
        serve(&server, ServerConfig::default(), Mode::Echo, Some(total)).map(|_| ())
    });
    let socket = r2p2_linux::bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).map_err(e)?;
    run(&socket, &load(addr, u64::from(warmup), size)).map_err(e)?;
    let t = Instant::now();
    let r = run(&socket, &load(addr, u64::from(n), size)).map_err(e)?;
    let elapsed = t.elapsed();
    h.join()
        .map_err(|_| "the R2P2 server thread panicked".to_string())?
        .map_err(e)?;
    Ok((r, elapsed))
}

/// Runs the benchmark; progress goes to `progress`.
pub fn bench_r2p2(
    o: &R2p2BenchOptions,
    progress: &mut dyn std::io::Write,
) -> Result<Vec<R2p2Row>, CliError> {
    let image = resolve_image(&o.app)?;
    let mut rows = Vec::new();
    let warmup = (o.requests / 10).max(10);

    let _ = writeln!(progress, "bench: Linux plain UDP echo on 127.0.0.1");
    let udp = linux_echo_server(o.requests + warmup)
        .and_then(|(addr, h)| {
            // Warm up apart, as for R2P2: the measured loop starts with a running server.
            let s = closed_loop(&addr, warmup, 0).and_then(|_| closed_loop(&addr, o.requests, 0));
            let _ = h.join();
            s
        })
        .map_err(|e| e.to_string());
    let udp_rate = udp.as_ref().map(|s| s.per_sec).unwrap_or(0.0);
    rows.push(R2p2Row {
        config: "linux-udp",
        outcome: udp.map(|s| fmt_loop(&s)),
    });

    let _ = writeln!(progress, "bench: Linux R2P2 echo on 127.0.0.1");
    rows.push(R2p2Row {
        config: "linux-r2p2",
        outcome: linux_r2p2(o.requests, warmup, o.size).map(|(r, elapsed)| {
            let ratio = if udp_rate > 0.0 {
                per_sec(&r, elapsed) / udp_rate
            } else {
                0.0
            };
            format!(
                "{}  ({ratio:.3}x linux-udp requests/s)",
                fmt_report(&r, elapsed)
            )
        }),
    });

    let _ = writeln!(
        progress,
        "bench: ferrix synthetic R2P2 echo under QEMU -icount"
    );
    rows.push(R2p2Row {
        config: "ferrix-icount",
        outcome: guest_icount(o, &image, o.requests + warmup).and_then(|console| {
            per_request(&console)
                .map(|(ns, n)| {
                    format!(
                        "{ns} guest instructions per R2P2 echo of {} B ({n} requests; driver + stack + R2P2 + reply + tx)",
                        o.size
                    )
                })
                .ok_or_else(|| format!("the guest printed no per-request figure:\n{console}"))
        }),
    });
    Ok(rows)
}

/// Boots synthetic under `microvm-icount` with the shared R2P2 port forwarded, sends it
/// `total` echo requests, and returns its console.
fn guest_icount(
    o: &R2p2BenchOptions,
    image: &std::path::Path,
    total: u32,
) -> Result<String, String> {
    let guest = GuestVm::start(image, &o.qemu, true, 8100, total, "synthetic: serving")?;
    let server = SocketAddrV4::new([127, 0, 0, 1].into(), guest.port);
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let r = run(&socket, &load(server, u64::from(total), o.size)).map_err(|e| e.to_string())?;
    // A request slirp lost never reached the guest's count: top it up, one at a time.
    for _ in 0..100 {
        if guest.is_finished() {
            break;
        }
        let _ = run(&socket, &load(server, 1, o.size));
    }
    let console = guest.finish()?;
    if r.ok == 0 {
        return Err(format!("no request succeeded:\n{console}"));
    }
    Ok(console)
}

/// The guest's "N ns per R2P2 request in poll over M requests" figure: (N, M).
pub fn per_request(console: &str) -> Option<(u64, u64)> {
    console.lines().find_map(|l| {
        let rest = l.strip_prefix("synthetic: ")?;
        let (ns, m) = rest.split_once(" ns per R2P2 request in poll over ")?;
        Some((ns.parse().ok()?, m.strip_suffix(" requests")?.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_guest_figure() {
        let c = "x\nsynthetic: 2345 ns per R2P2 request in poll over 110 requests\n";
        assert_eq!(per_request(c), Some((2345, 110)));
        assert_eq!(per_request("synthetic: 3 replies"), None);
    }

    #[test]
    fn linux_r2p2_echo_on_loopback() {
        let (r, elapsed) = linux_r2p2(50, 10, 100).unwrap();
        assert_eq!((r.ok, r.mismatches), (50, 0));
        assert!(per_sec(&r, elapsed) > 0.0);
    }
}
