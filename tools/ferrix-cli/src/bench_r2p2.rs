//! `ferrix bench r2p2`: R2P2 echo, measured two ways in one run.
//!
//! * Linux to Linux on 127.0.0.1, the same closed loop (one request outstanding, `size`-byte
//!   echoes) four ways: plain UDP echo and R2P2 echo (`r2p2-linux`, the server a thread of
//!   this process, batches of 32 datagrams per `recvmmsg` / `sendmmsg`), each with both ends
//!   blocking in `recv` (`linux-udp`, `linux-r2p2-block`) and with both ends busy-polling a
//!   non-blocking socket (`linux-udp-busy`, `linux-r2p2`). The R2P2 rows give their round
//!   trips/s as a ratio of plain UDP's: `linux-r2p2` (busy polling, what the R2P2 tools are
//!   for) against the blocking baseline `linux-udp` and against `linux-udp-busy` (like for
//!   like: the cost of the protocol logic and its bookkeeping), `linux-r2p2-block` against
//!   `linux-udp`. Each configuration runs [`ROUNDS`] times, the configurations taking turns,
//!   and a row reports its median round by requests/s: a burst of noise on a shared machine
//!   then spoils one round rather than the comparison.
//! * `ferrix-icount`: `apps/synthetic` under QEMU `-icount shift=0` (one guest nanosecond is
//!   one guest instruction, `--profile microvm-icount`), one vCPU, on QEMU's user network
//!   (host port forwarded from 127.0.0.1, no root). The Linux R2P2 client sends echo requests
//!   of `size` bytes (service time 0); the guest reports the instructions it spends per R2P2
//!   request in the polls that received them (driver RX, ferrix-net, R2P2 server, the reply
//!   built in place, driver TX). Deterministic, unlike the wall-clock rows.

use crate::bench_guest::GuestVm;
use crate::bench_report::LatencyRows;
use crate::bench_udp::{
    LoopStats, closed_loop, closed_loop_samples, finish_loop, fmt_loop, linux_echo_server,
};
use crate::error::CliError;
use crate::run::resolve_image;
use ferrix_latplot::DistSeries;
use ferrix_latplot::progress::Steps;
use ferrix_net::r2p2::ServerConfig;
use r2p2_linux::client::{Load, Report, run, run_with};
use r2p2_linux::server::{Mode, serve_with};
use r2p2_linux::{LoopOptions, Poll};
use std::io::Write as _;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Rounds of the Linux configurations; each row reports its median round.
pub const ROUNDS: usize = 3;

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
pub type R2p2Row = crate::bench_report::TextRow;

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

/// Linux to Linux R2P2 echo on 127.0.0.1 with both loops in `poll` mode, batches of 32:
/// (report, elapsed) of `n` requests after `warmup`.
fn linux_r2p2(n: u32, warmup: u32, size: usize, poll: Poll) -> Result<(Report, Duration), String> {
    let e = |e: r2p2_linux::Error| e.to_string();
    let opts = LoopOptions {
        poll,
        ..LoopOptions::default()
    };
    let server = r2p2_linux::bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).map_err(e)?;
    let addr = match server.local_addr().map_err(|e| e.to_string())? {
        std::net::SocketAddr::V4(a) => a,
        std::net::SocketAddr::V6(_) => return Err("IPv6 socket".into()),
    };
    let total = u64::from(n + warmup);
    let h = std::thread::spawn(move || {
        serve_with(
            &server,
            ServerConfig::default(),
            Mode::Echo,
            Some(total),
            &opts,
        )
        .map(|_| ())
    });
    let socket = r2p2_linux::bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).map_err(e)?;
    let measured = run_with(&socket, &load(addr, u64::from(warmup), size), &opts).and_then(|_| {
        let t = Instant::now();
        let r = run_with(&socket, &load(addr, u64::from(n), size), &opts)?;
        Ok((r, t.elapsed()))
    });
    let measured = match measured {
        Ok(m) => m,
        // The server thread waits for requests that will not come: leave it.
        Err(err) => return Err(err.to_string()),
    };
    h.join()
        .map_err(|_| "the R2P2 server thread panicked".to_string())?
        .map_err(e)?;
    Ok(measured)
}

/// A busy-polling plain UDP echo server on 127.0.0.1 (non-blocking socket, the CPU yielded
/// between empty polls, as the R2P2 loops do) that stops after `n` datagrams or 10 s without
/// one; returns its address.
fn busy_echo_server(n: u32) -> std::io::Result<(String, std::thread::JoinHandle<()>)> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    let addr = s.local_addr()?.to_string();
    s.set_nonblocking(true)?;
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut last = Instant::now();
        let mut served = 0;
        while served < n && last.elapsed() < Duration::from_secs(10) {
            match s.recv_from(&mut buf) {
                Ok((k, from)) => {
                    served += 1;
                    last = Instant::now();
                    while let Err(e) = s.send_to(&buf[..k], from) {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            break;
                        }
                        std::thread::yield_now();
                    }
                }
                Err(_) => std::thread::yield_now(),
            }
        }
    });
    Ok((addr, h))
}

/// [`closed_loop`] busy-polling a non-blocking socket: `n` requests one at a time to `dst`
/// (each waits up to 200 ms for its echo), datagrams the size of a one-packet R2P2 echo
/// request of `size` bytes (8 more, at most 1472). (`closed_loop`, the blocking baseline,
/// sends 4-byte datagrams; on loopback the difference is a copy of under 100 bytes.)
fn busy_closed_loop(dst: &str, n: u32, size: usize) -> std::io::Result<(LoopStats, Vec<f64>)> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.connect(dst)?;
    s.set_nonblocking(true)?;
    let mut msg = vec![0u8; (size + 8).clamp(4, 1472)];
    let mut buf = [0u8; 2048];
    let mut lat = Vec::with_capacity(n as usize);
    let mut lost = 0;
    let start = Instant::now();
    for i in 0..n {
        msg[..4].copy_from_slice(&i.to_le_bytes());
        let t = Instant::now();
        loop {
            match s.send(&msg) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
        loop {
            match s.recv(&mut buf) {
                Ok(k) if buf[..k] == msg[..] => {
                    lat.push(t.elapsed());
                    break;
                }
                Ok(_) => continue, // a late echo of an earlier request
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if t.elapsed() > Duration::from_millis(200) {
                        lost += 1;
                        break;
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(finish_loop(n, lost, start.elapsed(), lat))
}

/// A Linux configuration of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linux {
    Udp(Poll),
    R2p2(Poll),
}

impl Linux {
    /// The configuration's row name.
    fn name(self) -> &'static str {
        match self {
            Linux::Udp(Poll::Block) => "linux-udp",
            Linux::Udp(Poll::Busy) => "linux-udp-busy",
            Linux::R2p2(Poll::Busy) => "linux-r2p2",
            Linux::R2p2(Poll::Block) => "linux-r2p2-block",
        }
    }
}

/// One round of one configuration.
#[derive(Clone, Debug)]
struct Round {
    per_sec: f64,
    /// The row's text.
    text: String,
    /// Latencies of the answered requests, µs.
    latencies_us: Vec<f64>,
}

/// One round of one configuration.
fn linux_round(c: Linux, n: u32, warmup: u32, size: usize) -> Result<Round, String> {
    match c {
        Linux::Udp(poll) => {
            let busy = poll == Poll::Busy;
            let server = if busy {
                busy_echo_server(n + warmup)
            } else {
                linux_echo_server(n + warmup)
            };
            // Warm up apart, as for R2P2: the measured loop starts with a running server.
            let (s, latencies_us) = server
                .and_then(|(addr, h)| {
                    let s = if busy {
                        busy_closed_loop(&addr, warmup, size)
                            .and_then(|_| busy_closed_loop(&addr, n, size))
                    } else {
                        closed_loop(&addr, warmup, 0).and_then(|_| closed_loop_samples(&addr, n, 0))
                    };
                    let _ = h.join();
                    s
                })
                .map_err(|e| e.to_string())?;
            Ok(Round {
                per_sec: s.per_sec,
                text: fmt_loop(&s),
                latencies_us,
            })
        }
        Linux::R2p2(poll) => linux_r2p2(n, warmup, size, poll).map(|(r, elapsed)| Round {
            per_sec: per_sec(&r, elapsed),
            text: fmt_report(&r, elapsed),
            latencies_us: r.latencies.iter().map(|&ns| ns as f64 / 1e3).collect(),
        }),
    }
}

/// Runs `configs` [`ROUNDS`] times, taking turns, one step of `steps` each; per
/// configuration, its median round by requests/s (or its first error when no round
/// succeeded).
fn linux_medians(
    configs: &[Linux],
    n: u32,
    warmup: u32,
    size: usize,
    steps: &mut Steps<'_>,
) -> Vec<Result<Round, String>> {
    let mut got: Vec<Vec<Result<Round, String>>> = vec![Vec::new(); configs.len()];
    for round in 1..=ROUNDS {
        for (i, &c) in configs.iter().enumerate() {
            steps.step(&format!("bench: {} round {round}/{ROUNDS}", c.name()));
            got[i].push(linux_round(c, n, warmup, size));
        }
    }
    got.into_iter()
        .map(|rounds| {
            let mut ok: Vec<Round> = rounds.iter().filter_map(|r| r.clone().ok()).collect();
            if ok.is_empty() {
                return Err(rounds
                    .into_iter()
                    .find_map(Result::err)
                    .unwrap_or_else(|| "no round ran".into()));
            }
            ok.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
            Ok(ok.swap_remove(ok.len() / 2))
        })
        .collect()
}

/// `x` as a ratio of `base` requests/s.
fn ratio(x: f64, base: &Result<Round, String>) -> f64 {
    match base {
        Ok(b) if b.per_sec > 0.0 => x / b.per_sec,
        _ => 0.0,
    }
}

/// Runs the benchmark; progress goes to `progress` (and a bar, on a terminal). The Linux rows
/// come with the latency samples of their median round.
pub fn bench_r2p2(
    o: &R2p2BenchOptions,
    progress: &mut dyn std::io::Write,
) -> Result<LatencyRows, CliError> {
    let image = resolve_image(&o.app)?;
    let warmup = (o.requests / 10).max(10);
    let configs = [
        Linux::Udp(Poll::Block),
        Linux::Udp(Poll::Busy),
        Linux::R2p2(Poll::Busy),
        Linux::R2p2(Poll::Block),
    ];
    let mut steps = Steps::new((ROUNDS * configs.len() + 1) as u64, progress);
    let _ = writeln!(
        steps,
        "bench: Linux plain UDP and R2P2 echo on 127.0.0.1, blocking and busy-polling ({ROUNDS} rounds)"
    );
    let m = linux_medians(&configs, o.requests, warmup, o.size, &mut steps);
    let (udp, udp_busy) = (&m[0], &m[1]);
    let mut out = LatencyRows::default();
    for (&c, r) in configs.iter().zip(&m) {
        let outcome = r.as_ref().map_err(String::clone).map(|r| match c {
            Linux::Udp(_) => r.text.clone(),
            Linux::R2p2(Poll::Busy) => format!(
                "{}  ({:.3}x linux-udp requests/s, {:.3}x linux-udp-busy)",
                r.text,
                ratio(r.per_sec, udp),
                ratio(r.per_sec, udp_busy)
            ),
            Linux::R2p2(Poll::Block) => {
                format!(
                    "{}  ({:.3}x linux-udp requests/s)",
                    r.text,
                    ratio(r.per_sec, udp)
                )
            }
        });
        out.rows.push(R2p2Row {
            config: c.name(),
            outcome,
        });
        if let Ok(r) = r {
            out.series
                .push(DistSeries::new(c.name(), r.latencies_us.clone()));
        }
    }

    steps.step("bench: ferrix synthetic R2P2 echo under QEMU -icount");
    out.rows.push(R2p2Row {
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
    Ok(out)
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
        for poll in [Poll::Busy, Poll::Block] {
            let (r, elapsed) = linux_r2p2(50, 10, 100, poll).unwrap();
            assert_eq!((r.ok, r.mismatches), (50, 0), "{poll:?}");
            assert!(per_sec(&r, elapsed) > 0.0);
        }
    }

    #[test]
    fn busy_udp_echo_on_loopback() {
        let (addr, h) = busy_echo_server(30).unwrap();
        let (s, lat) = busy_closed_loop(&addr, 30, 64).unwrap();
        h.join().unwrap();
        assert_eq!((s.requests, s.lost), (30, 0));
        assert!(s.per_sec > 0.0 && s.p50_us > 0.0);
        assert_eq!(lat.len(), 30);
    }

    #[test]
    fn median_round_and_ratios() {
        let mut lines = Vec::new();
        let mut steps = Steps::new(2 * ROUNDS as u64, &mut lines);
        let rows = linux_medians(
            &[Linux::Udp(Poll::Busy), Linux::R2p2(Poll::Busy)],
            20,
            5,
            64,
            &mut steps,
        );
        steps.skip(0);
        assert_eq!(steps.done(), 2 * ROUNDS as u64);
        drop(steps);
        let (udp, r2p2) = (&rows[0], &rows[1]);
        let r = r2p2.as_ref().unwrap();
        assert!(r.per_sec > 0.0 && ratio(r.per_sec, udp) > 0.0);
        assert_eq!(r.latencies_us.len(), 20, "the median round's samples");
        assert_eq!(ratio(1.0, &Err("down".into())), 0.0);
        let text = String::from_utf8(lines).unwrap();
        assert!(text.contains("bench: linux-r2p2 round 3/3"), "{text}");
    }
}
