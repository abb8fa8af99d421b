//! `lancet bench`: what one agent core can do (issue 7's benchmarks).
//!
//! 1. **Max open-loop rate**: the agent's real load loop ([`crate::agent::load::run`]) sends
//!    UDP requests with Poisson inter-arrivals to a local UDP echo server
//!    ([`crate::server::SyntheticServer`], 0 µs service) for a fixed time per step; a rate
//!    *passes* when the agent sent it (within 5 %), fell behind schedule for at most 0.1 % of
//!    arrivals, skipped none for lack of connections, and its last [`AD_MAX_GAPS`]
//!    inter-transmission gaps pass Anderson-Darling against the exponential at `alpha`, the
//!    same test the coordinator applies. The rate doubles from `lo` until a step fails, then
//!    bisects.
//! 2. **Best-case blast**: one thread calls `send()` on a connected UDP socket back to back
//!    (no schedule, no clock reads, no receive) to a loopback socket nobody reads: the
//!    ceiling of one core's plain `send()` path; and the same with `sendmmsg` (through `nix`),
//!    `batch` datagrams per system call: the ceiling with batching.
//! 3. **Timestamping overhead** (client side, per request): the cost of one `Instant::now()`
//!    (CLOCK_MONOTONIC through the vDSO); a `send()` loop plain, with the two clock reads per
//!    request of software mode, and on an `SO_TIMESTAMPING` socket reading each send's TX stamp
//!    back from the error queue (kernel mode's transmit side); and receiving a queued datagram
//!    with plain `recv()` vs `recvmsg()` with its `SCM_TIMESTAMPING` stamp parsed (kernel
//!    mode's receive side).
//!
//! Numbers depend on the machine and on whatever else runs on it; nothing here is a test.

use std::io::IoSlice;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrix_dist::Shape;
use nix::sys::socket::{self as nsock, MsgFlags, MultiHeaders, SockaddrIn};
use serde::Serialize;

use crate::agent::AD_MAX_GAPS;
use crate::agent::load::{self, Cmd, Snapshot};
use crate::agent::sockopt::{self, ErrQueue};
use crate::server::SyntheticServer;
use crate::stats::anderson;
use crate::workload::{AppProto, Transport, Workload};

/// Parameters of `lancet bench`.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// First rate tried (requests/s).
    pub lo: f64,
    /// Highest rate tried.
    pub hi: f64,
    /// Bisection steps after the first failure.
    pub steps: usize,
    /// Measured seconds per rate (after a warm-up of a quarter of that).
    pub secs: f64,
    /// Anderson-Darling significance level.
    pub alpha: f64,
    /// Datagram payload bytes (blast and timestamp loops).
    pub size: usize,
    /// Datagrams per `sendmmsg` call.
    pub batch: usize,
}

/// One rate tried.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub target_rps: f64,
    pub sent_rps: f64,
    pub received_rps: f64,
    /// Arrivals skipped because the sender fell behind.
    pub late: u64,
    pub ad_statistic: f64,
    pub ad_p_value: f64,
    pub passed: bool,
}

/// Everything `lancet bench` reports.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub steps: Vec<Step>,
    /// Highest passing rate (0 if none passed).
    pub max_open_loop_rps: f64,
    /// Back-to-back `send()` rate.
    pub blast_rps: f64,
    /// Back-to-back `sendmmsg` rate (datagrams/s) and its batch size.
    pub sendmmsg_rps: f64,
    pub sendmmsg_batch: usize,
    /// One `Instant::now()`, ns.
    pub clock_read_ns: f64,
    /// `send()` loop per request without clock reads, ns.
    pub send_ns: f64,
    /// The same with two clock reads per request (software mode), ns.
    pub send_timestamped_ns: f64,
    /// `send()` on an `SO_TIMESTAMPING` socket plus reading its TX stamp from the error queue
    /// (kernel mode), ns; `None` if the socket refused the option.
    pub send_kernel_ts_ns: Option<f64>,
    /// Receiving one queued datagram with `recv()`, ns.
    pub recv_ns: f64,
    /// ... with `recvmsg()` and its `SCM_TIMESTAMPING` stamp (kernel mode), ns.
    pub recv_kernel_ts_ns: Option<f64>,
}

impl BenchReport {
    /// Human-readable summary.
    pub fn text(&self) -> String {
        let mut s = String::from("open-loop rate search (UDP, Poisson, one agent load thread):\n");
        for t in &self.steps {
            s += &format!(
                "  {:>10.0} rps: sent {:>10.0}, answered {:>10.0}, late {:>6}, A² {:>7.3} p {:.3}  {}\n",
                t.target_rps,
                t.sent_rps,
                t.received_rps,
                t.late,
                t.ad_statistic,
                t.ad_p_value,
                if t.passed { "pass" } else { "FAIL" }
            );
        }
        s += &format!(
            "max open-loop rate passing Anderson-Darling: {:.0} requests/s\n",
            self.max_open_loop_rps
        );
        s += &format!(
            "best-case blast (back-to-back send(), no schedule): {:.0} requests/s\n",
            self.blast_rps
        );
        s += &format!(
            "best-case blast (sendmmsg, {} datagrams per call): {:.0} requests/s\n",
            self.sendmmsg_batch, self.sendmmsg_rps
        );
        s += &format!(
            "timestamping: Instant::now() {:.1} ns; send() {:.0} ns/request, with 2 clock reads {:.0} ns/request (+{:.1} ns)\n",
            self.clock_read_ns,
            self.send_ns,
            self.send_timestamped_ns,
            self.send_timestamped_ns - self.send_ns
        );
        let kernel = match (self.send_kernel_ts_ns, self.recv_kernel_ts_ns) {
            (Some(tx), Some(rx)) => format!(
                "send() + error-queue TX stamp {tx:.0} ns/request (+{:.0} ns), recvmsg() with RX stamp {rx:.0} ns vs recv() {:.0} ns (+{:.0} ns); +{:.0} ns/request in all",
                tx - self.send_ns,
                self.recv_ns,
                rx - self.recv_ns,
                tx - self.send_ns + rx - self.recv_ns
            ),
            _ => "SO_TIMESTAMPING refused on this machine".into(),
        };
        s += &format!(
            "kernel timestamps (client side): {kernel}; software: +{:.0} ns/request\n",
            self.send_timestamped_ns - self.send_ns
        );
        s
    }
}

/// Run the agent's load loop at `rps` against `target` for `secs` (plus a warm-up).
pub fn open_loop_step(target: &str, rps: f64, secs: f64, alpha: f64) -> Result<Step, String> {
    let w = Workload {
        target: target.to_owned(),
        transport: Transport::Udp,
        proto: AppProto::Synthetic,
        service_us: 0.0,
        connections: 4,
        outstanding: 64,
        ..Workload::default()
    };
    let (tx, rx) = mpsc::channel();
    let max = Duration::from_secs_f64(secs * 1.25 + 5.0);
    let h = std::thread::spawn(move || load::run(&w, rps, max, &rx));
    std::thread::sleep(Duration::from_secs_f64(secs / 4.0));
    let _ = tx.send(Cmd::Measure {
        samples: 0,
        sampling: 1,
    });
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (stx, srx) = mpsc::channel::<Snapshot>();
    let _ = tx.send(Cmd::Snapshot(stx));
    let snap = srx.recv_timeout(Duration::from_secs(10));
    let _ = tx.send(Cmd::Stop);
    let _ = h.join();
    let snap = snap.map_err(|_| "load thread does not answer".to_owned())?;
    if let Some(e) = snap.error {
        return Err(e);
    }
    let window = snap.window_secs.max(1e-9);
    let gaps = &snap.gaps_us[snap.gaps_us.len().saturating_sub(AD_MAX_GAPS)..];
    let (stat, p) = match anderson::against_shape(gaps, &Shape::Exponential) {
        Ok(r) => (r.statistic, r.p_value),
        Err(_) => (f64::NAN, 0.0),
    };
    let sent_rps = snap.sent as f64 / window;
    let scheduled = (snap.sent + snap.late) as f64;
    let passed = p >= alpha
        && (sent_rps - rps).abs() <= 0.05 * rps
        && snap.late as f64 <= 0.001 * scheduled
        && snap.skipped == 0;
    Ok(Step {
        target_rps: rps,
        sent_rps,
        received_rps: snap.received as f64 / window,
        late: snap.late,
        ad_statistic: stat,
        ad_p_value: p,
        passed,
    })
}

/// Bracket the highest passing rate from `lo` (doubling up to `hi`, or halving down to
/// `lo`/64), then bisect `steps` times.
pub fn max_open_loop(
    cfg: &BenchConfig,
    progress: &dyn Fn(&Step),
) -> Result<(f64, Vec<Step>), String> {
    let server = SyntheticServer::start("127.0.0.1:0", Transport::Udp, 0.0)
        .map_err(|e| format!("cannot start the UDP echo server: {e}"))?;
    let target = server.addr().to_string();
    let mut steps = Vec::new();
    let mut step = |rps: f64| -> Result<bool, String> {
        let s = open_loop_step(&target, rps, cfg.secs, cfg.alpha)?;
        progress(&s);
        let ok = s.passed;
        steps.push(s);
        Ok(ok)
    };
    // Bracket: double while passing, or halve (at most 6 times) while failing.
    let (mut good, mut bad) = (0.0f64, None);
    let mut rps = cfg.lo;
    if step(rps)? {
        good = rps;
        while rps * 2.0 <= cfg.hi {
            rps *= 2.0;
            if !step(rps)? {
                bad = Some(rps);
                break;
            }
            good = rps;
        }
    } else {
        bad = Some(rps);
        for _ in 0..6 {
            rps /= 2.0;
            if step(rps)? {
                good = rps;
                break;
            }
            bad = Some(rps);
        }
    }
    if let (Some(mut bad), true) = (bad, good > 0.0) {
        for _ in 0..cfg.steps {
            let mid = (good + bad) / 2.0;
            if step(mid)? {
                good = mid;
            } else {
                bad = mid;
            }
        }
    }
    Ok((good, steps))
}

/// A connected UDP socket to a loopback socket nobody reads (datagrams beyond its buffer are
/// dropped by the kernel; `send()` still succeeds). The sink must stay alive while sending.
fn sink_pair() -> Result<(UdpSocket, UdpSocket), String> {
    let e = |e: std::io::Error| format!("UDP socket: {e}");
    let sink = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    tx.connect(sink.local_addr().map_err(e)?).map_err(e)?;
    Ok((tx, sink))
}

/// Back-to-back `send()` for `secs`: requests/s.
pub fn blast(secs: f64, size: usize) -> Result<f64, String> {
    let (tx, _sink) = sink_pair()?;
    let buf = vec![b'x'; size.max(1)];
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    // Check the clock once per 256 sends only: the point is the send path.
    loop {
        for _ in 0..256 {
            let _ = tx.send(&buf);
        }
        n += 256;
        if start.elapsed() >= end {
            break;
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Back-to-back `sendmmsg` of `batch` datagrams per call for `secs`: datagrams/s. A blocking
/// UDP `sendmmsg` sends the whole batch unless it fails, so a successful call counts `batch`.
pub fn blast_sendmmsg(secs: f64, size: usize, batch: usize) -> Result<f64, String> {
    let (tx, _sink) = sink_pair()?;
    let batch = batch.clamp(1, 1024);
    let buf = vec![b'x'; size.max(1)];
    let slices: Vec<[IoSlice<'_>; 1]> = (0..batch).map(|_| [IoSlice::new(&buf)]).collect();
    // Connected socket: no per-message address.
    let addrs: Vec<Option<SockaddrIn>> = vec![None; batch];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(batch, None);
    let fd = tx.as_raw_fd();
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    loop {
        for _ in 0..16 {
            nsock::sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty())
                .map_err(|e| format!("sendmmsg: {e}"))?;
            n += batch as u64;
        }
        if start.elapsed() >= end {
            break;
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Cost of one `Instant::now()` over `n` calls, ns.
pub fn clock_read_ns(n: u64) -> f64 {
    let start = Instant::now();
    let mut acc = start;
    for _ in 0..n {
        acc = acc.max(std::hint::black_box(Instant::now()));
    }
    std::hint::black_box(acc);
    start.elapsed().as_nanos() as f64 / n.max(1) as f64
}

/// Per-request send costs, ns.
#[derive(Debug, Clone, Copy)]
pub struct SendCost {
    pub plain: f64,
    /// With two clock reads (software mode).
    pub clocks: f64,
    /// On an `SO_TIMESTAMPING` socket, reading each TX stamp back (kernel mode).
    pub kernel: Option<f64>,
}

/// `n` sends plain, with two clock reads each, and with kernel TX stamps read back. The loops
/// alternate in 8 rounds and the minimum of each is kept, to damp other load on the machine.
pub fn send_cost_ns(n: u64, size: usize) -> Result<SendCost, String> {
    let (tx, sink) = sink_pair()?;
    let ktx = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("UDP socket: {e}"))?;
    ktx.connect(sink.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| format!("UDP socket: {e}"))?;
    let kernel_ok = sockopt::enable_timestamps(&ktx).is_ok();
    let mut cmsg = sockopt::cmsg_buffer();
    let buf = vec![b'x'; size.max(1)];
    let per_round = (n / 8).max(1);
    let (mut plain, mut stamped, mut kernel) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..8 {
        let t = Instant::now();
        for _ in 0..per_round {
            let _ = tx.send(std::hint::black_box(&buf));
        }
        plain = plain.min(t.elapsed().as_nanos() as f64 / per_round as f64);
        let t = Instant::now();
        let mut total = Duration::ZERO;
        for _ in 0..per_round {
            let sent = Instant::now();
            let _ = tx.send(std::hint::black_box(&buf));
            total += Instant::now().duration_since(sent);
        }
        std::hint::black_box(total);
        stamped = stamped.min(t.elapsed().as_nanos() as f64 / per_round as f64);
        if kernel_ok {
            let t = Instant::now();
            let mut got = 0u64;
            for _ in 0..per_round {
                let _ = ktx.send(std::hint::black_box(&buf));
                // Loopback stamps in its transmit path: the stamp is queued by now.
                while let Ok(ErrQueue::Tx(..) | ErrQueue::Other) =
                    sockopt::read_errqueue(&ktx, &mut cmsg)
                {
                    got += 1;
                }
            }
            std::hint::black_box(got);
            kernel = kernel.min(t.elapsed().as_nanos() as f64 / per_round as f64);
        }
    }
    Ok(SendCost {
        plain,
        clocks: stamped,
        kernel: kernel_ok.then_some(kernel),
    })
}

/// Receiving one queued datagram: (plain `recv()`, `recvmsg()` with its kernel RX stamp), ns.
/// Each round queues 64 datagrams on two receivers (one with RX stamps on), then times their
/// receives; 8 rounds per `n / 8` datagrams, minimum kept.
pub fn recv_cost_ns(n: u64, size: usize) -> Result<(f64, Option<f64>), String> {
    let e = |e: std::io::Error| format!("UDP socket: {e}");
    let plain_rx = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let stamped_rx = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let kernel_ok = sockopt::enable_timestamps(&stamped_rx).is_ok();
    plain_rx.set_nonblocking(true).map_err(e)?;
    stamped_rx.set_nonblocking(true).map_err(e)?;
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let (pa, sa) = (
        plain_rx.local_addr().map_err(e)?,
        stamped_rx.local_addr().map_err(e)?,
    );
    let payload = vec![b'x'; size.max(1)];
    let mut buf = vec![0u8; 65536];
    let mut cmsg = sockopt::cmsg_buffer();
    const BATCH: u64 = 64;
    let rounds = (n / 8 / BATCH).max(1);
    let (mut plain, mut kernel) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..8 {
        let (mut tp, mut tk, mut count) = (Duration::ZERO, Duration::ZERO, 0u64);
        for _ in 0..rounds {
            for _ in 0..BATCH {
                tx.send_to(&payload, pa).map_err(e)?;
                tx.send_to(&payload, sa).map_err(e)?;
            }
            let t = Instant::now();
            let mut got = 0;
            while got < BATCH {
                match plain_rx.recv(&mut buf) {
                    Ok(_) => got += 1,
                    // Loopback queues before send_to returns; nothing more is coming.
                    Err(_) => break,
                }
            }
            tp += t.elapsed();
            let t = Instant::now();
            let mut got_k = 0;
            while got_k < BATCH {
                match sockopt::recv_stamped(&stamped_rx, &mut buf, &mut cmsg) {
                    Ok(Some(_)) => got_k += 1,
                    _ => break,
                }
            }
            tk += t.elapsed();
            count += got.min(got_k).max(1);
        }
        plain = plain.min(tp.as_nanos() as f64 / count as f64);
        kernel = kernel.min(tk.as_nanos() as f64 / count as f64);
    }
    Ok((plain, kernel_ok.then_some(kernel)))
}

/// Everything, in order.
pub fn run(cfg: &BenchConfig, progress: &dyn Fn(&Step)) -> Result<BenchReport, String> {
    let (max, steps) = max_open_loop(cfg, progress)?;
    let blast_rps = blast(cfg.secs, cfg.size)?;
    let sendmmsg_rps = blast_sendmmsg(cfg.secs, cfg.size, cfg.batch)?;
    let clock = clock_read_ns(2_000_000);
    let send = send_cost_ns(400_000, cfg.size)?;
    let (recv_ns, recv_kernel_ts_ns) = recv_cost_ns(200_000, cfg.size)?;
    Ok(BenchReport {
        steps,
        max_open_loop_rps: max,
        blast_rps,
        sendmmsg_rps,
        sendmmsg_batch: cfg.batch.clamp(1, 1024),
        clock_read_ns: clock,
        send_ns: send.plain,
        send_timestamped_ns: send.clocks,
        send_kernel_ts_ns: send.kernel,
        recv_ns,
        recv_kernel_ts_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_measure_something() {
        // Tiny counts: this checks the plumbing, not the machine.
        assert!(clock_read_ns(1000) > 0.0);
        let c = send_cost_ns(800, 16).unwrap();
        assert!(c.plain > 0.0 && c.clocks > 0.0);
        assert!(c.kernel.is_none_or(|k| k > 0.0));
        let (r, rk) = recv_cost_ns(1024, 16).unwrap();
        assert!(r > 0.0 && rk.is_none_or(|k| k > 0.0));
        assert!(blast(0.01, 16).unwrap() > 0.0);
        assert!(blast_sendmmsg(0.01, 16, 32).unwrap() > 0.0);
    }
}
