//! p4/aggregator.p4 in p4sim next to ferrix_raft's `Aggregator` making the same decisions,
//! in one run, on the same frames: a 5-member cluster in steady state, the leader's
//! AGG_AE_REQ with 4 entries and then the 4 followers' AE_REPs (the third brings the
//! majority: one AGG_COMMIT to all 5). The Rust path is the harness's transport (frame
//! checks, `Aggregator::receive`, a `write_udp_frame` per destination); the p4sim path is
//! `Switch::inject` (parser, pipeline with multicast, deparser). Prints packets/s of each
//! and the ratio. Run: `cargo bench -p ferrix-p4sim --bench aggregator`.

#[path = "../tests/agg_common/mod.rs"]
mod agg_common;

use agg_common::*;
use criterion::{BatchSize, Criterion, Throughput};
use ferrix_raft::{ClientId, Message, Meta, WireEntry};
use std::hint::black_box;
use std::time::Instant;

const NODES: usize = 5;
const ROUNDS: usize = 1000;
const ENTRIES: u64 = 4;

/// The frames, checked by a dry run to decide the same; and the packets sent per pass.
fn workload(b: &Both) -> (Vec<Vec<u8>>, usize) {
    let mut dry = b.clone();
    let mut frames = vec![];
    let mut out = 0;
    let leader = 0usize;
    let probe = datagram(leader as u8, &Message::AggProbeReq { term: 1 });
    frames.push(frame(member_addr(leader), agg_addr(), &probe, false));
    for r in 0..ROUNDS as u64 {
        let prev = r * ENTRIES;
        let m = Message::AggAppendReq {
            term: 1,
            prev_index: prev,
            prev_term: 1,
            commit: prev,
            term_start: 1,
            entries: (0..ENTRIES)
                .map(|i| WireEntry {
                    term: 1,
                    meta: Some(Meta {
                        id: ClientId {
                            ip: 0x0a00_0101,
                            port: 20_000,
                            rid: (prev + i) as u16,
                        },
                        read_only: false,
                        replier: (i % NODES as u64) as u8,
                    }),
                    body: None,
                })
                .collect(),
        };
        frames.push(frame(
            member_addr(leader),
            agg_addr(),
            &datagram(leader as u8, &m),
            false,
        ));
        for f in 1..NODES {
            let m = Message::AppendRep {
                term: 1,
                success: true,
                index: prev + ENTRIES,
                hint_term: 1,
                applied: prev,
            };
            frames.push(frame(
                member_addr(f),
                agg_addr(),
                &datagram(f as u8, &m),
                false,
            ));
        }
    }
    for f in &frames {
        let (r, p) = dry.step(f);
        assert_eq!(r, p);
        out += r.len();
    }
    assert_eq!(dry.agg.stats().commits, ROUNDS as u64);
    (frames, out)
}

fn rust_pass(b: &mut Both, frames: &[Vec<u8>]) -> usize {
    frames.iter().map(|f| b.rust(black_box(f)).len()).sum()
}

fn p4_pass(b: &mut Both, frames: &[Vec<u8>]) -> usize {
    frames.iter().map(|f| b.p4(black_box(f)).len()).sum()
}

fn main() {
    let start = Both::new(NODES);
    let (frames, sent) = workload(&start);
    let n = frames.len();
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("aggregator");
    g.throughput(Throughput::Elements(n as u64));
    let fresh = || start.clone();
    g.bench_function("ferrix-raft-aggregator", |bch| {
        bch.iter_batched_ref(fresh, |b| rust_pass(b, &frames), BatchSize::LargeInput)
    });
    g.bench_function("p4sim-aggregator.p4", |bch| {
        bch.iter_batched_ref(fresh, |b| p4_pass(b, &frames), BatchSize::LargeInput)
    });
    g.finish();
    c.final_summary();
    // Both timed alternately in one run: best of 10 each.
    let (mut rust_best, mut p4_best) = (0.0f64, 0.0f64);
    for _ in 0..10 {
        let mut b = fresh();
        let t = Instant::now();
        assert_eq!(rust_pass(&mut b, &frames), sent);
        rust_best = rust_best.max(n as f64 / t.elapsed().as_secs_f64());
        let mut b = fresh();
        let t = Instant::now();
        assert_eq!(p4_pass(&mut b, &frames), sent);
        p4_best = p4_best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "aggregator ({NODES} members, {ENTRIES} entries per AGG_AE_REQ, {n} frames in, {sent} out): ferrix-raft Aggregator {:.2} Mpps, p4sim aggregator.p4 {:.3} Mpps; p4sim/Rust = {:.4}",
        rust_best / 1e6,
        p4_best / 1e6,
        p4_best / rust_best
    );
}
