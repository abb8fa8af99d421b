//! What one run reports, serialisable to JSON and CSV.

use serde::Serialize;

use crate::stats::Estimate;

/// Results of one simulation run; times are in the unit of S̄.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Model spec (`jbsq:n=2,delay=0`).
    pub model: String,
    /// Model name for legends (`JBSQ(2)`).
    pub label: String,
    /// Service distribution spec.
    pub dist: String,
    pub workers: usize,
    /// Offered load (fraction of n/S̄).
    pub load: f64,
    /// Offered arrival rate λ.
    pub lambda: f64,
    pub seed: u64,
    /// Measured requests (admitted and dropped).
    pub requests: u64,
    /// Mean latency (sojourn: wait + service).
    pub mean: Estimate,
    /// Mean wait (latency minus the CPU time of the request).
    pub mean_wait: Estimate,
    /// Fraction of requests that waited at all.
    pub wait_prob: Estimate,
    pub p50: Estimate,
    pub p99: Estimate,
    pub p999: Estimate,
    /// Completed requests per time unit over the measured window.
    pub throughput: f64,
    /// Fraction of worker time busy (all workers), from the CPU time the workers spent.
    pub utilisation: Estimate,
    pub per_worker_utilisation: Vec<f64>,
    /// Little's law, left side: time-average number in the system.
    pub little_l: f64,
    /// Little's law, right side: throughput × mean latency (with the CI of the batch λ·W).
    pub little_lambda_w: Estimate,
    /// Fraction of measured requests executed by a worker other than their home one.
    pub steal_rate: f64,
    /// Fraction of measured requests dropped by admission control.
    pub drop_rate: f64,
    /// SLO (× S̄) and whether p99 meets it.
    pub slo: f64,
    pub meets_slo: bool,
    /// The t quantile used for the CIs (for rescaling to other confidence levels).
    pub t975: f64,
}

impl RunResult {
    /// CSV header matching [`RunResult::csv_row`].
    pub const CSV_HEADER: &'static str = "model,label,dist,workers,load,lambda,seed,requests,mean,mean_ci95,p50,p50_ci95,p99,p99_ci95,p999,p999_ci95,throughput,utilisation,little_l,little_lambda_w,steal_rate,drop_rate,meets_slo";

    /// One CSV line (no newline).
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{:.4},{:.6},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{}",
            self.model.replace(',', ";"),
            self.label,
            self.dist.replace(',', ";"),
            self.workers,
            self.load,
            self.lambda,
            self.seed,
            self.requests,
            self.mean.value,
            self.mean.ci95,
            self.p50.value,
            self.p50.ci95,
            self.p99.value,
            self.p99.ci95,
            self.p999.value,
            self.p999.ci95,
            self.throughput,
            self.utilisation.value,
            self.little_l,
            self.little_lambda_w.value,
            self.steal_rate,
            self.drop_rate,
            self.meets_slo
        )
    }
}
