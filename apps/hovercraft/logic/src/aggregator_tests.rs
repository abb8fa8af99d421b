//! Unit tests of the HovercRaft++ aggregator ([`crate::aggregator`]) and of the wire form of
//! its messages (types 11-14).

use alloc::vec;
use alloc::vec::Vec;

use crate::aggregator::{AGGREGATOR, AggInput, AggOutputs, AggSend, Aggregator, Dest};
use crate::message::{Message, Progress, WireEntry};
use crate::rng::SplitMix;
use crate::wire::{DecodeError, decode, encode};

fn noops(term: u64, n: usize) -> Vec<WireEntry> {
    vec![
        WireEntry {
            term,
            meta: None,
            body: None,
        };
        n
    ]
}

fn ae(term: u64, prev: u64, n: usize, term_start: u64) -> Message {
    Message::AggAppendReq {
        term,
        prev_index: prev,
        prev_term: if prev == 0 { 0 } else { term },
        commit: 0,
        term_start,
        entries: noops(term, n),
    }
}

fn ok(term: u64, index: u64, applied: u64) -> Message {
    Message::AppendRep {
        term,
        success: true,
        index,
        hint_term: 0,
        applied,
    }
}

fn step(a: &mut Aggregator, from: u8, msg: Message) -> AggOutputs {
    a.step(AggInput::Message { from, msg })
}

/// The single AGG_COMMIT of an output: (commit, fresh, matched per node).
fn commit_of(out: &AggOutputs) -> Option<(u64, u16, Vec<u64>)> {
    assert!(out.sends.len() <= 1, "{out:?}");
    out.sends.first().map(|s| {
        assert_eq!((s.to, s.from), (Dest::All, AGGREGATOR));
        match &s.msg {
            Message::AggCommit {
                commit,
                fresh,
                progress,
                ..
            } => (
                *commit,
                *fresh,
                progress.iter().map(|p| p.matched).collect(),
            ),
            m => panic!("not an AGG_COMMIT: {m:?}"),
        }
    })
}

#[test]
fn relays_append_entries_unchanged_to_all_but_the_leader() {
    let mut a = Aggregator::new(5);
    let m = ae(3, 0, 2, 1);
    let out = step(&mut a, 2, m.clone());
    assert_eq!(
        out.sends,
        vec![AggSend {
            to: Dest::AllBut(2),
            from: 2,
            msg: m,
        }]
    );
    assert_eq!((a.term(), a.leader()), (3, Some(2)));
    assert_eq!(a.progress()[2].matched, 2);
}

#[test]
fn commits_once_a_majority_matched_and_again_on_progress() {
    let mut a = Aggregator::new(5);
    step(&mut a, 0, ae(1, 0, 3, 1));
    // Leader + one follower: 2 of 5, no majority.
    assert_eq!(commit_of(&step(&mut a, 1, ok(1, 3, 0))), None);
    // A duplicate changes nothing.
    assert_eq!(commit_of(&step(&mut a, 1, ok(1, 3, 0))), None);
    let (c, fresh, m) = commit_of(&step(&mut a, 2, ok(1, 3, 1))).expect("majority");
    assert_eq!((c, fresh, m), (3, 0b110, vec![3, 3, 3, 0, 0]));
    assert_eq!(a.progress()[2].applied, 1);
    // The rest answer: no new commit, nothing sent; duplicates neither.
    assert_eq!(commit_of(&step(&mut a, 3, ok(1, 3, 0))), None);
    assert_eq!(commit_of(&step(&mut a, 2, ok(1, 3, 1))), None);
    // More entries: the next majority sends again, with the bits of all who answered since
    // the previous AGG_COMMIT (3 and 2 above included).
    step(&mut a, 0, ae(1, 3, 2, 1));
    assert_eq!(commit_of(&step(&mut a, 4, ok(1, 5, 0))), None);
    let (c, fresh, _) = commit_of(&step(&mut a, 1, ok(1, 5, 3))).expect("progress");
    assert_eq!((c, fresh), (5, 0b11110));
}

#[test]
fn only_entries_of_the_leaders_term_are_counted() {
    // The leader of term 4 starts its term at index 3 (its no-op); 1 and 2 are older.
    let mut a = Aggregator::new(3);
    step(&mut a, 0, ae(4, 0, 3, 3));
    assert_eq!(commit_of(&step(&mut a, 1, ok(4, 2, 0))), None);
    let (c, _, _) = commit_of(&step(&mut a, 1, ok(4, 3, 0))).expect("current term");
    assert_eq!(c, 3);
}

#[test]
fn a_heartbeat_owes_an_agg_commit_at_the_next_answer() {
    let mut a = Aggregator::new(3);
    step(&mut a, 0, ae(1, 0, 1, 1));
    assert!(commit_of(&step(&mut a, 1, ok(1, 1, 0))).is_some());
    assert_eq!(commit_of(&step(&mut a, 2, ok(1, 1, 1))), None);
    // Nothing new: relayed, and the next answer brings the (unchanged) commit and applied.
    let out = step(&mut a, 0, ae(1, 1, 0, 1));
    assert_eq!(out.sends[0].to, Dest::AllBut(0));
    let (c, fresh, _) = commit_of(&step(&mut a, 2, ok(1, 1, 1))).expect("owed");
    assert_eq!((c, fresh), (1, 0b100));
    assert_eq!(commit_of(&step(&mut a, 1, ok(1, 1, 1))), None);
}

#[test]
fn a_higher_term_flushes_and_older_terms_are_dropped() {
    let mut a = Aggregator::new(3);
    step(&mut a, 0, ae(1, 0, 2, 1));
    assert!(commit_of(&step(&mut a, 1, ok(1, 2, 2))).is_some());
    // A new leader in term 2: the state of term 1 is gone.
    let out = step(&mut a, 2, Message::AggProbeReq { term: 2 });
    assert_eq!(
        out.sends,
        vec![AggSend {
            to: Dest::Node(2),
            from: AGGREGATOR,
            msg: Message::AggProbeRep { term: 2 },
        }]
    );
    assert_eq!((a.term(), a.leader(), a.commit()), (2, Some(2), 0));
    assert!(a.progress().iter().all(|p| *p == Progress::default()));
    assert_eq!(a.stats().flushes, 2);
    // The old leader, its followers' answers, a probe of term 1, another sender in term 2.
    assert!(step(&mut a, 0, ae(1, 2, 1, 1)).sends.is_empty());
    assert!(step(&mut a, 1, ok(1, 2, 2)).sends.is_empty());
    assert!(
        step(&mut a, 0, Message::AggProbeReq { term: 1 })
            .sends
            .is_empty()
    );
    assert!(step(&mut a, 1, ae(2, 0, 1, 1)).sends.is_empty());
    // The leader's own id answering, a failure, a type it never takes: ignored.
    step(&mut a, 2, ae(2, 0, 1, 1));
    assert!(step(&mut a, 2, ok(2, 1, 0)).sends.is_empty());
    let fail = Message::AppendRep {
        term: 2,
        success: false,
        index: 1,
        hint_term: 0,
        applied: 0,
    };
    assert!(step(&mut a, 1, fail).sends.is_empty());
    let vote = Message::VoteRep {
        term: 2,
        granted: true,
    };
    assert!(step(&mut a, 1, vote).sends.is_empty());
    assert_eq!(a.stats().stale, 5);
    assert_eq!(a.stats().unexpected, 2);
    assert_eq!(a.commit(), 0);
}

#[test]
fn answers_beyond_what_was_multicast_are_capped() {
    let mut a = Aggregator::new(3);
    step(&mut a, 0, ae(1, 0, 2, 1));
    let (c, _, m) = commit_of(&step(&mut a, 1, ok(1, 1_000, 0))).expect("commit");
    assert_eq!((c, m[1]), (2, 2));
}

fn agg_samples() -> Vec<(u8, Message)> {
    vec![
        (1, ae(5, 10, 2, 8)),
        (
            AGGREGATOR,
            Message::AggCommit {
                term: 5,
                commit: 12,
                fresh: 0b101,
                progress: vec![
                    Progress {
                        matched: 12,
                        applied: 11,
                    },
                    Progress {
                        matched: 12,
                        applied: 12,
                    },
                    Progress::default(),
                ],
            },
        ),
        (1, Message::AggProbeReq { term: 5 }),
        (AGGREGATOR, Message::AggProbeRep { term: 5 }),
    ]
}

#[test]
fn aggregator_messages_round_trip_and_refuse_bad_bytes() {
    for (from, m) in agg_samples() {
        let mut b = Vec::new();
        encode(from, &m, &mut b);
        // A member receives everything; the aggregator only what members send it.
        assert_eq!(decode(&b, 3, 0), Ok((from, m.clone())));
        let at_agg = decode(&b, 3, AGGREGATOR);
        if m.from_aggregator() {
            assert_eq!(at_agg, Err(DecodeError::UnknownSender(AGGREGATOR)));
        } else {
            assert_eq!(at_agg, Ok((from, m.clone())));
        }
        for cut in 0..b.len() {
            assert_eq!(decode(&b[..cut], 3, 0), Err(DecodeError::Truncated));
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(decode(&long, 3, 0), Err(DecodeError::Trailing));
        // The aggregator's types from a member, and a member's from the aggregator id.
        let mut forged = b.clone();
        forged[1] = if m.from_aggregator() { 1 } else { AGGREGATOR };
        assert_eq!(
            decode(&forged, 3, 0),
            Err(DecodeError::UnknownSender(forged[1]))
        );
    }
    let mut b = Vec::new();
    encode(AGGREGATOR, &agg_samples()[1].1, &mut b);
    // Progress for 3 members is not a 5-member cluster's.
    assert_eq!(decode(&b, 5, 0), Err(DecodeError::BadField));
    // A fresh bit past the members.
    let mut x = b.clone();
    x[10 + 8] = 0x01;
    assert_eq!(decode(&x, 3, 0), Err(DecodeError::BadField));
    // Type 15 stays reserved.
    let mut x = b.clone();
    x[0] = 15;
    assert_eq!(decode(&x, 3, 0), Err(DecodeError::UnknownType(15)));
}

#[test]
fn garbage_at_the_aggregator_never_panics_and_is_counted() {
    let mut rng = SplitMix::new(11);
    let mut valid = Vec::new();
    for (from, m) in agg_samples() {
        let mut b = Vec::new();
        encode(from, &m, &mut b);
        valid.push(b);
    }
    let mut a = Aggregator::new(3);
    let mut refused = 0;
    for i in 0..20_000 {
        let mut b = valid[i % valid.len()].clone();
        match rng.range(0, 3) {
            0 => {
                for _ in 0..rng.range(1, 4) {
                    let at = rng.range(0, b.len() as u32) as usize;
                    b[at] = rng.next_u64() as u8;
                }
            }
            1 => b.truncate(rng.range(0, b.len() as u32) as usize),
            _ => {
                b = (0..rng.range(0, 64))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
            }
        }
        if decode(&b, 3, AGGREGATOR).is_err() {
            refused += 1;
        }
        let _ = a.receive(&b);
    }
    assert_eq!(a.stats().malformed, refused);
    assert!(refused > 10_000);
}
