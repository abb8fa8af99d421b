//! The coordinator's self-correcting methodology (thesis fig 4.4) for one target load:
//!
//! 1. system stability: start the load, confirm the achieved rate is within a tolerance of the
//!    target and that every agent's inter-transmission gaps pass Anderson-Darling;
//! 2. iid: if any agent's latency autocorrelation is significant, divide the sampling rate by
//!    the first non-significant lag (sampling *interval* × lag) and measure again;
//! 3. stationarity: if the ADF test does not reject a unit root, collect `more_samples` more;
//! 4. confidence intervals: every percentile's per-agent intervals must overlap, and the
//!    averaged interval of the SLO percentile must be narrower than the target, else collect more;
//! 5. stop with results, or after the retry / time limit report inconclusive with the reasons.
//!
//! Agents may be of different kinds (thesis fig 4.2): the load is split over them (latency
//! agents get a small fixed rate, the rest goes to throughput and symmetric agents), throughput
//! is summed over all of them, and latency comes from the latency-capable ones only (symmetric
//! and latency agents). A latency agent's inter-arrivals are reported but do not gate stability
//! when load-carrying agents are present: they carry the workload's arrival process.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent::options::{
    AgentKind, AgentOptions, DEFAULT_BUSY_POLL_US, StampKind, StampReport, TsMode,
};
use crate::control::{AgentClient, AgentError, LatencyReport, Reply, Request, ThroughputReport};
use crate::stats::quantile::QuantileCi;
use crate::workload::Workload;

mod pattern;
pub use pattern::{Experiment, Pattern, bisect, run_pattern};

/// Default rate of one latency agent (requests/s): low enough that its single request in
/// flight is rarely still out at the next arrival (at 50 µs round trips, 5 % of arrivals).
pub const DEFAULT_LATENCY_AGENT_RPS: f64 = 1000.0;

/// Methodology parameters (thesis defaults: 10,000 samples, 1:5 sampling, +10,000 on retry).
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub percentiles: Vec<f64>,
    pub confidence: f64,
    /// The percentile whose CI width is checked against `ci_width_us`.
    pub ci_percentile: f64,
    pub ci_width_us: f64,
    /// Relative CI target: the interval passes when at most `ci_width_us` or this fraction of
    /// the percentile's estimate wide, whichever is larger (0 = absolute only, the thesis's
    /// rule for a µs-scale server).
    #[serde(default)]
    pub ci_width_rel: f64,
    pub load_tolerance: f64,
    pub ad_alpha: f64,
    pub samples: usize,
    pub sampling: u32,
    pub more_samples: usize,
    pub max_retries: usize,
    pub max_lag: usize,
    pub warmup: Duration,
    /// Time limit per load point.
    pub max_time: Duration,
    /// Timestamps the latency-capable agents use.
    pub timestamps: TsMode,
    /// Rate of each latency agent (requests/s) when load-carrying agents are present.
    pub latency_agent_rps: f64,
    /// `SO_BUSY_POLL` of latency agents' sockets (µs, 0 = leave the default).
    pub busy_poll_us: u32,
    /// Quick look (`--quick`): one stability check and one measurement round, whatever their
    /// outcome; the result is never conclusive and lists every check that failed.
    #[serde(default)]
    pub quick: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            percentiles: vec![50.0, 90.0, 99.0],
            confidence: 0.95,
            ci_percentile: 99.0,
            ci_width_us: 10.0,
            ci_width_rel: 0.1,
            load_tolerance: 0.1,
            ad_alpha: 0.01,
            samples: 10_000,
            sampling: 5,
            more_samples: 10_000,
            max_retries: 5,
            max_lag: 20,
            warmup: Duration::from_millis(500),
            max_time: Duration::from_secs(120),
            timestamps: TsMode::Software,
            latency_agent_rps: DEFAULT_LATENCY_AGENT_RPS,
            busy_poll_us: DEFAULT_BUSY_POLL_US,
            quick: false,
        }
    }
}

/// One check of the methodology and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// A percentile averaged over agents.
#[derive(Debug, Clone, Serialize)]
pub struct Percentile {
    pub p: f64,
    pub estimate_us: f64,
    pub low_us: Option<f64>,
    pub high_us: Option<f64>,
}

/// The outcome at one target load.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub target_rps: f64,
    pub achieved_rps: f64,
    /// Responses per second (all agents): what the server answered of what was sent.
    pub received_rps: f64,
    pub conclusive: bool,
    /// A `--quick` result: measured once, not certified by the methodology.
    #[serde(default)]
    pub quick: bool,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub percentiles: Vec<Percentile>,
    pub samples: usize,
    pub sampling: u32,
    /// Which timestamps timed the samples (all latency-capable agents), for humans.
    pub timestamps: String,
    /// The stamp kinds that timed at least one sample, best first.
    pub timestamps_used: Vec<StampKind>,
    /// Samples per stamp kind over the latency-capable agents, and fallback reasons.
    pub stamps: StampReport,
    /// Per agent: kind, rate, samples, timestamps, busy polling.
    pub agents: Vec<AgentPoint>,
    /// (agent, send time s, latency µs) for every sample collected in the final round.
    #[serde(skip)]
    pub raw: Vec<(usize, f64, f64)>,
}

/// One agent's part in a load point.
#[derive(Debug, Clone, Serialize)]
pub struct AgentPoint {
    pub name: String,
    pub kind: AgentKind,
    /// The rate it was asked for.
    pub target_rps: f64,
    pub sent_rps: f64,
    /// Latency samples it contributed (0 for a throughput agent).
    pub samples: usize,
    pub timestamps: Option<String>,
    pub busy_poll: Option<String>,
}

/// Split `total` requests/s over agents of `kinds`: each latency agent gets `latency_rps`
/// (at most an equal share) when load-carrying agents are present, which share the rest
/// equally; agents of one kind share equally.
pub fn split_load(total: f64, kinds: &[AgentKind], latency_rps: f64) -> Vec<f64> {
    let n = kinds.len().max(1) as f64;
    let carriers = kinds.iter().filter(|k| k.carries_load()).count();
    if carriers == 0 || carriers == kinds.len() {
        return vec![total / n; kinds.len()];
    }
    let lat = latency_rps.min(total / n).max(0.0);
    let rest = (total - lat * (kinds.len() - carriers) as f64) / carriers as f64;
    kinds
        .iter()
        .map(|k| if k.carries_load() { rest } else { lat })
        .collect()
}

fn call_all(agents: &mut [AgentClient], req: &Request) -> Result<Vec<Reply>, AgentError> {
    agents.iter_mut().map(|a| a.call(req)).collect()
}

fn throughputs(agents: &mut [AgentClient]) -> Result<Vec<ThroughputReport>, AgentError> {
    agents
        .iter_mut()
        .map(|a| match a.call(&Request::GetThroughput)? {
            Reply::Throughput(t) => Ok(t),
            r => Err(unexpected(a, &r)),
        })
        .collect()
}

/// Latency reports of the agents at `idx` (the latency-capable ones).
fn latencies(agents: &mut [AgentClient], idx: &[usize]) -> Result<Vec<LatencyReport>, AgentError> {
    idx.iter()
        .map(|i| {
            let a = &mut agents[*i];
            match a.call(&Request::GetLatency)? {
                Reply::Latency(l) => Ok(l),
                r => Err(unexpected(a, &r)),
            }
        })
        .collect()
}

/// Fill in which timestamps the latency-capable agents used (reports `lats` of agents `idx`).
fn stamps_of(res: &mut LoadResult, lats: &[LatencyReport], idx: &[usize]) {
    let mut all = StampReport::default();
    for (l, i) in lats.iter().zip(idx) {
        all.requested = l.stamps.requested;
        all.merge(&l.stamps);
        if let Some(p) = res.agents.get_mut(*i) {
            p.samples = l.count;
            p.timestamps = Some(l.timestamps.clone());
            p.busy_poll = l.busy_poll.as_ref().map(|b| b.detail.clone());
        }
    }
    // One description when all agents agree, else one per agent.
    let first = lats
        .first()
        .map(|l| l.timestamps.clone())
        .unwrap_or_default();
    res.timestamps = if lats.iter().all(|l| l.timestamps == first) {
        first
    } else {
        lats.iter()
            .zip(idx)
            .map(|(l, i)| format!("{}: {}", res.agents[*i].name, l.timestamps))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    res.timestamps_used = all.used();
    res.stamps = all;
}

fn unexpected(a: &AgentClient, r: &Reply) -> AgentError {
    AgentError {
        agent: a.name.clone(),
        why: format!("unexpected reply {r:?}"),
    }
}

/// Check load and inter-arrivals; returns the checks and the achieved total rate. A latency
/// agent's inter-arrival test does not gate when load-carrying agents are present.
fn stability(
    ths: &[ThroughputReport],
    agents: &[(String, AgentKind)],
    rps: f64,
    w: &Workload,
    s: &Settings,
) -> (Vec<Check>, f64) {
    let carriers = agents.iter().any(|(_, k)| k.carries_load());
    let total: f64 = ths.iter().map(|t| t.sent_rps).sum();
    let late: u64 = ths.iter().map(|t| t.late + t.skipped).sum();
    let mut checks = vec![Check {
        name: "load",
        passed: (total - rps).abs() <= s.load_tolerance * rps,
        detail: format!(
            "sent {total:.0} of {rps:.0} rps (tolerance {:.0} %, {late} arrivals skipped)",
            s.load_tolerance * 100.0
        ),
    }];
    for (t, (n, kind)) in ths.iter().zip(agents) {
        let gating = kind.carries_load() || !carriers;
        checks.push(match (&t.inter_arrival, &t.inter_arrival_error) {
            (Some(ad), _) => Check {
                name: "inter-arrival",
                passed: ad.p_value >= s.ad_alpha || !gating,
                detail: format!(
                    "{n}: Anderson-Darling vs {} ({}): A² = {:.3}, p = {:.3}{}{}",
                    w.arrival,
                    ad.method,
                    ad.statistic,
                    ad.p_value,
                    schedule_note(t, ad.p_value >= s.ad_alpha, s.ad_alpha),
                    if gating {
                        ""
                    } else {
                        " (latency agent: not gating, its single request in flight thins its \
                         arrivals)"
                    }
                ),
            },
            (None, e) => Check {
                name: "inter-arrival",
                passed: true,
                detail: format!("{n}: not tested: {}", e.clone().unwrap_or_default()),
            },
        });
    }
    (checks, total)
}

/// What the schedule says about a failing (or passing) inter-arrival test.
fn schedule_note(t: &ThroughputReport, passed: bool, alpha: f64) -> String {
    let Some(sc) = &t.schedule else {
        return String::new();
    };
    let base = format!(
        "; schedule A² = {:.3}, p = {:.3}; sends late p50 {:.1} µs, p99 {:.1} µs",
        sc.ad_statistic, sc.ad_p_value, sc.lateness_p50_us, sc.lateness_p99_us
    );
    if passed {
        base
    } else if sc.ad_p_value < alpha {
        format!("{base} (the schedule itself is not the target process: bursts or a wrong shape)")
    } else {
        format!(
            "{base}: the draws are right but the sender could not keep them: sends due within \
             20 µs of the previous one went out {:.1} µs late (median), as each send() \
             blocks the load thread (README: Why inter-arrivals fail)",
            sc.close_lateness_p50_us
        )
    }
}

fn merge_percentiles(lats: &[LatencyReport], s: &Settings) -> (Vec<Percentile>, Check, bool) {
    let mut out = Vec::new();
    let mut overlap = true;
    let mut detail = Vec::new();
    for (i, p) in s.percentiles.iter().enumerate() {
        let cis: Vec<QuantileCi> = lats
            .iter()
            .filter_map(|l| l.percentiles.get(i).map(|c| c.to_ci()))
            .collect();
        for a in 0..cis.len() {
            for b in a + 1..cis.len() {
                if !cis[a].overlaps(&cis[b]) {
                    overlap = false;
                    detail.push(format!("p{p}: agents {a} and {b} disagree"));
                }
            }
        }
        let n = cis.len().max(1) as f64;
        let avg = |f: fn(&QuantileCi) -> Option<f64>| -> Option<f64> {
            cis.iter().map(f).sum::<Option<f64>>().map(|v| v / n)
        };
        out.push(Percentile {
            p: *p,
            estimate_us: cis.iter().map(|c| c.estimate).sum::<f64>() / n,
            low_us: avg(|c| c.low),
            high_us: avg(|c| c.high),
        });
    }
    let check = Check {
        name: "ci overlap",
        passed: overlap,
        detail: if overlap {
            "agents' intervals overlap".into()
        } else {
            detail.join("; ")
        },
    };
    (out, check, overlap)
}

/// Run the methodology at `rps` (total over all agents). `progress` receives status lines.
pub fn measure_load(
    agents: &mut [AgentClient],
    w: &Workload,
    rps: f64,
    s: &Settings,
    progress: &dyn Fn(String),
) -> Result<LoadResult, AgentError> {
    let start = Instant::now();
    let all: Vec<(String, AgentKind)> = agents.iter().map(|a| (a.name.clone(), a.kind)).collect();
    let kinds: Vec<AgentKind> = all.iter().map(|a| a.1).collect();
    let rates = split_load(rps, &kinds, s.latency_agent_rps);
    // The latency-capable agents: their indices and names.
    let lat_idx: Vec<usize> = (0..agents.len())
        .filter(|i| kinds[*i].measures_latency())
        .collect();
    let names: Vec<String> = lat_idx.iter().map(|i| all[*i].0.clone()).collect();
    let mut res = LoadResult {
        target_rps: rps,
        achieved_rps: 0.0,
        received_rps: 0.0,
        conclusive: false,
        quick: s.quick,
        reasons: Vec::new(),
        checks: Vec::new(),
        percentiles: Vec::new(),
        samples: s.samples,
        sampling: s.sampling,
        timestamps: String::new(),
        timestamps_used: Vec::new(),
        stamps: StampReport::default(),
        agents: all
            .iter()
            .zip(&rates)
            .map(|((name, kind), r)| AgentPoint {
                name: name.clone(),
                kind: *kind,
                target_rps: *r,
                sent_rps: 0.0,
                samples: 0,
                timestamps: None,
                busy_poll: None,
            })
            .collect(),
        raw: Vec::new(),
    };
    if lat_idx.is_empty() {
        res.reasons
            .push("no latency-capable agent: all agents are throughput agents".into());
        return Ok(res);
    }
    for (i, a) in agents.iter_mut().enumerate() {
        let workload = Workload {
            seed: w.seed.wrapping_add(i as u64 * 7919),
            ..w.clone()
        };
        a.call(&Request::Configure {
            workload: Box::new(workload),
            percentiles: s.percentiles.clone(),
            confidence: s.confidence,
            max_lag: s.max_lag,
            agent: AgentOptions {
                kind: a.kind,
                timestamps: s.timestamps,
                busy_poll_us: s.busy_poll_us,
            },
        })?;
    }
    let max_secs = s.max_time.as_secs_f64() + 10.0;
    for (a, r) in agents.iter_mut().zip(&rates) {
        a.call(&Request::StartLoad { rps: *r, max_secs })?;
    }
    // 1. System stability.
    progress(format!("{rps:.0} rps: reaching the target load"));
    std::thread::sleep(s.warmup);
    let mut stable = false;
    for attempt in 0..=s.max_retries {
        let tp = throughputs(agents)?;
        res.received_rps = tp.iter().map(|t| t.received_rps).sum();
        for (p, t) in res.agents.iter_mut().zip(&tp) {
            p.sent_rps = t.sent_rps;
        }
        let (checks, total) = stability(&tp, &all, rps, w, s);
        res.achieved_rps = total;
        stable = checks.iter().all(|c| c.passed);
        res.checks = checks;
        if stable || s.quick || start.elapsed() > s.max_time {
            break;
        }
        progress(format!(
            "{rps:.0} rps: load not stable yet (try {})",
            attempt + 1
        ));
        // A fresh window: restart sampling-free measurement so old gaps do not linger.
        call_all(
            agents,
            &Request::StartMeasure {
                samples: 0,
                sampling: 1,
            },
        )?;
        std::thread::sleep(s.warmup.max(Duration::from_millis(300)));
    }
    if !stable {
        res.reasons = res
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} check failed: {}", c.name, c.detail))
            .collect();
        if !s.quick {
            return Ok(res);
        }
    }
    // 2-4. Measurement rounds.
    let (mut samples, mut sampling) = (s.samples, s.sampling.max(1));
    call_all(agents, &Request::StartMeasure { samples, sampling })?;
    let mut retries = 0;
    loop {
        progress(format!(
            "{rps:.0} rps: collecting {samples} samples at 1:{sampling}"
        ));
        let lats = loop {
            let lats = latencies(agents, &lat_idx)?;
            if lats.iter().all(|l| l.count >= samples) || start.elapsed() > s.max_time {
                break lats;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        res.samples = samples;
        res.sampling = sampling;
        stamps_of(&mut res, &lats, &lat_idx);
        res.raw = lats
            .iter()
            .zip(&lat_idx)
            .flat_map(|(l, i)| l.samples.iter().map(move |(t, v)| (*i, *t, *v)))
            .collect();
        let tp = throughputs(agents)?;
        res.received_rps = tp.iter().map(|t| t.received_rps).sum();
        for (p, t) in res.agents.iter_mut().zip(&tp) {
            p.sent_rps = t.sent_rps;
        }
        let (ths, total) = stability(&tp, &all, rps, w, s);
        res.achieved_rps = total;
        let mut checks: Vec<Check> = ths;
        let mut problem: Option<(String, bool)> = None; // (reason, needs more samples)
        if lats.iter().any(|l| l.count < samples) {
            problem = Some((
                "time limit reached before the samples were collected".into(),
                false,
            ));
        }
        // iid.
        let not_iid: Vec<(usize, Option<usize>)> = lats
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match &l.iid {
                Some(x) if !x.iid => Some((i, x.first_insignificant_lag)),
                _ => None,
            })
            .collect();
        checks.push(Check {
            name: "iid",
            passed: not_iid.is_empty(),
            detail: match not_iid.first() {
                None => "no significant Spearman autocorrelation at lag 1".into(),
                Some((i, lag)) => format!(
                    "{}: significant autocorrelation, first insignificant lag {lag:?}",
                    names[*i]
                ),
            },
        });
        // Stationarity.
        let not_stat: Vec<usize> = lats
            .iter()
            .enumerate()
            .filter(|(_, l)| l.stationarity.as_ref().is_none_or(|a| a.p_value >= 0.05))
            .map(|(i, _)| i)
            .collect();
        checks.push(Check {
            name: "stationarity",
            passed: not_stat.is_empty(),
            detail: lats
                .iter()
                .zip(&names)
                .map(|(l, n)| match &l.stationarity {
                    Some(a) => format!("{n}: ADF = {:.2}, p = {:.3}", a.statistic, a.p_value),
                    None => format!("{n}: ADF not computable"),
                })
                .collect::<Vec<_>>()
                .join("; "),
        });
        let (pcts, overlap_check, overlap) = merge_percentiles(&lats, s);
        checks.push(overlap_check);
        let ci_p = pcts.iter().find(|p| (p.p - s.ci_percentile).abs() < 1e-9);
        let width = ci_p.map_or(f64::INFINITY, |p| match (p.low_us, p.high_us) {
            (Some(l), Some(h)) => h - l,
            _ => f64::INFINITY,
        });
        let estimate = ci_p.map_or(0.0, |p| p.estimate_us);
        let target = s.ci_width_us.max(s.ci_width_rel * estimate);
        checks.push(Check {
            name: "ci width",
            passed: width <= target,
            detail: format!(
                "p{} interval {width:.1} µs wide (target {target:.1} µs = max({:.1} µs, {:.0} % \
                 of p{} {estimate:.1} µs))",
                s.ci_percentile,
                s.ci_width_us,
                s.ci_width_rel * 100.0,
                s.ci_percentile
            ),
        });
        res.percentiles = pcts;
        res.checks = checks;
        let mut next_sampling = sampling;
        if problem.is_none() {
            if let Some((i, lag)) = not_iid.first() {
                let lag = lag.unwrap_or(s.max_lag + 1).max(2) as u32;
                next_sampling = sampling.saturating_mul(lag);
                problem = Some((
                    format!("latencies of {} are not iid at 1:{sampling}", names[*i]),
                    false,
                ));
            } else if !not_stat.is_empty() {
                problem = Some((
                    format!("latencies are not stationary (agents {not_stat:?})"),
                    true,
                ));
            } else if !overlap {
                problem = Some(("agents' confidence intervals do not overlap".into(), true));
            } else if width > target {
                problem = Some((
                    format!("p{} confidence interval wider than target", s.ci_percentile),
                    true,
                ));
            } else if !res.checks[0].passed {
                problem = Some((
                    "load drifted from the target during measurement".into(),
                    false,
                ));
            }
        }
        if s.quick {
            // One round, never certified: say what failed (or that nothing did).
            res.reasons.clear();
            res.reasons.extend(
                res.checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| format!("{} check failed: {}", c.name, c.detail)),
            );
            res.reasons.push(format!(
                "--quick: one round of {samples} samples at 1:{sampling}, no retries; not \
                 certified{}",
                problem.map_or(String::new(), |(r, _)| format!(" ({r})"))
            ));
            break;
        }
        let Some((reason, more)) = problem else {
            res.conclusive = true;
            break;
        };
        retries += 1;
        if retries > s.max_retries || start.elapsed() > s.max_time {
            res.reasons.push(reason);
            res.reasons.push(format!(
                "stopped after {} retries / {:.1} s",
                retries - 1,
                start.elapsed().as_secs_f64()
            ));
            break;
        }
        let (next_samples, next) = if more {
            (samples + s.more_samples, next_sampling)
        } else {
            (samples, next_sampling)
        };
        // Bounded time: a retry that cannot finish within the limit is not started; say what
        // it would take instead. A round keeps its samples only at an unchanged sampling rate.
        let slowest = lat_idx
            .iter()
            .map(|i| rates[*i])
            .fold(f64::INFINITY, f64::min)
            .max(1e-9);
        let have = if next == sampling { samples } else { 0 };
        let need_secs = (next_samples.saturating_sub(have)) as f64 * f64::from(next) / slowest;
        let left = s.max_time.as_secs_f64() - start.elapsed().as_secs_f64();
        if need_secs > left {
            res.reasons.push(reason);
            res.reasons.push(format!(
                "stopped after {} retries / {:.1} s: the next round ({next_samples} samples at \
                 1:{next}, {slowest:.0} rps per latency agent) needs {need_secs:.0} s, {:.0} s \
                 left of --max-secs {:.0}; the numbers above are from {samples} samples at \
                 1:{sampling} and are not certified",
                retries - 1,
                start.elapsed().as_secs_f64(),
                left.max(0.0),
                s.max_time.as_secs_f64()
            ));
            break;
        }
        progress(format!("{rps:.0} rps: {reason}; retrying"));
        samples = next_samples;
        sampling = next;
        call_all(agents, &Request::StartMeasure { samples, sampling })?;
    }
    Ok(res)
}

/// Tell every agent to stop (the `exit` message); errors are returned after all were told.
pub fn finish(agents: &mut [AgentClient]) -> Result<(), AgentError> {
    let results: Vec<_> = agents.iter_mut().map(|a| a.call(&Request::Exit)).collect();
    results.into_iter().try_for_each(|r| r.map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_width_of_merged_percentiles() {
        use crate::control::{LatencyReport, QuantileCiWire};
        let rep = |lo, hi| LatencyReport {
            count: 1,
            target: 1,
            sampling: 1,
            percentiles: vec![QuantileCiWire {
                p: 0.99,
                estimate: (lo + hi) / 2.0,
                low: Some(lo),
                high: Some(hi),
            }],
            stationarity: None,
            iid: None,
            samples: Vec::new(),
            timestamps: String::new(),
            timestamps_used: Vec::new(),
            stamps: StampReport::default(),
            kind: AgentKind::Symmetric,
            busy_poll: None,
        };
        let s = Settings {
            percentiles: vec![99.0],
            ..Settings::default()
        };
        let (p, c, ok) = merge_percentiles(&[rep(10.0, 20.0), rep(15.0, 30.0)], &s);
        assert!(ok && c.passed);
        assert_eq!((p[0].low_us, p[0].high_us), (Some(12.5), Some(25.0)));
        let (_, c, ok) = merge_percentiles(&[rep(10.0, 20.0), rep(21.0, 30.0)], &s);
        assert!(!ok && !c.passed);
    }

    #[test]
    fn load_split_over_agent_kinds() {
        use AgentKind::*;
        // Only one kind: equal shares.
        assert_eq!(split_load(900.0, &[Symmetric; 3], 100.0), vec![300.0; 3]);
        assert_eq!(split_load(900.0, &[Latency; 3], 100.0), vec![300.0; 3]);
        // Latency agents get their fixed rate, the load carriers the rest.
        assert_eq!(
            split_load(10_000.0, &[Throughput, Latency, Symmetric], 1000.0),
            vec![4500.0, 1000.0, 4500.0]
        );
        // ... at most an equal share.
        assert_eq!(
            split_load(300.0, &[Throughput, Latency], 1000.0),
            vec![150.0, 150.0]
        );
        let total: f64 = split_load(12_345.0, &[Throughput, Latency, Latency], 500.0)
            .iter()
            .sum();
        assert!((total - 12_345.0).abs() < 1e-6);
    }
}
