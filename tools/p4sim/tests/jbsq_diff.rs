//! Differential tests: p4/jbsq.p4 in p4sim against ferrix-router's JBSQ(n), packet by
//! packet, on the same full frames. What is compared, and where the two may differ, is in
//! p4/README.md ("Differential tests").

mod common;

use common::*;
use ferrix_router::RouterStats;
use p4sim::control::jbsq;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The generator's view of one server: requests in service order, served count, bound.
#[derive(Clone, Default)]
struct Srv {
    queue: VecDeque<(SocketAddrV4, u16)>,
    served: u64,
    n: u32,
}

fn router_req() -> SocketAddrV4 {
    SocketAddrV4::new(ROUTER_IP, REQ_PORT)
}
fn router_fb() -> SocketAddrV4 {
    SocketAddrV4::new(ROUTER_IP, FB_PORT)
}

/// Frames the router must ignore or count as malformed (and the switch must drop).
fn junk(g: &mut Gen, client: SocketAddrV4, rid: u16) -> Vec<u8> {
    let good = req0(rid, 0);
    match g.below(11) {
        0 => {
            let mut d = good;
            d[0] = 0xcd; // bad magic
            frame(client, router_req(), &d, false)
        }
        1 => frame(client, router_req(), &good[..5], false), // short datagram
        2 => {
            let mut d = good;
            d[1] = 7; // header_size < 8
            frame(client, router_req(), &d, false)
        }
        3 => {
            let mut d = good;
            d[1] = 200; // header_size beyond the datagram
            frame(client, router_req(), &d, false)
        }
        4 => {
            let mut d = good;
            d[3] = 0x40; // REQn (no F flag)
            frame(client, router_req(), &d, false)
        }
        5 => {
            let mut d = good;
            d[2] = 0x11; // RESPONSE
            frame(client, router_req(), &d, false)
        }
        6 => {
            // FEEDBACK with a 5-byte body.
            let mut d = feedback(client, rid, None);
            d.truncate(13);
            frame(server_addr(0), router_fb(), &d, false)
        }
        7 => {
            let mut f = frame(client, router_req(), &good, false);
            f[20] = 0x20; // MF: a fragment
            f
        }
        8 => {
            let mut f = frame(client, router_req(), &good, false);
            f.truncate(f.len() - 3); // UDP length beyond the frame
            f
        }
        9 => frame(
            client,
            SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), REQ_PORT),
            &good,
            false,
        ),
        _ => {
            let mut f = frame(client, router_req(), &good, false);
            f[12] = 0x86; // not IPv4
            f[13] = 0xdd;
            f
        }
    }
}

/// A random trace that never fills every server (so the Rust router never queues): both
/// must send the same bytes out of the same ports after every frame, and keep the same
/// per-server counts and bounds.
///
/// `ext`: servers send the served-count extension (bounds change, FEEDBACK is lost and
/// duplicated); else they send reference FEEDBACK only, none lost or duplicated (README:
/// a duplicated reference FEEDBACK frees a slot in the switch, not in ferrix-router).
fn strict_trace(seed: u64, k: usize, n: u32, len: usize, ext: bool) -> Result<(), TestCaseError> {
    let mut g = Gen(seed);
    let mut b = Both::with_feedback(k, n, ext);
    let mut srv = vec![
        Srv {
            n,
            ..Srv::default()
        };
        k
    ];
    let mut rid = 0u16;
    for step in 0..len {
        let (slots, _) = b.slots();
        let open = slots.iter().any(|&(o, bd)| o < bd);
        let master = slots.iter().any(|&(_, bd)| bd > 0);
        let busy: Vec<usize> = (0..k).filter(|&i| !srv[i].queue.is_empty()).collect();
        let client = client_addr(g.below(64));
        let roll = g.below(100);
        let mut dup = None;
        let f = if roll < 45 && open {
            rid = rid.wrapping_add(1);
            let policy = match g.below(10) {
                0 => 2 + g.below(14) as u8,
                _ => 0,
            };
            frame(client, router_req(), &req0(rid, policy), g.chance(20))
        } else if roll < 50 && master {
            rid = rid.wrapping_add(1);
            frame(client, router_req(), &req0(rid, 1), false)
        } else if roll < 85 && !busy.is_empty() {
            let i = busy[g.below(busy.len())];
            let s = &mut srv[i];
            let (c, r) = s.queue.pop_front().expect("busy");
            s.served += 1;
            if ext && g.chance(10) {
                s.n = g.below(4) as u32;
            }
            let body = feedback(c, r, ext.then_some((s.n, s.served)));
            let f = frame(server_addr(i), router_fb(), &body, false);
            if ext && g.chance(10) {
                continue; // lost: the next count reveals it
            }
            if ext && g.chance(5) {
                dup = Some(f.clone());
            }
            f
        } else if roll < 90 {
            let i = g.below(k);
            if ext && g.chance(30) {
                srv[i].n = g.below(4) as u32;
            }
            let hb = feedback(
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                0,
                ext.then_some((srv[i].n, srv[i].served)),
            );
            frame(server_addr(i), router_fb(), &hb, false)
        } else {
            junk(&mut g, client, rid)
        };
        for f in std::iter::once(f).chain(dup) {
            let (r, p) = b.step(&f);
            prop_assert_eq!(&r, &p, "step {}: frame {:02x?}", step, f);
            prop_assert!(
                b.parked.is_empty(),
                "step {}: the switch parked a REQ0",
                step
            );
            let (rs, ps) = b.slots();
            prop_assert_eq!(rs, ps, "step {}: slots", step);
            for (port, out) in &r {
                let i = usize::from(*port) - 1;
                srv[i].queue.push_back((
                    SocketAddrV4::new(Ipv4Addr::from(identity(out).0), identity(out).1),
                    identity(out).2,
                ));
            }
        }
    }
    compare_stats(b.router.stats(), &b.sw)
}

/// The counters both keep with the same meaning.
fn compare_stats(r: &RouterStats, sw: &p4sim::Switch) -> Result<(), TestCaseError> {
    for (name, rust) in [
        ("rx", r.rx),
        ("req0", r.req0),
        ("feedback", r.feedback),
        ("heartbeats", r.heartbeats),
        ("forwarded", r.forwarded),
        ("malformed", r.malformed),
        ("malformed_feedback", r.malformed_feedback),
        ("not_req0", r.not_req0),
        ("unexpected_type", r.unexpected_type),
        ("policy_fallback", r.policy_fallback),
    ] {
        prop_assert_eq!(rust, jbsq::stat(sw, name), "counter {}", name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// 6 servers (two windows of 4), JBSQ(2).
    #[test]
    fn same_decisions_six_servers(seed in any::<u64>()) {
        strict_trace(seed, 6, 2, 300, true)?;
    }

    /// Reference FEEDBACK (no served count), 5 servers, JBSQ(2).
    #[test]
    fn same_decisions_reference_feedback(seed in any::<u64>()) {
        strict_trace(seed, 5, 2, 300, false)?;
    }

    /// 9 servers (three windows, the last of one), JBSQ(1); 1 server; 4 servers JBSQ(3).
    #[test]
    fn same_decisions_other_shapes(seed in any::<u64>()) {
        strict_trace(seed, 9, 1, 200, true)?;
        strict_trace(seed ^ 1, 1, 2, 100, true)?;
        strict_trace(seed ^ 2, 4, 3, 200, true)?;
    }
}

/// Fills every server, then queues: the Rust router holds REQ0s in its FIFO, the switch
/// keeps them recirculating. Per FEEDBACK both release one REQ0 to the same server (the
/// only one with a free slot) and keep the same counts; which held REQ0 goes may differ
/// (Rust: the oldest; the switch: the first to pass over the free server). At the end both
/// forwarded the same multiset of requests.
#[test]
fn queueing_same_servers_and_multiset() {
    let (k, n) = (6, 2);
    let mut b = Both::new(k, n);
    let mut g = Gen(7);
    let mut srv = vec![
        Srv {
            n,
            ..Srv::default()
        };
        k
    ];
    let (mut rust_fwd, mut p4_fwd) = (vec![], vec![]);
    let mut reordered = 0;
    let total = 2 * k * n as usize + 9;
    for rid in 0..total as u16 {
        let c = client_addr(rid as usize);
        let (r, p) = b.step(&frame(c, router_req(), &req0(rid, 0), false));
        assert_eq!(r.len(), p.len(), "REQ0 {rid}");
        if (rid as usize) < k * n as usize {
            assert_eq!(r, p, "REQ0 {rid} before the servers fill");
        }
        for (port, f) in &r {
            let id = identity(f);
            srv[usize::from(*port) - 1]
                .queue
                .push_back((SocketAddrV4::new(Ipv4Addr::from(id.0), id.1), id.2));
        }
        rust_fwd.extend(r.iter().map(|(_, f)| identity(f)));
        p4_fwd.extend(p.iter().map(|(_, f)| identity(f)));
    }
    assert_eq!(b.router.held(), total - k * n as usize);
    assert_eq!(b.parked.len(), b.router.held());
    // Complete requests at random servers until everything is served.
    while srv.iter().any(|s| !s.queue.is_empty()) {
        let busy: Vec<usize> = (0..k).filter(|&i| !srv[i].queue.is_empty()).collect();
        let i = busy[g.below(busy.len())];
        let (c, r) = srv[i].queue.pop_front().expect("busy");
        srv[i].served += 1;
        let f = frame(
            server_addr(i),
            router_fb(),
            &feedback(c, r, Some((n, srv[i].served))),
            false,
        );
        let (ro, po) = b.step(&f);
        assert_eq!(ro.len(), po.len(), "forwards per FEEDBACK");
        assert_eq!(
            ro.iter().map(|x| x.0).collect::<Vec<_>>(),
            po.iter().map(|x| x.0).collect::<Vec<_>>(),
            "released to the same server"
        );
        if ro
            .iter()
            .map(|(_, f)| identity(f))
            .ne(po.iter().map(|(_, f)| identity(f)))
        {
            reordered += 1;
        }
        let (rs, ps) = b.slots();
        assert_eq!(rs, ps, "slots");
        for (port, f) in &ro {
            let id = identity(f);
            srv[usize::from(*port) - 1]
                .queue
                .push_back((SocketAddrV4::new(Ipv4Addr::from(id.0), id.1), id.2));
        }
        rust_fwd.extend(ro.iter().map(|(_, f)| identity(f)));
        p4_fwd.extend(po.iter().map(|(_, f)| identity(f)));
    }
    assert_eq!(b.router.held(), 0);
    assert!(b.parked.is_empty());
    assert_eq!(rust_fwd.len(), total);
    rust_fwd.sort_unstable();
    p4_fwd.sort_unstable();
    assert_eq!(rust_fwd, p4_fwd, "the same requests were forwarded");
    eprintln!(
        "queueing: {reordered} of {} releases took a different held REQ0",
        total - k * n as usize
    );
    assert!(jbsq::stat(&b.sw, "parked_sweeps") > 0);
}
