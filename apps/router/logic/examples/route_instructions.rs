//! Runs the router's decision path over N REQ0s (and N - 24 FEEDBACKs) for counting
//! instructions per packet under callgrind:
//! `valgrind --tool=callgrind --toggle-collect='*route_packet*' route_instructions N` counts
//! only the packets (the frames and the router are built before), so the total divided by
//! the packet count printed is the cost per packet. The workload is the benchmark's
//! (benches/common): full Ethernet/IPv4/UDP frames, JBSQ(2) over 16 servers, one FEEDBACK per
//! REQ0, the REQ0 rewritten in place. `forward` runs the trivial forwarder (parse + rewrite
//! to a fixed server) over the same frames as the baseline.
//!
//! Usage: `route_instructions N [router|forward]`.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{Count, fixed_server, forward_one, route_one, router, workload};
use ferrix_router::Router;
use std::hint::black_box;

/// One packet through the router path.
#[inline(never)]
fn route_packet(r: &mut Router, f: &mut [u8], count: &mut Count) {
    route_one(r, f, 0, count);
}

/// One packet through the trivial forwarder.
#[inline(never)]
fn forward_packet(f: &mut [u8], count: &mut Count) {
    forward_one(f, fixed_server(), count);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let forward = args.next().as_deref() == Some("forward");
    let mut r = router();
    let mut frames = workload(&r, n);
    let mut count = Count::default();
    for f in &mut frames {
        if forward {
            forward_packet(black_box(f), &mut count);
        } else {
            route_packet(&mut r, black_box(f), &mut count);
        }
    }
    if !forward {
        assert_eq!(count.forwarded as usize, n, "every REQ0 forwarded");
    }
    println!(
        "{} packets ({} REQ0, {} FEEDBACK) through the {}: {:?}",
        frames.len(),
        n,
        frames.len() - n,
        if forward {
            "trivial forwarder"
        } else {
            "router"
        },
        count
    );
}
