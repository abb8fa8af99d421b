//! The CRAB load balancer's SYN path memory to memory: 4096 client SYNs with the Connection
//! Redirect option (distinct client ports), each parsed, given a backend by round robin and
//! rewritten in place (destination address, both checksums, MACs), next to a plain L4
//! forwarder over the same frames in the same run (parse, hash the client, rewrite the MACs:
//! what a DSR load balancer does for every packet of a connection, and what this one does for
//! clients without CRAB). Reports SYNs/s per core and the ratio (numbers.md: one DPDK core ≈
//! 14 M SYN/s). Run: `cargo bench -p ferrix-crab-lb --bench syn`.

use criterion::{BatchSize, Criterion, Throughput};
use ferrix_crab_lb::{Backend, Lb, LbConfig, Policy, Verdict};
use ferrix_net::MacAddr;
use ferrix_net::tcp::crab::{BLOCK, Segment, insert_option};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

const SYNS: usize = 4096;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

fn lb() -> Lb {
    Lb::new(LbConfig {
        vip: VIP,
        port: 80,
        mac: MacAddr([2, 0, 0, 0, 0, 100]),
        report_port: 7001,
        backends: (0..16)
            .map(|i| Backend {
                ip: Ipv4Addr::new(10, 0, 1, i),
                mac: MacAddr([2, 0, 0, 0, 1, i]),
            })
            .collect(),
        policy: Policy::RoundRobin,
        seed: 1,
    })
    .expect("config")
}

/// A 54-byte SYN from 10.0.0.2:`port` to the VIP, then the option inserted (62 bytes).
fn syn(port: u16) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 100]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 2]);
    f[30..34].copy_from_slice(&VIP.octets());
    f[34..36].copy_from_slice(&port.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x02;
    let s = Segment::parse(&f).expect("a TCP segment");
    let mut out = vec![0u8; f.len() + BLOCK];
    assert!(insert_option(&f, &s, VIP, &mut out));
    out
}

/// The plain forwarder: parse, hash the client, rewrite the MACs.
fn forward(lb: &Lb, f: &mut [u8]) -> usize {
    let Some(s) = Segment::parse(f) else { return 0 };
    let i = lb.hashed(s.src, s.sport);
    f[0..6].copy_from_slice(&lb.config().backends[i].mac.0);
    f[6..12].copy_from_slice(&lb.config().mac.0);
    i
}

fn run_lb(lb: &mut Lb, fs: &mut [Vec<u8>]) -> usize {
    let mut n = 0;
    for f in fs.iter_mut() {
        if matches!(lb.handle(black_box(f)), Verdict::Redirect(_)) {
            n += 1;
        }
    }
    n
}

fn run_plain(lb: &Lb, fs: &mut [Vec<u8>]) -> usize {
    fs.iter_mut().map(|f| forward(lb, black_box(f))).sum()
}

fn bench(c: &mut Criterion) {
    let frames: Vec<Vec<u8>> = (0..SYNS).map(|i| syn(40000 + i as u16)).collect();
    let start = lb();
    let mut g = c.benchmark_group("crab-lb");
    g.throughput(Throughput::Elements(SYNS as u64));
    g.bench_function("crab-syn-rr-16", |b| {
        b.iter_batched_ref(
            || (start.clone(), frames.clone()),
            |(l, fs)| black_box(run_lb(l, fs)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("plain-forwarder", |b| {
        b.iter_batched_ref(
            || frames.clone(),
            |fs| black_box(run_plain(&start, fs)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    // The ratio, from the best of 50 rounds of each, interleaved.
    let (mut best_lb, mut best_plain) = (f64::MAX, f64::MAX);
    for _ in 0..50 {
        let (mut l, mut fs) = (start.clone(), frames.clone());
        let t = Instant::now();
        assert_eq!(run_lb(&mut l, &mut fs), SYNS);
        best_lb = best_lb.min(t.elapsed().as_secs_f64());
        let mut fs = frames.clone();
        let t = Instant::now();
        black_box(run_plain(&start, &mut fs));
        best_plain = best_plain.min(t.elapsed().as_secs_f64());
    }
    let (lb_rate, plain_rate) = (SYNS as f64 / best_lb, SYNS as f64 / best_plain);
    println!(
        "crab-lb: {:.1} M SYN/s redirected, plain forwarder {:.1} M/s, ratio {:.2}",
        lb_rate / 1e6,
        plain_rate / 1e6,
        lb_rate / plain_rate
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
