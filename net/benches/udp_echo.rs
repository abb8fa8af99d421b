//! The UDP echo fast path at the server: `receive` + `udp_reply_in_place` on a valid request
//! frame, against a plain memcpy of the same frame measured in the same run (on noisy machines
//! the ratio is the number to compare). Run: `cargo bench -p ferrix-net --bench udp_echo`.
//!
//! The target is <= 1,000 instructions per request/reply at the server; count them with
//! `examples/echo_instructions.rs` under callgrind (see net/README.md).

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use ferrix_net::corpus::{CaptureTx, Endpoints};
use ferrix_net::{ArpConfig, ArpTable, NetStack};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOADS: [usize; 2] = [64, 1024];

fn server(ep: &Endpoints) -> NetStack {
    let mut s = NetStack::new(
        ep.server_config(),
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    s.bind_udp(ep.server_port).expect("bind");
    s
}

/// One echo: parse the request, reply in place with the same payload.
fn echo(s: &mut NetStack, tx: &mut CaptureTx, frame: &mut [u8]) -> usize {
    let n = match s.receive(frame, 0, tx) {
        Some(d) => d.payload.len(),
        None => return 0,
    };
    s.udp_reply_in_place(frame, n).unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let ep = Endpoints::default();
    for size in PAYLOADS {
        let template = ep.udp(&vec![0xa5; size]);
        let mut g = c.benchmark_group(format!("udp_echo/{size}B"));
        g.throughput(Throughput::Elements(1));
        let mut s = server(&ep);
        let mut tx = CaptureTx::default();
        g.bench_function("receive+reply_in_place", |b| {
            b.iter_batched_ref(
                || template.clone(),
                |f| black_box(echo(&mut s, &mut tx, f)),
                BatchSize::SmallInput,
            )
        });
        let mut dst = vec![0u8; template.len()];
        g.bench_function("memcpy_baseline", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&template));
                black_box(&mut dst);
            })
        });
        g.finish();
    }
}

/// Interleaved timing of both paths (frame copy included in both, so the difference is the
/// stack's), printed as a ratio.
fn ratio_summary() {
    let ep = Endpoints::default();
    for size in PAYLOADS {
        let template = ep.udp(&vec![0xa5; size]);
        let mut s = server(&ep);
        let mut tx = CaptureTx::default();
        let mut frame = template.clone();
        let iters = 200_000u32;
        let mut best = [Duration::MAX; 2];
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..iters {
                frame.copy_from_slice(black_box(&template));
                black_box(&mut frame);
            }
            best[0] = best[0].min(t.elapsed());
            let t = Instant::now();
            for _ in 0..iters {
                frame.copy_from_slice(black_box(&template));
                black_box(echo(&mut s, &mut tx, &mut frame));
            }
            best[1] = best[1].min(t.elapsed());
        }
        let copy = best[0].as_secs_f64() * 1e9 / f64::from(iters);
        let echo = best[1].as_secs_f64() * 1e9 / f64::from(iters);
        println!(
            "udp_echo/{size}B: memcpy {copy:.1} ns, memcpy+receive+reply {echo:.1} ns, \
             stack alone {:.1} ns = {:.1}x the memcpy",
            echo - copy,
            (echo - copy) / copy.max(f64::MIN_POSITIVE)
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio_summary();
}
