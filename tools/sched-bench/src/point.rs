//! One point of a sweep: one policy, one load, one mean service time, run on host threads.

use std::time::{Duration, Instant};

use ferrix_sched::{Config, Policy};
use serde::{Serialize, Serializer};

use crate::Error;
use crate::machine::{Completion, CoreStats, Machine, RunOutput};
use crate::options::HostBenchOptions;
use crate::workload::{LEAD_NS, Spec, Workload};

/// What one point measured. Latencies are in µs; a request's latency is the time its reply was
/// transmitted minus its *scheduled* arrival (open loop: a late core makes requests late).
#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    /// The policy.
    #[serde(serialize_with = "policy_name")]
    pub policy: Policy,
    /// Offered load, as a fraction of the capacity `cores / S̄`.
    pub load: f64,
    /// Mean service time S̄, µs.
    pub mean_us: f64,
    /// The SLO on the p99, µs (`slo_factor`·S̄).
    pub slo_us: f64,
    /// Requests in the latency statistics (the warm-up excluded).
    pub measured: usize,
    /// Latency percentiles, mean and maximum of the measured requests.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub mean_latency_us: f64,
    pub max_latency_us: f64,
    /// `p99_us <= slo_us`.
    pub meets_slo: bool,
    /// Wall time from the first arrival to the last reply, s.
    pub duration_s: f64,
    /// Offered and achieved request rates (all requests), per s.
    pub offered_rps: f64,
    pub achieved_rps: f64,
    /// Events run by each core (its own flows and stolen ones).
    pub events_per_core: Vec<u64>,
    /// Flows stolen, and events run by a core other than their flow's home core.
    pub steals: u64,
    pub stolen_events: u64,
    /// `stolen_events` / all events (the thesis's normalised steal rate, figure 6.8).
    pub steal_fraction: f64,
    /// Events per claim (a claim takes every pending event of a flow; its replies leave together).
    pub events_per_claim: f64,
    /// IPIs sent (for packets, for remote calls), refused by the rate limiter, and handled.
    pub ipis: u64,
    pub ipis_for_packets: u64,
    pub ipis_for_calls: u64,
    pub ipis_rate_limited: u64,
    pub ipis_handled: u64,
    /// IPIs sent per second of the run.
    pub ipis_per_s: f64,
    /// Remote-call batches home cores ran.
    pub remote_batches: u64,
    /// Times a core's thread lost the CPU for >= 20 µs (host noise), and their total, µs.
    pub stalls: u64,
    pub stall_us: f64,
    /// `stall_us` / (cores × duration): the share of the run's CPU time the host took away.
    pub stall_fraction: f64,
    /// `stall_fraction` > the options' `max_stall_fraction`: the numbers are noise-limited.
    pub noisy: bool,
    /// The longest stall, µs.
    pub max_stall_us: f64,
    /// Runs made for this point, noisy reruns included.
    pub attempts: usize,
    /// The p99 of each run [`measure_point`] made (one per seed; this result is the median's run).
    pub p99_runs_us: Vec<f64>,
    /// Checks: requests never completed, completed more than once, and replies of one flow
    /// transmitted out of arrival order. All three must be 0.
    pub lost: usize,
    pub duplicated: usize,
    pub fifo_violations: usize,
}

fn policy_name<S: Serializer>(p: &Policy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// Runs `policy` at `load` (fraction of `opts.cores / mean_us`) with mean service time `mean_us`
/// µs, on `opts.cores` threads, for `opts.warmup_requests + opts.requests_per_point` requests.
///
/// Blocks for about `requests / (load · cores / S̄)` of wall time, using every core it names.
pub fn run_point(
    policy: Policy,
    load: f64,
    mean_us: f64,
    opts: &HostBenchOptions,
) -> Result<PointResult, Error> {
    opts.validate()?;
    if !(load > 0.0 && load < 2.0) {
        return Err(Error::BadOption(format!(
            "load must be in (0, 2), got {load}"
        )));
    }
    if !(mean_us > 0.0 && mean_us <= 1e6) {
        return Err(Error::BadOption(format!(
            "mean service time must be in (0, 1e6] µs, got {mean_us}"
        )));
    }
    let mean_ns = mean_us * 1e3;
    let rate_per_ns = load * opts.cores as f64 / mean_ns;
    let total = opts.warmup_requests + opts.requests_per_point;
    let work = Workload::generate(&Spec {
        cores: opts.cores,
        flows: opts.flows,
        steering: opts.steering,
        service: &opts.service,
        mean_ns,
        rate_per_ns,
        requests: total,
        seed: opts.seed,
    })?;
    let config = Config {
        cores: opts.cores,
        flows_per_core: work.max_flows_per_core,
        policy,
        ipi_min_interval_ns: opts.ipi_min_interval_ns,
    };
    let (machine, homes) = Machine::new(config, &work, opts.ipi_poll_ns);
    let out = machine.run(homes).map_err(|_| Error::WorkerPanicked)?;
    Ok(summarise(
        policy,
        load,
        mean_us,
        opts,
        &work,
        &out,
        rate_per_ns,
    ))
}

/// The point as the bench measures it: `opts.runs_per_point` runs, with seeds `opts.seed`,
/// `opts.seed + 1`, ..., each made with [`run_point_retrying`]; returns the run with the median
/// p99 (the lower median for an even count), with `attempts` and `p99_runs_us` covering all runs.
pub fn measure_point(
    policy: Policy,
    load: f64,
    mean_us: f64,
    opts: &HostBenchOptions,
) -> Result<PointResult, Error> {
    let mut unlimited = Duration::MAX;
    median_of_runs(policy, load, mean_us, opts, &mut unlimited)
}

/// [`measure_point`] charging reruns to `budget`.
pub(crate) fn median_of_runs(
    policy: Policy,
    load: f64,
    mean_us: f64,
    opts: &HostBenchOptions,
    budget: &mut Duration,
) -> Result<PointResult, Error> {
    let mut runs = Vec::with_capacity(opts.runs_per_point);
    for k in 0..opts.runs_per_point {
        let seeded = HostBenchOptions {
            seed: opts.seed.wrapping_add(k as u64),
            ..opts.clone()
        };
        runs.push(retrying(policy, load, mean_us, &seeded, budget)?);
    }
    let p99s: Vec<f64> = runs.iter().map(|r| r.p99_us).collect();
    let attempts = runs.iter().map(|r| r.attempts).sum();
    runs.sort_by(|a, b| a.p99_us.total_cmp(&b.p99_us));
    let mut median = runs.swap_remove((runs.len() - 1) / 2);
    median.attempts = attempts;
    median.p99_runs_us = p99s;
    Ok(median)
}

/// [`run_point`], run again while the run was noisy, up to `opts.max_attempts` runs, pausing
/// `opts.retry_pause_ms` before the first rerun and twice as long before each next one; returns
/// the least-stalled run, with `attempts` set. The retry looks only at the stall meter (host
/// noise), never at the latencies, so it cannot favour a policy.
pub fn run_point_retrying(
    policy: Policy,
    load: f64,
    mean_us: f64,
    opts: &HostBenchOptions,
) -> Result<PointResult, Error> {
    let mut unlimited = Duration::MAX;
    retrying(policy, load, mean_us, opts, &mut unlimited)
}

/// [`run_point_retrying`], charging pauses and reruns to `budget` and not retrying once it is
/// spent.
pub(crate) fn retrying(
    policy: Policy,
    load: f64,
    mean_us: f64,
    opts: &HostBenchOptions,
    budget: &mut Duration,
) -> Result<PointResult, Error> {
    let mut best = run_point(policy, load, mean_us, opts)?;
    let mut attempts = 1;
    let mut pause = Duration::from_millis(opts.retry_pause_ms);
    while best.noisy && attempts < opts.max_attempts && !budget.is_zero() {
        let start = Instant::now();
        std::thread::sleep(pause.min(*budget));
        pause *= 2;
        let again = run_point(policy, load, mean_us, opts)?;
        attempts += 1;
        *budget = budget.saturating_sub(start.elapsed());
        if again.stall_fraction < best.stall_fraction {
            best = again;
        }
    }
    best.attempts = attempts;
    Ok(best)
}

fn summarise(
    policy: Policy,
    load: f64,
    mean_us: f64,
    opts: &HostBenchOptions,
    work: &Workload,
    out: &RunOutput,
    rate_per_ns: f64,
) -> PointResult {
    let n = work.requests.len();
    let mut times: Vec<Option<u64>> = vec![None; n];
    let (mut duplicated, mut fifo_violations) = (0, 0);
    let mut last_of_flow: Vec<Option<u32>> = vec![None; work.flows.len()];
    for &(id, t) in out.completions.iter().flat_map(|log: &Vec<Completion>| log) {
        let slot = &mut times[id as usize];
        if slot.is_some() {
            duplicated += 1;
        }
        *slot = Some(t);
        let last = &mut last_of_flow[work.requests[id as usize].flow as usize];
        if last.is_some_and(|l| l > id) {
            fifo_violations += 1;
        }
        *last = Some(id);
    }
    let lost = times.iter().filter(|t| t.is_none()).count();
    let last_done = times.iter().flatten().copied().max().unwrap_or(LEAD_NS);
    let mut lat_ns: Vec<u64> = times
        .iter()
        .zip(&work.requests)
        .skip(opts.warmup_requests)
        .filter_map(|(t, r)| t.map(|t| t.saturating_sub(r.arrival_ns)))
        .collect();
    lat_ns.sort_unstable();
    let q = |p: f64| quantile_us(&lat_ns, p);
    let mean_latency_us = if lat_ns.is_empty() {
        0.0
    } else {
        lat_ns.iter().map(|&l| l as f64).sum::<f64>() / lat_ns.len() as f64 / 1e3
    };
    let sum = |f: fn(&CoreStats) -> u64| out.cores.iter().map(f).sum::<u64>();
    let events_per_core: Vec<u64> = out
        .cores
        .iter()
        .map(|c| c.local_events + c.stolen_events)
        .collect();
    let events: u64 = events_per_core.iter().sum();
    let stolen_events = sum(|c| c.stolen_events);
    let ipis_for_packets = sum(|c| c.ipis_packets);
    let ipis_for_calls = sum(|c| c.ipis_calls);
    let ipis = ipis_for_packets + ipis_for_calls;
    let first = work.requests.first().map_or(LEAD_NS, |r| r.arrival_ns);
    let duration_s = last_done.saturating_sub(first).max(1) as f64 / 1e9;
    let slo_us = opts.slo_factor * mean_us;
    let p99_us = q(0.99);
    let stall_fraction =
        sum(|c| c.stall_ns) as f64 / 1e9 / (duration_s * out.cores.len().max(1) as f64);
    PointResult {
        policy,
        load,
        mean_us,
        slo_us,
        measured: lat_ns.len(),
        p50_us: q(0.5),
        p99_us,
        p999_us: q(0.999),
        mean_latency_us,
        max_latency_us: lat_ns.last().map_or(0.0, |&l| l as f64 / 1e3),
        meets_slo: !lat_ns.is_empty() && p99_us <= slo_us,
        duration_s,
        offered_rps: rate_per_ns * 1e9,
        achieved_rps: (n - lost) as f64 / duration_s,
        events_per_core,
        steals: sum(|c| c.steals),
        events_per_claim: events as f64
            / (sum(|c| c.steals) + sum(|c| c.local_claims)).max(1) as f64,
        stolen_events,
        steal_fraction: if events == 0 {
            0.0
        } else {
            stolen_events as f64 / events as f64
        },
        ipis,
        ipis_for_packets,
        ipis_for_calls,
        ipis_rate_limited: sum(|c| c.ipis_rate_limited),
        ipis_handled: sum(|c| c.ipis_handled),
        ipis_per_s: ipis as f64 / duration_s,
        remote_batches: sum(|c| c.remote_batches),
        stalls: sum(|c| c.stalls),
        stall_us: sum(|c| c.stall_ns) as f64 / 1e3,
        stall_fraction,
        noisy: stall_fraction > opts.max_stall_fraction,
        max_stall_us: out.cores.iter().map(|c| c.max_stall_ns).max().unwrap_or(0) as f64 / 1e3,
        attempts: 1,
        p99_runs_us: vec![p99_us],
        lost,
        duplicated,
        fifo_violations,
    }
}

/// The `p` quantile (nearest rank) of sorted nanoseconds, in µs.
fn quantile_us(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::quantile_us;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1_000).collect();
        assert_eq!(quantile_us(&v, 0.99), 99.0);
        assert_eq!(quantile_us(&v, 0.5), 50.0);
        assert_eq!(quantile_us(&v, 1.0), 100.0);
        assert_eq!(quantile_us(&[], 0.99), 0.0);
    }
}
