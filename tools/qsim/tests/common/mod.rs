//! Helpers shared by the model tests: run a model and check the invariants every run must meet.
#![allow(dead_code)]

use qsim::stats::t_quantile;
use qsim::{Estimate, RunResult, SimConfig, simulate};

/// Scale from the reported 95 % half-width to a 99 % one (Student t, batches - 1 dof).
pub fn k99(batches: usize) -> f64 {
    t_quantile(0.995, batches - 1) / t_quantile(0.975, batches - 1)
}

/// Is `x` inside the 99 % CI of `e` (plus a small absolute slack for discretisation)?
pub fn within(e: &Estimate, x: f64, batches: usize, slack: f64) -> bool {
    e.contains(x, k99(batches), slack)
}

/// Half-width multiplier for a family of `checks` tests at 99 % overall (Bonferroni).
pub fn k_family(batches: usize, checks: usize) -> f64 {
    let alpha = 0.01 / checks as f64;
    t_quantile(1.0 - alpha / 2.0, batches - 1) / t_quantile(0.975, batches - 1)
}

/// Run `model` on `dist` and check Little's law and ρ = λ·S̄/n (numbers.md "Kendall notation"
/// / issue 6 "Correctness": they hold in every run within the CI).
pub fn run(model: &str, dist: &str, n: usize, load: f64, requests: u64) -> RunResult {
    run_checked(model, dist, n, load, requests, k99(20))
}

/// [`run`], checking the invariants with CI multiplier `k` (of the 95 % half-width).
pub fn run_checked(
    model: &str,
    dist: &str,
    n: usize,
    load: f64,
    requests: u64,
    k: f64,
) -> RunResult {
    let mut c = SimConfig::new(model.parse().unwrap(), n, dist.parse().unwrap(), load);
    c.requests = requests;
    c.warmup = requests / 20;
    let r = simulate(&c).unwrap();
    check_invariants(&r, k, true);
    r
}

/// Little's law L = λ·W and, unless `overheads` is false, utilisation = λ·S̄/n.
pub fn check_invariants(r: &RunResult, k: f64, utilisation: bool) {
    assert!(
        r.little_lambda_w.contains(r.little_l, k, 1e-3 * r.little_l),
        "{} {} load {}: Little L = {} vs λW = {:?}",
        r.model,
        r.dist,
        r.load,
        r.little_l,
        r.little_lambda_w
    );
    if utilisation {
        assert!(
            r.utilisation.contains(r.load, k, 1e-3),
            "{} {} load {}: utilisation {:?} vs ρ = λ·S̄/n = {}",
            r.model,
            r.dist,
            r.load,
            r.utilisation,
            r.load
        );
    }
}
