//! Criterion benchmark: simulated requests per second of M/G/16/FCFS (exponential, load 0.9),
//! the speed target (>= 10 M requests/s on one core). `qsim bench` reports the same.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qsim::{Model, SimConfig, simulate};

fn mg16_fcfs(c: &mut Criterion) {
    let mut cfg = SimConfig::new(Model::CentralFcfs, 16, ferrix_dist::Shape::Exponential, 0.9);
    cfg.requests = 1_000_000;
    cfg.warmup = 0;
    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(cfg.requests));
    g.sample_size(10);
    g.bench_function("mg16_fcfs_exp_1M", |b| {
        b.iter(|| simulate(std::hint::black_box(&cfg)).map(|r| r.p99.value))
    });
    g.finish();
}

criterion_group!(benches, mg16_fcfs);
criterion_main!(benches);
