//! Differential tests: p4/sven.p4 (SVEN in front of JBSQ) in p4sim with its control plane
//! against ferrix-router with `Balance::Jbsq(n)` and SVEN, packet by packet, with the
//! router's own random draws injected into the switch's `random`; and a statistical test of
//! the switch's drop rates with its own (seeded) randomness. p4/README.md ("sven.p4").

mod common;

use common::*;
use p4sim::control::sven::{self, SvenControl, SvenParams};
use p4sim::control::{ControlFile, jbsq};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

fn params() -> SvenParams {
    SvenParams {
        slo_ns: 6_000,
        percentile: 0.9,
        period_ns: 20_000,
        step: 0.05,
        cap: 0.6,
        alpha: 0.5,
        no_drop: 1 << 1,
    }
}

/// What one trace did (for the totals the tests require).
#[derive(Default)]
struct Totals {
    refused: u64,
    matched: u64,
    periods_dropping: u64,
    late: u64,
}

/// A random trace (REQ0s of several classes while a server has a free slot, FEEDBACK after
/// random delays, lost and duplicated FEEDBACK, heartbeats). After every frame both must send
/// the same bytes out of the same ports and keep the same slots; after every period the same
/// drop rates and estimates per class; at the end the same counters, per-class
/// admitted/refused counts and histograms.
fn trace(seed: u64, k: usize, n: u32, len: usize, t: &mut Totals) {
    let mut g = Gen(seed);
    let mut b = Both::with_sven(k, n, params(), 100_000);
    let mut queues: Vec<VecDeque<(SocketAddrV4, u16)>> = vec![VecDeque::new(); k];
    let mut served = vec![0u64; k];
    let router_req = SocketAddrV4::new(ROUTER_IP, REQ_PORT);
    let router_fb = SocketAddrV4::new(ROUTER_IP, FB_PORT);
    let mut rid = 0u16;
    let mut periods = 0;
    for step in 0..len {
        let (slots, _) = b.slots();
        let open = slots.iter().any(|&(o, bd)| o < bd);
        let busy: Vec<usize> = (0..k).filter(|&i| !queues[i].is_empty()).collect();
        let roll = g.below(100);
        let mut dup = None;
        let f = if roll < 50 && open {
            rid = rid.wrapping_add(1);
            let policy = [0u8, 0, 0, 1, 2, 3, 7][g.below(7)];
            let c = client_addr(g.below(64));
            frame(c, router_req, &req0(rid, policy), g.chance(20))
        } else if roll < 88 && !busy.is_empty() {
            let i = busy[g.below(busy.len())];
            let (c, r) = queues[i].pop_front().expect("busy");
            served[i] += 1;
            let f = frame(
                server_addr(i),
                router_fb,
                &feedback(c, r, Some((n, served[i]))),
                false,
            );
            if g.chance(5) {
                continue; // lost
            }
            if g.chance(5) {
                dup = Some(f.clone());
            }
            f
        } else if roll < 92 {
            let i = g.below(k);
            let hb = feedback(
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                0,
                Some((n, served[i])),
            );
            frame(server_addr(i), router_fb, &hb, false)
        } else {
            // A malformed REQ0 (short datagram) and a FEEDBACK naming nothing outstanding.
            if g.chance(50) {
                frame(client_addr(1), router_req, &req0(1, 0)[..6], false)
            } else {
                let i = g.below(k);
                frame(
                    server_addr(i),
                    router_fb,
                    &feedback(client_addr(63), 0xfff0, Some((n, served[i]))),
                    false,
                )
            }
        };
        for f in std::iter::once(f).chain(dup) {
            let before = b.sven.as_ref().map_or(0, |c| c.periods);
            let (r, p) = b.step(&f);
            assert_eq!(r, p, "seed {seed} step {step}: frame {f:02x?}");
            let (rs, ps) = b.slots();
            assert_eq!(rs, ps, "seed {seed} step {step}: slots");
            let ctl = b.sven.as_ref().expect("sven");
            if ctl.periods != before {
                periods += 1;
                let rsv = b.router.sven().expect("sven");
                assert_eq!(rsv.periods, ctl.periods, "periods");
                for c in 0..16u8 {
                    let (rc, pc) = (rsv.class(c), &ctl.classes[usize::from(c)]);
                    assert_eq!(
                        (rc.drop_rate.to_bits(), rc.estimate.map(f64::to_bits)),
                        (pc.drop_rate.to_bits(), pc.estimate.map(f64::to_bits)),
                        "seed {seed} step {step}: class {c} after period {}",
                        ctl.periods
                    );
                    if pc.drop_rate > 0.0 {
                        t.periods_dropping += 1;
                    }
                }
            }
            for (port, out) in &r {
                if *port == 0 {
                    continue; // a DROP to the client
                }
                let id = identity(out);
                queues[usize::from(*port) - 1]
                    .push_back((SocketAddrV4::new(Ipv4Addr::from(id.0), id.1), id.2));
            }
        }
    }
    assert!(periods > 0);
    let rs = b.router.stats();
    for (name, rust) in [
        ("rx", rs.rx),
        ("req0", rs.req0),
        ("feedback", rs.feedback),
        ("heartbeats", rs.heartbeats),
        ("forwarded", rs.forwarded),
        ("malformed", rs.malformed),
        ("not_req0", rs.not_req0),
        ("policy_fallback", rs.policy_fallback),
        ("refused_sven", rs.refused_sven),
        ("feedback_unmatched", rs.feedback_unmatched),
    ] {
        assert_eq!(rust, sven::stat(&b.sw, name), "seed {seed}: counter {name}");
    }
    assert_eq!(sven::stat(&b.sw, "ts_evicted"), 0, "no timestamp lost");
    let rsv = b.router.sven().expect("sven");
    for c in 0..16u8 {
        let rc = rsv.class(c);
        let (adm, refd, hist) = sven::class_counts(&b.sw, usize::from(c));
        assert_eq!(
            (rc.admitted, rc.dropped),
            (adm, refd),
            "seed {seed}: class {c}"
        );
        assert_eq!(
            &rc.histogram[..],
            &hist[..],
            "seed {seed}: class {c} histogram"
        );
        t.late += rc.histogram[16..].iter().sum::<u64>();
    }
    assert!(
        b.sw.rt.rng.injected_left().is_some_and(|l| l > 0),
        "draws left"
    );
    t.refused += rs.refused_sven;
    t.matched += sven::stat(&b.sw, "sven_matched");
}

#[test]
fn same_refusals_rates_and_histograms() {
    let mut t = Totals::default();
    for seed in 0..12 {
        trace(seed, 4, 2, 500, &mut t);
        trace(seed ^ 0x100, 6, 1, 400, &mut t);
    }
    // The traces exercised the loop: refusals, measurements on both sides of the SLO.
    eprintln!(
        "sven: {} refused, {} measured ({} late), {} class-periods dropping",
        t.refused, t.matched, t.late, t.periods_dropping
    );
    assert!(t.refused > 50, "refused {}", t.refused);
    assert!(t.matched > 1000 && t.late > 100, "{} {}", t.matched, t.late);
    assert!(t.periods_dropping > 50);
}

/// A class's rate in the switch with its own seeded randomness: 6000 REQ0s at fixed drop
/// rates (written as the control plane would), refused fractions within 5 standard
/// deviations of the rates; the no-drop class never refused.
#[test]
fn drop_rates_statistically() {
    let mut ctl = SvenControl::new(params());
    let rates = [(0usize, 0.3), (2, 0.1), (3, 0.6)];
    for &(c, p) in &rates {
        ctl.classes[c].drop_rate = p;
    }
    let cfg = jbsq::JbsqConfig {
        router: vec![
            SocketAddrV4::new(ROUTER_IP, REQ_PORT),
            SocketAddrV4::new(ROUTER_IP, FB_PORT),
        ],
        router_mac: ROUTER_MAC,
        servers: (0..4)
            .map(|i| jbsq::Server {
                addr: server_addr(i),
                mac: server_mac(i),
                egress_port: 1 + i as u16,
            })
            .collect(),
        n: 1024,
        recirc_port: RECIRC_PORT,
        routes: vec![],
        hosts: vec![],
    };
    // Seeded, not injected: the switch's own randomness.
    let mut sw = sven::switch(&cfg, &SvenControl::new(params()), 99).expect("sven.p4 loads");
    assert_eq!(sw.rt.rng.injected_left(), None);
    let writes: ControlFile = ctl.thresholds();
    writes.install(&mut sw).expect("rates");
    let per_class = 1500;
    let mut rid = 0u16;
    for class in [0u8, 1, 2, 3] {
        for i in 0..per_class {
            rid = rid.wrapping_add(1);
            let f = frame(
                client_addr(i % 64),
                SocketAddrV4::new(ROUTER_IP, REQ_PORT),
                &req0(rid, class),
                false,
            );
            let out = sw.run(0, &f, 0, 100_000).expect("runs");
            assert_eq!(out.len(), 1);
            // Free the slot again: the FEEDBACK of what was forwarded.
            if out[0].0 != 0 {
                let srv = usize::from(out[0].0) - 1;
                let fb = frame(
                    server_addr(srv),
                    SocketAddrV4::new(ROUTER_IP, FB_PORT),
                    &feedback(client_addr(i % 64), rid, None),
                    false,
                );
                assert!(sw.run(0, &fb, 0, 10).expect("runs").is_empty());
            }
        }
    }
    for c in 0..4usize {
        let (adm, refd, _) = sven::class_counts(&sw, c);
        assert_eq!(adm + refd, per_class as u64);
        let p = rates.iter().find(|r| r.0 == c).map_or(0.0, |r| r.1);
        let mean = p * per_class as f64;
        let sd = (per_class as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (refd as f64 - mean).abs() <= 5.0 * sd,
            "class {c}: {refd} refused of {per_class} at rate {p}"
        );
        if p == 0.0 {
            assert_eq!(refd, 0);
        }
    }
}
