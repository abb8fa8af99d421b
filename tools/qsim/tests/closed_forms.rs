//! The simulator against queueing theory's closed forms (issue 6 "Correctness";
//! shared/spec/numbers.md "Queueing-model facts a simulator must reproduce exactly").

mod common;

use common::{run, within};
use qsim::theory;

const B: usize = 20; // SimConfig::new's batch count

#[test]
fn mm1_mean_wait_and_p99_sojourn() {
    for rho in [0.5, 0.8] {
        let r = run("mg-n-fcfs", "exp", 1, rho, 1_000_000);
        let w = theory::mm1_mean_wait(rho);
        assert!(
            within(&r.mean_wait, w, B, 0.0),
            "rho {rho}: wait {:?} vs {w}",
            r.mean_wait
        );
        let p99 = theory::mm1_sojourn_quantile(rho, 0.99);
        assert!(
            within(&r.p99, p99, B, 0.0),
            "rho {rho}: p99 {:?} vs {p99}",
            r.p99
        );
        // Erlang C for n = 1 is ρ: the probability of waiting.
        assert!(within(&r.wait_prob, rho, B, 0.0), "{:?}", r.wait_prob);
    }
}

#[test]
fn mmn_erlang_c_wait_probability_and_mean() {
    for (n, rho) in [(4, 0.7), (16, 0.9)] {
        let r = run("mg-n-fcfs", "exp", n, rho, 1_000_000);
        let c = theory::erlang_c(n, rho);
        assert!(
            within(&r.wait_prob, c, B, 0.0),
            "n {n} rho {rho}: P[wait] {:?} vs C {c}",
            r.wait_prob
        );
        let w = theory::mmn_mean_wait(n, rho);
        assert!(
            within(&r.mean_wait, w, B, 0.0),
            "n {n} rho {rho}: wait {:?} vs {w}",
            r.mean_wait
        );
        let p99 = theory::mmn_sojourn_quantile(n, rho, 0.99);
        assert!(
            within(&r.p99, p99, B, 0.0),
            "n {n} rho {rho}: p99 {:?} vs {p99}",
            r.p99
        );
    }
}

#[test]
fn md1_pollaczek_khinchine() {
    // numbers.md: M/G/1 mean wait Tw = ½·ρ·Ts/(1-ρ)·(1 + (σ/Ts)²); deterministic σ = 0.
    for rho in [0.5, 0.8] {
        let r = run("mg-n-fcfs", "det", 1, rho, 500_000);
        let w = theory::mg1_mean_wait(rho, 1.0, 0.0);
        assert!(
            within(&r.mean_wait, w, B, 0.0),
            "rho {rho}: {:?} vs {w}",
            r.mean_wait
        );
    }
    // And M/G/1 with bimodal-1 service (σ² = 0.9·0.25 + 0.1·30.25 - 1 = 2.25).
    let r = run("mg-n-fcfs", "bimodal-1", 1, 0.6, 1_000_000);
    let w = theory::mg1_mean_wait(0.6, 1.0, 1.5);
    assert!(within(&r.mean_wait, w, B, 0.0), "{:?} vs {w}", r.mean_wait);
}

#[test]
fn min_p99_at_low_load() {
    // numbers.md: min p99 (load -> 0): deterministic 1, exponential ln(100) ≈ 4.6, bimodal-1
    // 5.5, bimodal-2 0.5 (S̄ = 1).
    for (dist, want) in [
        ("det", 1.0),
        ("exp", 100f64.ln()),
        ("bimodal-1", 5.5),
        ("bimodal-2", 0.5),
    ] {
        let r = run("mg-n-fcfs", dist, 16, 0.01, 300_000);
        assert!(
            within(&r.p99, want, B, 1e-6),
            "{dist}: p99 {:?} vs {want}",
            r.p99
        );
        assert!(
            (r.p99.value - want).abs() < 0.05 * want,
            "{dist}: {}",
            r.p99.value
        );
    }
}

#[test]
fn ps_mm1_mean_sojourn() {
    // M/M/1/PS has the same mean sojourn as FCFS, 1/(1-ρ) (and it is insensitive to the service
    // distribution: M/D/1/PS too).
    for dist in ["exp", "det"] {
        let r = run("mg-n-ps", dist, 1, 0.7, 500_000);
        let t = 1.0 / 0.3;
        assert!(within(&r.mean, t, B, 0.0), "{dist}: {:?} vs {t}", r.mean);
    }
}
