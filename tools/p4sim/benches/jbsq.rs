//! p4/jbsq.p4 in p4sim next to ferrix-router making the same decisions, in one run, on the
//! same frames: REQ0s from 64 clients over 16 servers with JBSQ(2), and after each REQ0 (once
//! `LAG` are outstanding) the FEEDBACK of the request sent `LAG` REQ0s before, so both stay
//! in steady state. The Rust path is what its callers do (frame checks, `Router::handle`,
//! `retarget_udp`); the p4sim path is `Switch::run` (parser, pipeline, recirculation passes
//! of the search, deparser). Prints packets/s of each and the ratio.
//! Run: `cargo bench -p ferrix-p4sim --bench jbsq`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::net::SocketAddrV4;
use std::time::Instant;

const SERVERS: usize = 16;
const LAG: usize = 24;
const REQS: usize = 2048;

/// The frames, built by a dry run of a copy of `b`; checks both decide the same on them.
fn workload(b: &Both) -> Vec<Vec<u8>> {
    let mut dry = b.clone();
    let mut frames = vec![];
    let mut sent: Vec<((u32, u16, u16), usize)> = vec![];
    let mut served = [0u64; SERVERS];
    for i in 0..REQS {
        let c = client_addr(i % 64);
        let f = frame(
            c,
            SocketAddrV4::new(ROUTER_IP, REQ_PORT),
            &req0((i / 64) as u16, 0),
            false,
        );
        let (r, p) = dry.step(&f);
        assert_eq!(r, p, "REQ0 {i}");
        assert_eq!(r.len(), 1, "REQ0 {i} forwarded");
        sent.push((identity(&r[0].1), usize::from(r[0].0) - 1));
        frames.push(f);
        if i >= LAG {
            let ((ip, port, rid), s) = sent[i - LAG];
            served[s] += 1;
            let client = SocketAddrV4::new(ip.into(), port);
            let f = frame(
                server_addr(s),
                SocketAddrV4::new(ROUTER_IP, FB_PORT),
                &feedback(client, rid, Some((2, served[s]))),
                false,
            );
            let (r, p) = dry.step(&f);
            assert!(r.is_empty() && p.is_empty());
            frames.push(f);
        }
    }
    frames
}

fn rust_pass(b: &mut Both, frames: &[Vec<u8>]) -> usize {
    frames.iter().map(|f| b.rust(black_box(f)).len()).sum()
}

fn p4_pass(b: &mut Both, frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .map(|f| b.sw.run(0, black_box(f), 0, 1000).map_or(0, |t| t.len()))
        .sum()
}

fn main() {
    let start = Both::new(SERVERS, 2);
    let frames = workload(&start);
    let n = frames.len();
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("jbsq");
    g.throughput(Throughput::Elements(n as u64));
    let fresh = || start.clone();
    g.bench_function("ferrix-router", |bch| {
        bch.iter_batched_ref(fresh, |b| rust_pass(b, &frames), BatchSize::LargeInput)
    });
    g.bench_function("p4sim-jbsq.p4", |bch| {
        bch.iter_batched_ref(fresh, |b| p4_pass(b, &frames), BatchSize::LargeInput)
    });
    g.finish();
    c.final_summary();
    // Both timed alternately in one run: best of 10 each.
    let (mut rust_best, mut p4_best, mut passes) = (0.0f64, 0.0f64, 0u64);
    for _ in 0..10 {
        let mut b = fresh();
        let t = Instant::now();
        assert_eq!(rust_pass(&mut b, &frames), REQS);
        rust_best = rust_best.max(n as f64 / t.elapsed().as_secs_f64());
        let mut b = fresh();
        let before = b.sw.stats.passes;
        let t = Instant::now();
        assert_eq!(p4_pass(&mut b, &frames), REQS);
        p4_best = p4_best.max(n as f64 / t.elapsed().as_secs_f64());
        passes = b.sw.stats.passes - before;
    }
    println!(
        "jbsq (JBSQ(2), 16 servers, 1 FEEDBACK per REQ0, {n} frames): ferrix-router {:.2} Mpps, p4sim jbsq.p4 {:.3} Mpps ({:.2} pipeline passes per frame); p4sim/router = {:.4}",
        rust_best / 1e6,
        p4_best / 1e6,
        passes as f64 / n as f64,
        p4_best / rust_best
    );
}
