//! Differential tests: p4/aggregator.p4 in p4sim against ferrix_raft's `Aggregator`, packet
//! by packet, on the same full frames (harness in `agg_common`). What is compared, and where
//! the two differ, is in p4/README.md ("aggregator.p4").

mod agg_common;

use agg_common::*;
use ferrix_raft::{ClientId, Message, Meta, WireEntry};
use proptest::prelude::*;

/// A random trace of cluster traffic: after every frame the bytes sent and their ports must
/// be identical, and so must the aggregator's term, leader, commit and per-member progress;
/// at the end every counter.
fn trace(seed: u64, n: usize, len: usize, bodies: bool) -> Result<(), TestCaseError> {
    let mut g = Gen(seed);
    let mut b = Both::new(n);
    let mut c = Cluster::new(n, bodies);
    let mut sent = 0;
    for step in 0..len {
        let f = c.next_frame(&mut g);
        let (r, p) = b.step(&f);
        prop_assert_eq!(&r, &p, "step {}: n {} frame {:02x?}", step, n, f);
        prop_assert_eq!(b.rust_state(), b.p4_state(), "step {}: state", step);
        sent += r.len();
    }
    for (name, r, p) in b.counters() {
        prop_assert_eq!(r, p, "counter {}", name);
    }
    // The trace exercised the interesting paths.
    let s = b.agg.stats();
    prop_assert!(s.relayed > 0 && s.commits > 0 && s.stale > 0 && s.malformed > 0);
    prop_assert!(sent > 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// 3 and 5 members.
    #[test]
    fn same_decisions_three_and_five(seed in any::<u64>()) {
        trace(seed, 3, 300, false)?;
        trace(seed ^ 1, 5, 300, false)?;
    }

    /// 9 members (every register and replica), 7, 2 (a majority of 2), 1 (no followers).
    #[test]
    fn same_decisions_other_sizes(seed in any::<u64>()) {
        trace(seed, 9, 300, false)?;
        trace(seed ^ 1, 7, 200, false)?;
        trace(seed ^ 2, 2, 200, false)?;
    }

    /// AppendEntries with bodies (vanilla Raft's): the switch checks entries up to the first
    /// body, these are all well-formed.
    #[test]
    fn same_decisions_with_bodies(seed in any::<u64>()) {
        trace(seed, 5, 300, true)?;
    }
}

/// One member: every AGG_AE_REQ is its own majority; the relay goes nowhere.
#[test]
fn single_member() {
    let mut g = Gen(3);
    let mut b = Both::new(1);
    let mut c = Cluster::new(1, false);
    for step in 0..200 {
        let f = c.next_frame(&mut g);
        let (r, p) = b.step(&f);
        assert_eq!(r, p, "step {step}");
        assert_eq!(b.rust_state(), b.p4_state(), "step {step}");
    }
    for (name, r, p) in b.counters() {
        assert_eq!(r, p, "counter {name}");
    }
}

fn leader_ae(term: u64, prev: u64, count: usize, body_at: Option<usize>) -> Vec<u8> {
    let entries = (0..count)
        .map(|i| WireEntry {
            term,
            meta: Some(Meta {
                id: ClientId {
                    ip: 1,
                    port: 2,
                    rid: i as u16,
                },
                read_only: false,
                replier: 0,
            }),
            body: (Some(i) == body_at).then(|| vec![9; 5]),
        })
        .collect();
    let m = Message::AggAppendReq {
        term,
        prev_index: prev,
        prev_term: 0,
        commit: 0,
        term_start: 1,
        entries,
    };
    frame(member_addr(0), agg_addr(), &datagram(0, &m), false)
}

/// The documented difference: after an entry with a body the switch checks no further
/// entry, so a malformed tail is relayed by the switch and dropped as malformed by the Rust
/// aggregator; so is a malformed 31st entry. Everything up to there is checked.
#[test]
fn unchecked_tail_after_a_body_or_beyond_max_entries() {
    // Entry 1 has a body; corrupt entry 2's flags (it starts after entry 1's body).
    let mut f = leader_ae(1, 0, 3, Some(1));
    let e2 = 42 + 8 + 44 + 26 + (26 + 4 + 5);
    f[e2 + 16] = 0x80;
    let mut b = Both::new(3);
    let (r, p) = b.step(&f);
    assert!(r.is_empty(), "the Rust aggregator refuses it");
    assert_eq!(b.agg.stats().malformed, 1);
    assert_eq!(p.len(), 2, "the switch relays it to both followers");
    // The same corruption in entry 0 (checked by both).
    let mut f = leader_ae(2, 0, 3, Some(1));
    f[42 + 8 + 44 + 16] = 0x80;
    let (r, p) = b.step(&f);
    assert!(r.is_empty() && p.is_empty());
    // 31 entries, the last with a bad index: checked by Rust only.
    let mut f = leader_ae(3, 0, 31, None);
    let e30 = 42 + 8 + 44 + 30 * 26;
    f[e30 + 15] ^= 1;
    let (r, p) = b.step(&f);
    assert!(r.is_empty());
    assert_eq!(p.len(), 2);
    // And the 30th (index 29): checked by both.
    let mut f = leader_ae(4, 0, 30, None);
    let e29 = 42 + 8 + 44 + 29 * 26;
    f[e29 + 15] ^= 1;
    let (r, p) = b.step(&f);
    assert!(r.is_empty() && p.is_empty());
}

/// Breaking the majority rule in the program makes the differential check fail: a mutant
/// that commits at the leader's own index (quorum 1) is caught.
#[test]
fn a_mutant_majority_is_caught() {
    let src = p4sim::control::aggregator::SOURCE
        .replace("meta.quorum = (meta.nodes >> 1) + 1;", "meta.quorum = 1;");
    assert_ne!(src, p4sim::control::aggregator::SOURCE);
    let mut caught = false;
    for seed in 0..20 {
        let mut b = Both::new(5);
        let mut sw = p4sim::Switch::load(&src, 1).expect("mutant loads");
        let cf = p4sim::control::aggregator::AggConfig {
            addr: agg_addr(),
            mac: AGG_MAC,
            members: (0..5)
                .map(|i| p4sim::control::aggregator::Member {
                    addr: member_addr(i),
                    mac: member_mac(i),
                    egress_port: 1 + i as u16,
                })
                .collect(),
            group: GROUP,
        }
        .control_file()
        .expect("config");
        cf.install(&mut sw).expect("install");
        b.sw = sw;
        let mut g = Gen(seed);
        let mut c = Cluster::new(5, false);
        for _ in 0..200 {
            let f = c.next_frame(&mut g);
            let (r, p) = b.step(&f);
            if r != p {
                caught = true;
                break;
            }
        }
        if caught {
            break;
        }
    }
    assert!(
        caught,
        "the mutant decided as the Rust aggregator on every trace"
    );
}
