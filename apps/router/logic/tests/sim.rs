//! Deterministic host simulation of the router (tests/harness): the real `Router` between
//! simulated Poisson clients and FCFS servers, compared with qsim's queueing models on the
//! same request stream, the policies against each other, SVEN under overload, and faults.
//! Every number is simulated time; every seed is fixed and printed on failure.

mod harness;

use ferrix_dist::Shape;
use ferrix_router::{Balance, RouterConfig, SvenConfig};
use harness::{Faults, MEAN_NS, Report, Spec, ns, run, server_addr};
use qsim::{Model, SimConfig};

const K: usize = 16;
const BATCHES: usize = 20;

fn load(service: Shape, load: f64, requests: u64, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(Model::CentralFcfs, K, service, load);
    c.requests = requests;
    c.warmup = 10_000;
    c.batches = BATCHES;
    c.seed = seed;
    c
}

fn router(balance: Balance) -> RouterConfig {
    RouterConfig {
        balance,
        seed: 0x5eed,
        ..RouterConfig::default()
    }
}

/// The router in front of `K` servers announcing `bound`, one-way router-server delay
/// `delay` (in S̄), no client-side delay (so latency is qsim's: router arrival to completion).
fn sim(balance: Balance, bound: u32, delay: f64, cfg: &SimConfig) -> Report {
    let mut spec = Spec::new(router(balance), cfg.clone(), bound);
    spec.delay_rs_ns = ns(delay);
    run(&spec)
}

fn qsim_p99(model: &str, cfg: &SimConfig) -> qsim::Estimate {
    let mut c = cfg.clone();
    c.model = model.parse().expect("model");
    qsim::simulate(&c).expect("qsim").p99
}

/// Same estimate within the two CIs combined (plus 1 % for the ns rounding of the
/// simulation's clock).
fn agree(a: qsim::Estimate, b: qsim::Estimate) -> bool {
    let half = (a.ci95 * a.ci95 + b.ci95 * b.ci95).sqrt();
    (a.value - b.value).abs() <= half + 0.01 * b.value
}

/// (a) JBSQ(1) and JBSQ(2), exponential service, 16 servers: the router's p99 matches
/// qsim's `jbsq:n=N,delay=d` (and, at d = 0, JBSQ(1) matches `mg-n-fcfs`) at loads 0.5, 0.7,
/// 0.85.
#[test]
fn jbsq_tracks_qsim_models() {
    let seed = 11;
    let mut rows = Vec::new();
    for &l in &[0.5, 0.7, 0.85] {
        let cfg = load(Shape::Exponential, l, 100_000, seed);
        // JBSQ(1) with a delay loses a round trip of capacity per request (a server idles
        // while its FEEDBACK and next REQ0 travel): d = 0.1 S̄ keeps it below saturation only
        // up to load 1/1.2.
        for (n, delay) in [(1u32, 0.0), (1, 0.1), (2, 0.0), (2, 0.25)] {
            if n == 1 && delay > 0.0 && l > 0.8 {
                continue;
            }
            let r = sim(Balance::Jbsq(n), n, delay, &cfg);
            assert_eq!(r.answered(), r.latency.len(), "all answered (seed {seed}): {}", r.stats);
            let got = r.p99(BATCHES);
            let model = format!("jbsq:n={n},delay={delay}");
            let want = qsim_p99(&model, &cfg);
            rows.push(format!(
                "load {l:.2} JBSQ({n}) d={delay}: sim p99 {:.3} ± {:.3}, qsim {model} {:.3} ± {:.3}",
                got.value, got.ci95, want.value, want.ci95
            ));
            assert!(agree(got, want), "seed {seed}: {}", rows.last().unwrap());
            if n == 1 && delay == 0.0 {
                let fcfs = qsim_p99("mg-n-fcfs", &cfg);
                rows.push(format!(
                    "load {l:.2} JBSQ(1) d=0: sim p99 {:.3}, qsim mg-n-fcfs {:.3} ± {:.3}",
                    got.value, fcfs.value, fcfs.ci95
                ));
                assert!(agree(got, fcfs), "seed {seed}: {}", rows.last().unwrap());
            }
        }
    }
    println!("{}", rows.join("\n"));
}

