//! What one bench run does: cores, flows, steering, service times, loads, request counts.

use ferrix_dist::Shape;
use ferrix_sched::Policy;
use ferrix_sched::ipi::REFERENCE_MIN_INTERVAL_NS;

use crate::Error;

/// How flows (connections) are given a home core, as RSS would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// Flow `f` is homed on core `f mod cores`: the RSS indirection table spreads flows evenly,
    /// so every request lands on a uniformly random core (the random assignment of the
    /// partitioned-FCFS model) and the only imbalance is the short-term one of Poisson arrivals.
    Balanced,
    /// Each flow is homed on a core drawn at random (seeded): a hash of few connections, with a
    /// static imbalance on top of the short-term one.
    Hashed,
    /// Every flow is homed on this core (a degenerate RSS table; used by tests to force stealing).
    AllOn(u8),
}

/// Options of the host half of `ferrix bench sched`. [`HostBenchOptions::default`] is the bench
/// the issue asks for and finishes in about a minute and a half on 2 cores.
#[derive(Debug, Clone)]
pub struct HostBenchOptions {
    /// Simulated cores, one host thread each (default 2).
    pub cores: usize,
    /// Flows (connections) the requests are spread over, uniformly at random (default 64).
    pub flows: usize,
    /// How flows get their home core.
    pub steering: Steering,
    /// Service-time shape, scaled to each mean (default exponential).
    pub service: Shape,
    /// Mean service times S̄ to bench, in µs (default 10 and 50).
    pub service_means_us: Vec<f64>,
    /// Policies to compare (default all three).
    pub policies: Vec<Policy>,
    /// Offered loads of the sweep, as fractions of the capacity `cores / S̄`, increasing.
    pub loads: Vec<f64>,
    /// Runs per point of the sweep and the bisection (each with its own request stream, seeds
    /// `seed`, `seed + 1`, ...); the point reports the run with the median p99, which a single
    /// multi-millisecond host stall in one run does not move.
    pub runs_per_point: usize,
    /// Requests measured per run (after the warm-up).
    pub requests_per_point: usize,
    /// Requests run and discarded first in every run.
    pub warmup_requests: usize,
    /// The SLO: p99 latency <= `slo_factor`·S̄ (default 10, the thesis's).
    pub slo_factor: f64,
    /// Bisection probes between the last sweep load meeting the SLO and the first one missing it.
    pub refine_probes: usize,
    /// At most one IPI per target core per this many ns (default the reference 4 µs).
    pub ipi_min_interval_ns: u64,
    /// How often a core spinning in "application code" looks at its interrupt flag, in ns: the
    /// delivery latency of an IPI in this model (default 500 ns).
    pub ipi_poll_ns: u64,
    /// Seed of the request streams (each load and policy sees the same stream, time-scaled).
    pub seed: u64,
    /// Bisection tolerance of the queueing-model max loads.
    pub model_tolerance: f64,
    /// A run whose threads lost more than this fraction of their time to stalls (the host
    /// taking the CPU away: see README) is noisy and is run again, up to `max_attempts` runs in
    /// all; the least-stalled run is kept. Decided on the stall meter alone, never on latency.
    pub max_stall_fraction: f64,
    /// Most runs of one point (1: never retry).
    pub max_attempts: usize,
    /// Pause before the first rerun of a noisy point, ms; doubled before each further rerun
    /// (host noise here comes in bursts of seconds to tens of seconds).
    pub retry_pause_ms: u64,
    /// Wall time [`crate::run`] may spend in all on pauses and reruns, s: bounds the bench when
    /// the host stays noisy (points then stay flagged noisy).
    pub retry_budget_s: f64,
}

impl Default for HostBenchOptions {
    fn default() -> Self {
        Self {
            cores: 2,
            flows: 64,
            steering: Steering::Balanced,
            service: Shape::Exponential,
            service_means_us: vec![10.0, 50.0],
            policies: Policy::ALL.to_vec(),
            loads: vec![0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9],
            runs_per_point: 3,
            requests_per_point: 10_000,
            warmup_requests: 1_000,
            slo_factor: 10.0,
            refine_probes: 3,
            ipi_min_interval_ns: REFERENCE_MIN_INTERVAL_NS,
            ipi_poll_ns: 500,
            seed: 1,
            model_tolerance: 0.002,
            max_stall_fraction: 0.03,
            max_attempts: 5,
            retry_pause_ms: 250,
            retry_budget_s: 60.0,
        }
    }
}

impl HostBenchOptions {
    /// A small, quick configuration (a few thousand requests per point): for tests and smoke runs,
    /// not for numbers.
    pub fn quick() -> Self {
        Self {
            service_means_us: vec![20.0],
            loads: vec![0.5, 0.8],
            runs_per_point: 1,
            requests_per_point: 3_000,
            warmup_requests: 300,
            refine_probes: 1,
            model_tolerance: 0.01,
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Rejects options no run can use.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |s: String| Err(Error::BadOption(s));
        if !(1..=ferrix_sched::flow_id::MAX_CORES).contains(&self.cores) {
            return bad(format!("cores must be 1..=256, got {}", self.cores));
        }
        if self.flows == 0 || self.flows > 1 << 20 {
            return bad(format!("flows must be 1..=2^20, got {}", self.flows));
        }
        if let Steering::AllOn(c) = self.steering
            && usize::from(c) >= self.cores
        {
            return bad(format!(
                "steering all-on core {c}, but only {} cores",
                self.cores
            ));
        }
        if self
            .service_means_us
            .iter()
            .any(|&m| !(m > 0.0 && m <= 1e6))
        {
            return bad(format!(
                "service means must be in (0, 1e6] µs, got {:?}",
                self.service_means_us
            ));
        }
        if self.policies.is_empty() {
            return bad("no policy to run".into());
        }
        if self.loads.is_empty()
            || self.loads.iter().any(|&l| !(l > 0.0 && l < 2.0))
            || self.loads.windows(2).any(|w| w[0] >= w[1])
        {
            return bad(format!(
                "loads must be increasing, each in (0, 2), got {:?}",
                self.loads
            ));
        }
        if self.requests_per_point == 0 || self.requests_per_point + self.warmup_requests > 1 << 30
        {
            return bad(format!(
                "requests per point must be 1..=2^30, got {}",
                self.requests_per_point
            ));
        }
        if !(self.slo_factor > 0.0 && self.slo_factor.is_finite()) {
            return bad(format!("SLO factor must be > 0, got {}", self.slo_factor));
        }
        if self.ipi_poll_ns == 0 {
            return bad("the IPI poll interval must be > 0 ns".into());
        }
        if !(self.model_tolerance > 0.0 && self.model_tolerance < 0.5) {
            return bad(format!(
                "model tolerance must be in (0, 0.5), got {}",
                self.model_tolerance
            ));
        }
        if !(self.retry_budget_s >= 0.0 && self.retry_budget_s <= 1e6) {
            return bad(format!(
                "retry budget must be in [0, 1e6] s, got {}",
                self.retry_budget_s
            ));
        }
        if self.max_stall_fraction.is_nan()
            || self.max_stall_fraction < 0.0
            || self.max_attempts == 0
            || self.runs_per_point == 0
        {
            return bad(format!(
                "need max stall fraction >= 0, max attempts >= 1 and runs per point >= 1, got {}, {} \
                 and {}",
                self.max_stall_fraction, self.max_attempts, self.runs_per_point
            ));
        }
        Ok(())
    }
}
