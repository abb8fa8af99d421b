//! `qsim bench`: simulated requests per second of M/G/n/FCFS on one core, both for the bare
//! simulation loop (arrivals, service draws, worker choice) and for a full [`simulate`] run with
//! every statistic. A benchmark, not a test: it only reports.

use std::time::Instant;

use crate::config::Source;
use crate::models::argmin;
use crate::{QsimError, SimConfig, simulate};

/// Requests per second measured by [`run`].
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    pub requests: u64,
    /// Bare loop: no recording.
    pub core_per_sec: f64,
    /// `simulate` with recording, percentiles and CIs.
    pub full_per_sec: f64,
}

/// Time `cfg` (its model is ignored: always M/G/n/FCFS) both ways.
pub fn run(cfg: &SimConfig) -> Result<BenchResult, QsimError> {
    let cfg = SimConfig {
        model: crate::Model::CentralFcfs,
        ..cfg.clone()
    };
    cfg.validate()?;
    let total = cfg.warmup + cfg.requests;

    let mut src = Source::new(&cfg)?;
    let mut free = vec![0.0f64; cfg.workers];
    let mut sink = 0.0;
    let t = Instant::now();
    while let Some(r) = src.next_request() {
        let (w, f) = argmin(&free);
        let dep = f.max(r.arrival) + r.service;
        free[w] = dep;
        sink += dep - r.arrival;
    }
    let core = t.elapsed().as_secs_f64();
    std::hint::black_box(sink);

    let t = Instant::now();
    std::hint::black_box(simulate(&cfg)?);
    let full = t.elapsed().as_secs_f64();
    Ok(BenchResult {
        requests: total,
        core_per_sec: total as f64 / core,
        full_per_sec: total as f64 / full,
    })
}
