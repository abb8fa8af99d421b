//! p4/slog.p4 in p4sim next to its Rust model (`control::slog::Plan`) doing the same work in
//! one run: p4/slog.toml (20000 slots at 0.1 requests per slot over two targets), each request echoed
//! back 20 us later and measured. The p4sim path is the trigger's pass per slot (pace
//! table, I2E clone, egress rewrite, checksum, recirculation) and a pass per reply
//! (latency range table); the Rust path draws from the same generator, decides with
//! `Plan::decide`, builds the request from the template, echoes it (`slog_run::echo`) and
//! buckets the latency (`Plan::bucket_of`). Prints packets/s (slots + replies) of each and
//! the ratio. Run: `cargo bench -p ferrix-p4sim --bench slog`.

use criterion::{BatchSize, Criterion, Throughput};
use p4sim::control::slog::{Plan, SlogConfig};
use p4sim::control::slog_run::{Experiment, echo};
use p4sim::externs::Rng;
use std::hint::black_box;
use std::time::Instant;

/// The example experiment (0.1 requests per slot over two targets, 20000 slots).
const CONFIG: &str = include_str!("../../../p4/slog.toml");
const LATENCY_NS: u64 = 20_000;

/// The whole experiment in p4sim; returns the packets processed (slots + replies).
fn p4_run(ex: &mut Experiment) -> u64 {
    let mut replies = 0;
    while let Some(sent) = ex.slot().expect("slot") {
        if let Some(s) = sent {
            let r = echo(black_box(&s.bytes)).expect("echo");
            let t = ex.slot_time(s.slot) + LATENCY_NS;
            ex.reply(s.port, &r, t).expect("reply");
            replies += 1;
        }
    }
    assert_eq!(ex.counters().received, replies);
    ex.plan.slots + replies
}

/// The same decisions in Rust on the same generator's draws.
fn rust_run(plan: &Plan, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let template = plan.template_frame();
    let mut hist = vec![0u64; plan.edges.len()];
    let mut replies = 0;
    for s in 0..plan.slots {
        let d = rng.below(1 << 32) as u32;
        if let Some(t) = plan.decide(black_box(d)) {
            let mut f = template.clone();
            f[0..6].copy_from_slice(&plan.targets[t].mac.to_be_bytes()[2..]);
            f[30..34].copy_from_slice(&plan.targets[t].ip.to_be_bytes());
            f[18..20].copy_from_slice(&(s as u16).to_be_bytes());
            black_box(echo(black_box(&f)).expect("echo"));
            if let Some(b) = plan.bucket_of(black_box((LATENCY_NS / 1000) as u32)) {
                hist[b] += 1;
            }
            replies += 1;
        }
    }
    black_box(&hist);
    plan.slots + replies
}

fn main() {
    let plan = SlogConfig::from_toml(CONFIG).unwrap().plan().unwrap();
    let start = Experiment::new(plan.clone(), 7, 0).unwrap();
    let n = p4_run(&mut start.clone());
    assert_eq!(rust_run(&plan, 7), n, "the same draws, the same requests");
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("slog");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("rust-model", |b| b.iter(|| rust_run(&plan, 7)));
    g.bench_function("p4sim-slog.p4", |b| {
        b.iter_batched_ref(|| start.clone(), p4_run, BatchSize::LargeInput)
    });
    g.finish();
    c.final_summary();
    let (mut rust_best, mut p4_best) = (0.0f64, 0.0f64);
    for _ in 0..5 {
        let t = Instant::now();
        let m = rust_run(&plan, 7);
        rust_best = rust_best.max(m as f64 / t.elapsed().as_secs_f64());
        let mut ex = start.clone();
        let t = Instant::now();
        let m = p4_run(&mut ex);
        p4_best = p4_best.max(m as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "slog (0.1 requests per slot, {} slots, {n} packets with the replies): Rust model {:.2} Mpps, p4sim slog.p4 {:.3} Mpps; p4sim/Rust = {:.4}",
        plan.slots,
        rust_best / 1e6,
        p4_best / 1e6,
        p4_best / rust_best
    );
}
