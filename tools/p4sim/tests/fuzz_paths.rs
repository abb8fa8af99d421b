//! The sven fuzz target's harness (`p4sim::fuzzing::SvenHarness`, the code of
//! tools/p4sim/fuzz/fuzz_targets/sven.rs) on 3000 bounded random inputs: sequences of
//! REQ0s of every class, FEEDBACK naming earlier REQ0s (or nothing), heartbeats, with
//! random byte flips and truncations, and random bytes. None may fault, and together they
//! must reach admission refusals, forwards, measurements and the pass limit's path.

mod common;

use common::*;
use p4sim::control::sven;
use p4sim::fuzzing::{SvenHarness, encode};
use std::net::{Ipv4Addr, SocketAddrV4};

/// One structured input of up to 16 frames.
fn input(g: &mut Gen, h: &SvenHarness) -> Vec<u8> {
    let req = h.jbsq.router[0];
    let fb = h.jbsq.router[1];
    let mut frames: Vec<(u8, Vec<u8>)> = vec![];
    let mut sent: Vec<(SocketAddrV4, u16)> = vec![];
    for _ in 0..1 + g.below(16) {
        let roll = g.below(100);
        let mut f = if roll < 45 {
            let c = client_addr(g.below(16));
            let rid = g.next() as u16;
            sent.push((c, rid));
            frame(c, req, &req0(rid, g.below(16) as u8), g.chance(30))
        } else if roll < 80 {
            let srv = h.jbsq.servers[g.below(h.jbsq.servers.len())].addr;
            let (c, rid) = if sent.is_empty() || g.chance(10) {
                (client_addr(g.below(16)), g.next() as u16)
            } else {
                sent[g.below(sent.len())]
            };
            let ext = g.chance(60).then(|| (g.below(4) as u32, g.below(8) as u64));
            frame(srv, fb, &feedback(c, rid, ext), false)
        } else if roll < 88 {
            let srv = h.jbsq.servers[g.below(h.jbsq.servers.len())].addr;
            let hb = feedback(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), 0, Some((2, 0)));
            frame(srv, fb, &hb, false)
        } else {
            (0..g.below(120)).map(|_| g.next() as u8).collect()
        };
        if g.chance(25) && !f.is_empty() {
            for _ in 0..1 + g.below(3) {
                let i = g.below(f.len());
                f[i] = g.next() as u8;
            }
        }
        if g.chance(10) {
            f.truncate(g.below(f.len() + 1));
        }
        frames.push((g.below(4) as u8, f));
    }
    encode(&frames)
}

#[test]
fn sven_fuzz_harness_on_bounded_random_inputs() {
    let h = SvenHarness::new().expect("sven.p4 loads");
    let mut g = Gen(0xf022);
    let names = ["refused_sven", "forwarded", "sven_matched", "malformed"];
    let mut totals = [0u64; 4];
    let mut pass_limited = 0;
    for n in 0..3000 {
        let data = input(&mut g, &h);
        let sw = h
            .run(&data)
            .unwrap_or_else(|e| panic!("input {n}: {e}\n{data:02x?}"));
        for (t, name) in totals.iter_mut().zip(names) {
            *t += sven::stat(&sw, name);
        }
        pass_limited += u64::from(sven::stat(&sw, "parked_sweeps") > 0);
    }
    eprintln!("{names:?} = {totals:?}, {pass_limited} inputs with parked REQ0s");
    assert!(totals.iter().all(|&t| t > 50), "{names:?} = {totals:?}");
    assert!(pass_limited > 0, "no input parked a REQ0");
    // Random bytes alone run too (mostly parser rejects).
    for _ in 0..500 {
        let data: Vec<u8> = (0..g.below(400)).map(|_| g.next() as u8).collect();
        assert!(h.run(&data).is_ok());
    }
}
