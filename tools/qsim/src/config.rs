//! One simulation run's parameters and the request source every model draws from.
//!
//! The source uses one RNG stream for arrival gaps and service times and a second for policy
//! decisions (random assignment, stealing), so different models at the same seed see the same
//! requests (common random numbers: comparisons and the max-load bisection are far less noisy).

use ferrix_dist::{ArrivalProcess, ArrivalSpec, Dist, Rng, Shape};

use crate::{Model, QsimError};

/// Parameters of one run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub model: Model,
    /// Number of workers n.
    pub workers: usize,
    /// Service-time shape; scaled to `mean`.
    pub service: Shape,
    /// Mean service time S̄ (the time unit of all results; 1 by default).
    pub mean: f64,
    pub arrivals: ArrivalSpec,
    /// Offered load as a fraction of saturation n/S̄: λ = load·n/S̄.
    pub load: f64,
    /// Requests measured (after the warm-up).
    pub requests: u64,
    /// Requests simulated and discarded first.
    pub warmup: u64,
    /// Batches for the batch-means confidence intervals.
    pub batches: usize,
    pub seed: u64,
    /// Latency SLO in units of S̄ (used by SVEN; reported with results).
    pub slo: f64,
}

impl SimConfig {
    /// A run of `model` with `workers` workers at `load`, with defaults for the rest: S̄ = 1,
    /// Poisson arrivals, 200 k measured requests after 10 k warm-up, 20 batches, SLO 10.
    pub fn new(model: Model, workers: usize, service: Shape, load: f64) -> Self {
        Self {
            model,
            workers,
            service,
            mean: 1.0,
            arrivals: ArrivalSpec::Poisson,
            load,
            requests: 200_000,
            warmup: 10_000,
            batches: 20,
            seed: 1,
            slo: 10.0,
        }
    }

    /// Arrival rate λ = load·n/S̄.
    pub fn lambda(&self) -> f64 {
        self.load * self.workers as f64 / self.mean
    }

    /// Reject parameters no model can run with.
    pub fn validate(&self) -> Result<(), QsimError> {
        let bad = |s: String| Err(QsimError::BadOption(s));
        if self.workers == 0 || self.workers > 4096 {
            return bad(format!("workers must be 1..=4096, got {}", self.workers));
        }
        if !(self.load > 0.0 && self.load.is_finite()) {
            return bad(format!("load must be > 0, got {}", self.load));
        }
        if !(self.mean > 0.0 && self.mean.is_finite()) {
            return bad(format!("mean must be > 0, got {}", self.mean));
        }
        if self.batches < 2 || self.requests < 10 * self.batches as u64 {
            return bad(format!(
                "need >= 2 batches and >= 10 requests per batch (requests {}, batches {})",
                self.requests, self.batches
            ));
        }
        if self.requests > 2_000_000_000 {
            return bad(format!("requests must be <= 2e9, got {}", self.requests));
        }
        if let Model::Cscq { fast: Some(k), .. } = self.model
            && k >= self.workers
        {
            return bad(format!("cscq: fast={k} must be < workers={}", self.workers));
        }
        Ok(())
    }
}

/// One request as the models see it.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Sequence number (0 = first request, warm-up included).
    pub idx: u64,
    pub arrival: f64,
    pub service: f64,
}

/// Generates the run's requests in arrival order, plus a policy RNG.
#[derive(Debug)]
pub struct Source {
    rng: Rng,
    /// RNG for model decisions, independent of the request stream.
    pub policy: Rng,
    arrivals: ArrivalProcess,
    service: Dist,
    now: f64,
    next_idx: u64,
    total: u64,
}

impl Source {
    /// The source for `cfg` (already validated).
    pub fn new(cfg: &SimConfig) -> Result<Self, QsimError> {
        Ok(Self {
            rng: ferrix_dist::rng(cfg.seed),
            policy: ferrix_dist::rng(cfg.seed ^ 0x9e37_79b9_7f4a_7c15),
            arrivals: cfg.arrivals.with_rate(cfg.lambda())?,
            service: cfg.service.with_mean(cfg.mean)?,
            now: 0.0,
            next_idx: 0,
            total: cfg.warmup + cfg.requests,
        })
    }

    /// The next request, or None when all have arrived.
    #[inline]
    pub fn next_request(&mut self) -> Option<Request> {
        if self.next_idx == self.total {
            return None;
        }
        self.now += self.arrivals.next_gap(&mut self.rng);
        let r = Request {
            idx: self.next_idx,
            arrival: self.now,
            service: self.service.sample(&mut self.rng),
        };
        self.next_idx += 1;
        Some(r)
    }

    /// The service distribution (for models that need its shape).
    pub fn service(&self) -> &Dist {
        &self.service
    }
}
