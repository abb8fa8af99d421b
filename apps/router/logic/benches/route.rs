//! The router's decision path memory to memory: full Ethernet/IPv4/UDP frames already in
//! buffers (R2P2 REQ0s and one FEEDBACK per REQ0, JBSQ(2) over 16 servers, steady state),
//! each parsed, decided and, for a REQ0, rewritten in place to its server
//! (`ferrix_net::forward::retarget_udp`), next to a trivial forwarder (parse + rewrite to a
//! fixed server) over the same frames in the same run. Reports packets/s on one core and the
//! ratio; the goal is 10 GbE line rate at 64 B, 14.88 Mpps per core (numbers.md "R2P2 and
//! the JBSQ router": the thesis's software router, 2 cores, 14 Mpps counting FEEDBACK).
//! Run: `cargo bench -p ferrix-router --bench route`.

mod common;

use common::{Count, fixed_server, forward_one, route_one, router, workload};
use criterion::{BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;

const REQS: usize = 4096;

fn bench(c: &mut Criterion) {
    let start = router();
    let frames = workload(&start, REQS);
    let n = frames.len() as u64;
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(n));
    g.bench_function("jbsq2-16-servers", |b| {
        b.iter_batched_ref(
            || (start.clone(), frames.clone()),
            |(r, fs)| {
                let mut count = Count::default();
                for f in fs.iter_mut() {
                    route_one(r, black_box(f), 0, &mut count);
                }
                black_box(count)
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("trivial-forwarder", |b| {
        b.iter_batched_ref(
            || frames.clone(),
            |fs| {
                let mut count = Count::default();
                for f in fs.iter_mut() {
                    forward_one(black_box(f), fixed_server(), &mut count);
                }
                black_box(count)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Best of `rounds` timings of `f` over the frames, in packets per second.
fn best_pps(rounds: usize, n: usize, mut f: impl FnMut() -> Count) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    n as f64 / best
}

/// The two paths timed alternately in one run, printed as Mpps and a ratio.
fn ratio() {
    let start = router();
    let frames = workload(&start, REQS);
    let n = frames.len();
    let (mut r_best, mut f_best) = (0.0f64, 0.0f64);
    for _ in 0..20 {
        let (mut r, mut fs) = (start.clone(), frames.clone());
        r_best = r_best.max(best_pps(1, n, || {
            let mut count = Count::default();
            for f in fs.iter_mut() {
                route_one(&mut r, black_box(f), 0, &mut count);
            }
            assert_eq!(count.forwarded as usize, REQS, "every REQ0 forwarded");
            count
        }));
        let mut fs = frames.clone();
        f_best = f_best.max(best_pps(1, n, || {
            let mut count = Count::default();
            for f in fs.iter_mut() {
                forward_one(black_box(f), fixed_server(), &mut count);
            }
            count
        }));
    }
    println!(
        "router (JBSQ(2), 16 servers, 1 FEEDBACK per REQ0): {:.2} Mpps per core; trivial forwarder: {:.2} Mpps; router/forwarder = {:.2} (line rate at 64 B: 14.88 Mpps)",
        r_best / 1e6,
        f_best / 1e6,
        r_best / f_best
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    ratio();
}
