//! The agent's open-loop load generator: one thread busy-polls the monotonic clock (no sleeping)
//! and sends each request at its scheduled time, drawn from the inter-arrival distribution,
//! independently of replies. Between sends it polls every connection for responses.
//! Latencies of randomly sampled requests (probability 1/sampling) are recorded with software
//! timestamps (`Instant::now()`, CLOCK_MONOTONIC, just before `send` and just after the `recv`
//! that completed the response) or, in kernel mode, with the kernel's `SO_TIMESTAMPING` stamps
//! where they arrive (see [`super::stamps`]).
//!
//! The agent's kind shapes the loop: a throughput agent never samples; a latency agent uses one
//! connection with one request in flight and `SO_BUSY_POLL` on its socket, and skips (counts)
//! arrivals that find its request still in flight.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use ferrix_dist::rand::Rng as _;
use ferrix_dist::{Dist, Rng};

use super::conn::{Conn, ConnOptions, Sample};
use super::options::{AgentKind, AgentOptions, BusyPollReport, StampReport, TsMode};
use super::sockopt;
use super::stamps::NoKernel;
use crate::workload::Workload;

/// How far the sender may fall behind its schedule before it skips arrivals (counted in
/// [`Snapshot::late`]) rather than sending them back to back: a burst would violate the
/// workload's inter-arrival distribution and queue requests the server never saw that way.
pub const MAX_BEHIND_NS: f64 = 200_000.0;

/// Most inter-transmission gaps kept per window.
pub const MAX_GAPS: usize = 200_000;

/// Commands from the control thread.
#[derive(Debug)]
pub enum Cmd {
    /// Reset the latency samples and sample 1 in `sampling` requests until `samples` are held.
    /// The same `sampling` as before keeps the samples and raises the target.
    Measure {
        samples: usize,
        sampling: u32,
    },
    /// Reply with a copy of the counters and data.
    Snapshot(Sender<Snapshot>),
    Stop,
}

/// The agent's data at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds since the window (load start or last reset) began.
    pub window_secs: f64,
    pub sent: u64,
    pub received: u64,
    /// Sends skipped because every connection had its maximum outstanding.
    pub skipped: u64,
    /// Arrivals dropped because the sender fell more than [`MAX_BEHIND_NS`] behind schedule.
    pub late: u64,
    /// Inter-transmission gaps (µs) in the window.
    pub gaps_us: Vec<f64>,
    /// How late each of those sends was against its scheduled time (µs), same order.
    pub lateness_us: Vec<f64>,
    /// The scheduled gaps (µs) behind `gaps_us`, same order.
    pub sched_gaps_us: Vec<f64>,
    /// (send time in s since load start, latency in µs) for sampled requests, in send order.
    pub samples: Vec<(f64, f64)>,
    pub target_samples: usize,
    pub sampling: u32,
    /// Which stamps timed the samples of the window, and why kernel ones were not used.
    pub stamps: StampReport,
    /// Latency agents: whether `SO_BUSY_POLL` took effect.
    pub busy_poll: Option<BusyPollReport>,
    /// A fatal error that stopped the load.
    pub error: Option<String>,
}

struct State {
    snap: Snapshot,
    window: Instant,
    measuring: bool,
    done_samples: Vec<(Instant, f64)>,
}

/// The workload as an agent of `kind` runs it: a latency agent uses one connection with one
/// request in flight.
pub fn shaped(w: &Workload, kind: AgentKind) -> Workload {
    match kind {
        AgentKind::Latency => Workload {
            connections: 1,
            outstanding: 1,
            ..w.clone()
        },
        AgentKind::Symmetric | AgentKind::Throughput => w.clone(),
    }
}

/// Summarise the connections' `SO_BUSY_POLL` outcomes.
fn busy_poll_report(conns: &[Conn], requested_us: u32) -> Option<BusyPollReport> {
    let outcomes: Vec<_> = conns.iter().filter_map(Conn::busy_poll).collect();
    let first = *outcomes.first()?;
    let applied = outcomes.iter().all(|o| *o == Ok(requested_us));
    let detail = match first {
        _ if applied => format!(
            "SO_BUSY_POLL {requested_us} µs applied on {} socket(s) (busy polling needs a NAPI \
             device queue: loopback has none)",
            outcomes.len()
        ),
        Ok(v) => format!("SO_BUSY_POLL {requested_us} µs asked, the socket reads back {v} µs"),
        Err(e) => {
            let sysctl = sockopt::busy_read_sysctl().map_or("net.core.busy_read".to_owned(), |v| {
                format!("net.core.busy_read = {v}")
            });
            format!(
                "SO_BUSY_POLL {requested_us} µs not applied: {e} (values above {sysctl} need \
                 CAP_NET_ADMIN)"
            )
        }
    };
    Some(BusyPollReport {
        requested_us,
        applied,
        detail,
    })
}

/// Run load at `rps` as a symmetric agent with software timestamps until `Stop`, the command
/// channel closes, or `max` elapses.
pub fn run(w: &Workload, rps: f64, max: Duration, cmds: &Receiver<Cmd>) {
    run_as(w, AgentOptions::default(), rps, max, cmds);
}

/// Run load at `rps` as the agent `opts` describes (kind, timestamps, busy polling) until
/// `Stop`, the command channel closes, or `max` elapses.
pub fn run_as(w: &Workload, opts: AgentOptions, rps: f64, max: Duration, cmds: &Receiver<Cmd>) {
    let mut st = State {
        snap: Snapshot {
            stamps: StampReport {
                requested: opts.timestamps,
                ..StampReport::default()
            },
            ..Snapshot::default()
        },
        window: Instant::now(),
        measuring: false,
        done_samples: Vec::new(),
    };
    if let Err(e) = run_inner(w, opts, rps, max, cmds, &mut st) {
        st.snap.error = Some(e);
        // Keep answering snapshots so the coordinator learns why.
        while let Ok(c) = cmds.recv() {
            match c {
                Cmd::Snapshot(tx) => {
                    let _ = tx.send(st.snap.clone());
                }
                Cmd::Stop => break,
                Cmd::Measure { .. } => {}
            }
        }
    }
}

fn run_inner(
    w: &Workload,
    opts: AgentOptions,
    rps: f64,
    max: Duration,
    cmds: &Receiver<Cmd>,
    st: &mut State,
) -> Result<(), String> {
    let w = &shaped(w, opts.kind);
    let (shape, req) = w.validate().map_err(|e| e.to_string())?;
    let gap_dist: Dist = shape.with_mean(1e9 / rps).map_err(|e| e.to_string())?;
    let conn_opts = ConnOptions {
        kernel_stamps: opts.timestamps == TsMode::Kernel && opts.kind.measures_latency(),
        busy_poll_us: if opts.kind == AgentKind::Latency {
            opts.busy_poll_us
        } else {
            0
        },
    };
    let mut conns = (0..w.connections)
        .map(|_| {
            Conn::connect(
                &w.target,
                w.transport,
                w.r2p2_timeout_ms * 1_000_000,
                conn_opts,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot connect to {}: {e}", w.target))?;
    st.snap.busy_poll = busy_poll_report(&conns, conn_opts.busy_poll_us);
    let mut rng: Rng = ferrix_dist::rng(w.seed);
    let start = Instant::now();
    st.window = start;
    let mut next_ns = 0.0f64;
    let mut last_send: Option<Instant> = None;
    let mut last_sched = 0.0f64;
    let mut rr = 0usize;
    let mut buf = Vec::with_capacity(256);
    let mut latency_p = 0.0f64;
    loop {
        match cmds.try_recv() {
            Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => return Ok(()),
            Ok(Cmd::Snapshot(tx)) => {
                let _ = tx.send(snapshot(st, start, &conns));
            }
            Ok(Cmd::Measure { samples, sampling }) => {
                let sampling = sampling.max(1);
                if !(st.measuring && sampling == st.snap.sampling) {
                    st.done_samples.clear();
                    st.snap.sent = 0;
                    st.snap.received = 0;
                    st.snap.skipped = 0;
                    st.snap.late = 0;
                    st.snap.gaps_us.clear();
                    st.snap.lateness_us.clear();
                    st.snap.sched_gaps_us.clear();
                    st.snap.stamps = StampReport {
                        requested: opts.timestamps,
                        ..StampReport::default()
                    };
                    st.window = Instant::now();
                }
                st.measuring = true;
                st.snap.sampling = sampling;
                st.snap.target_samples = samples;
                // A throughput agent loads only: it never samples.
                latency_p = if opts.kind.measures_latency() {
                    1.0 / f64::from(sampling)
                } else {
                    0.0
                };
            }
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if now.duration_since(start) > max {
            return Ok(());
        }
        let now_ns = now.duration_since(start).as_nanos() as f64;
        if now_ns - next_ns > MAX_BEHIND_NS {
            // Descheduled (or too slow): skip the missed arrivals instead of bursting them.
            while now_ns - next_ns > MAX_BEHIND_NS {
                next_ns += gap_dist.sample(&mut rng) * f64::from(w.burst);
                st.snap.late += u64::from(w.burst);
            }
            last_send = None;
        }
        if now_ns >= next_ns {
            for _ in 0..w.burst {
                let Some(i) = (0..conns.len())
                    .map(|k| (rr + k) % conns.len())
                    .find(|i| conns[*i].outstanding() < w.outstanding)
                else {
                    st.snap.skipped += 1;
                    continue;
                };
                rr = i + 1;
                buf.clear();
                req.encode(&mut rng, &mut buf);
                let want = st.measuring && st.done_samples.len() < st.snap.target_samples;
                let sampled = want && rng.random::<f64>() < latency_p;
                let t = conns[i]
                    .send(&buf, sampled)
                    .map_err(|e| format!("send to {}: {e}", w.target))?;
                if let Some(prev) = last_send
                    && st.snap.gaps_us.len() < MAX_GAPS
                {
                    st.snap
                        .gaps_us
                        .push(t.duration_since(prev).as_secs_f64() * 1e6);
                    let t_ns = t.duration_since(start).as_nanos() as f64;
                    st.snap.lateness_us.push((t_ns - next_ns) / 1e3);
                    st.snap.sched_gaps_us.push((next_ns - last_sched) / 1e3);
                }
                last_send = Some(t);
                last_sched = next_ns;
                st.snap.sent += 1;
            }
            next_ns += gap_dist.sample(&mut rng) * f64::from(w.burst);
        }
        for c in &mut conns {
            let (samples, target) = (&mut st.done_samples, st.snap.target_samples);
            let stamps = &mut st.snap.stamps;
            let got = c
                .poll(&req, |s: Sample| {
                    if samples.len() < target {
                        samples.push((s.sent, s.latency_us));
                        stamps.count(s.kind);
                        match s.fallback {
                            None => {}
                            Some(NoKernel::MissingTx) => stamps.missing_tx += 1,
                            Some(NoKernel::MissingRx) => stamps.missing_rx += 1,
                            Some(NoKernel::Inconsistent) => stamps.rejected += 1,
                        }
                    }
                })
                .map_err(|e| format!("connection to {}: {e}", w.target))?;
            st.snap.received += got as u64;
        }
    }
}

fn snapshot(st: &State, start: Instant, conns: &[Conn]) -> Snapshot {
    let mut s = st.snap.clone();
    // Why connections fell back to user-space stamps, once per reason with a count.
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for f in conns.iter().flat_map(|c| c.fallbacks()) {
        match reasons.iter_mut().find(|(r, _)| *r == f.as_str()) {
            Some((_, n)) => *n += 1,
            None => reasons.push((f, 1)),
        }
    }
    for (r, n) in reasons {
        s.stamps
            .fallback(format!("{n} of {} connection(s): {r}", conns.len()));
    }
    s.window_secs = st.window.elapsed().as_secs_f64();
    s.samples = st
        .done_samples
        .iter()
        .map(|(t, l)| (t.duration_since(start).as_secs_f64(), *l))
        .collect();
    s.samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}
