//! Wire encoding: every message round-trips; every prefix, every flipped byte and random
//! garbage decode to an error or a message, never a panic; non-members are refused.

use alloc::vec;
use alloc::vec::Vec;

use crate::config::{Config, Mode};
use crate::message::{Message, Meta, WireEntry};
use crate::node::Node;
use crate::rng::SplitMix;
use crate::storage::Durable;
use crate::types::{ClientId, Request, Snapshot};
use crate::wire::{DecodeError, ENTRY_HEADER, decode, encode};

fn id(rid: u16) -> ClientId {
    ClientId {
        ip: 0xc0a8_0102,
        port: 7000,
        rid,
    }
}

fn samples() -> Vec<Message> {
    let meta = Meta {
        id: id(9),
        read_only: true,
        replier: 2,
    };
    vec![
        Message::PreVoteReq {
            term: 7,
            last_index: 100,
            last_term: 6,
        },
        Message::PreVoteRep {
            term: 7,
            granted: true,
        },
        Message::VoteReq {
            term: u64::MAX,
            last_index: 0,
            last_term: 0,
        },
        Message::VoteRep {
            term: 3,
            granted: false,
        },
        Message::AppendReq {
            term: 5,
            prev_index: 10,
            prev_term: 4,
            commit: 9,
            entries: vec![
                WireEntry {
                    term: 5,
                    meta: None,
                    body: None,
                },
                WireEntry {
                    term: 5,
                    meta: Some(meta),
                    body: None,
                },
                WireEntry {
                    term: 5,
                    meta: Some(Meta {
                        read_only: false,
                        ..meta
                    }),
                    body: Some(b"SET k v".to_vec()),
                },
            ],
        },
        Message::AppendRep {
            term: 5,
            success: true,
            index: 13,
            hint_term: 0,
            applied: 12,
        },
        Message::SnapReq {
            term: 5,
            snapshot: Snapshot {
                index: 40,
                term: 4,
                data: vec![1, 2, 3, 4],
            },
        },
        Message::SnapRep { term: 5, index: 40 },
        Message::RecoveryReq {
            term: 5,
            missing: vec![(11, id(1)), (12, id(2))],
        },
        Message::RecoveryRep {
            term: 5,
            found: vec![Request {
                id: id(1),
                read_only: false,
                body: b"GET k".to_vec(),
            }],
        },
    ]
}

#[test]
fn every_message_round_trips() {
    for m in samples() {
        let mut b = Vec::new();
        encode(1, &m, &mut b);
        assert_eq!(decode(&b, 3, 0), Ok((1, m.clone())));
        // The prefix: type, from, u64 term.
        assert_eq!(b[1], 1);
        assert_eq!(u64::from_be_bytes(b[2..10].try_into().unwrap()), m.term());
    }
}

#[test]
fn metadata_entry_is_26_bytes() {
    let m = &samples()[4];
    let mut b = Vec::new();
    encode(1, m, &mut b);
    // prefix 10 + prev/prev_term/commit 24 + count 2 + three entries (26, 26, 26 + 4 + 7).
    assert_eq!(b.len(), 10 + 24 + 2 + 3 * ENTRY_HEADER + 4 + 7);
}

#[test]
fn truncated_trailing_and_foreign_are_refused() {
    for m in samples() {
        let mut b = Vec::new();
        encode(1, &m, &mut b);
        for cut in 0..b.len() {
            assert_eq!(
                decode(&b[..cut], 3, 0),
                Err(DecodeError::Truncated),
                "{m:?} {cut}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(decode(&long, 3, 0), Err(DecodeError::Trailing));
        // A sender outside the cluster (or the receiver itself) cannot bring a term in.
        assert_eq!(decode(&b, 3, 1), Err(DecodeError::UnknownSender(1)));
        let mut forged = b.clone();
        forged[1] = 0xff;
        assert_eq!(decode(&forged, 3, 0), Err(DecodeError::UnknownSender(0xff)));
        forged[0] = 0;
        assert_eq!(decode(&forged, 3, 0), Err(DecodeError::UnknownType(0)));
    }
}

#[test]
fn bad_fields_are_refused() {
    let mut b = Vec::new();
    encode(1, &samples()[4], &mut b);
    let first = 10 + 24 + 2;
    // Wrong index in the first entry.
    let mut x = b.clone();
    x[first + 15] ^= 1;
    assert_eq!(decode(&x, 3, 0), Err(DecodeError::BadField));
    // Unknown flag bit.
    let mut x = b.clone();
    x[first + 16] |= 0x80;
    assert_eq!(decode(&x, 3, 0), Err(DecodeError::BadField));
    // Replier not a member.
    let mut x = b.clone();
    x[first + ENTRY_HEADER + 17] = 3;
    assert_eq!(decode(&x, 3, 0), Err(DecodeError::BadField));
    // A count far beyond the bytes: refused before allocating.
    let mut x = b.clone();
    x[first - 2] = 0xff;
    assert_eq!(decode(&x, 3, 0), Err(DecodeError::Truncated));
    // A boolean that is neither 0 nor 1.
    let mut v = Vec::new();
    encode(1, &samples()[1], &mut v);
    v[10] = 2;
    assert_eq!(decode(&v, 3, 0), Err(DecodeError::BadField));
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut rng = SplitMix::new(3);
    let mut node = Node::new(Config::new(0, 5, Mode::Hover), Durable::default()).unwrap();
    let mut valid = Vec::new();
    for m in samples() {
        let mut b = Vec::new();
        encode(1, &m, &mut b);
        valid.push(b);
    }
    let mut refused = 0;
    for i in 0..20_000 {
        let mut b = valid[i % valid.len()].clone();
        // Flip a few bytes, or cut, or pure noise.
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
        if decode(&b, 5, 0).is_err() {
            refused += 1;
        }
        let _ = node.receive(&b);
    }
    let s = node.stats();
    assert_eq!(s.malformed + s.unknown_type + s.unknown_sender, refused);
    assert!(refused > 10_000);
}

#[test]
fn sender_names_who_must_vouch_for_a_message() {
    use crate::wire::{Sender, sender};
    let mut b = Vec::new();
    encode(
        crate::wire::AGGREGATOR,
        &Message::AggProbeRep { term: 3 },
        &mut b,
    );
    assert_eq!(sender(&b), Some(Sender::Aggregator));
    b.clear();
    encode(2, &Message::AggProbeReq { term: 3 }, &mut b);
    assert_eq!(sender(&b), Some(Sender::Member(2)));
    b.clear();
    let agg_ae = Message::AggAppendReq {
        term: 3,
        prev_index: 0,
        prev_term: 0,
        commit: 0,
        term_start: 1,
        entries: Vec::new(),
    };
    encode(1, &agg_ae, &mut b);
    assert_eq!(sender(&b), Some(Sender::LeaderViaAggregator(1)));
    assert_eq!(sender(&b[..1]), None);
    assert_eq!(sender(&[]), None);
}
