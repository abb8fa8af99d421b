//! hover-agg: the HovercRaft++ aggregator (thesis 12.4, 12.6.4) as a ferrix guest, the
//! software version of the in-network one. The logic is `ferrix_raft::aggregator`
//! (a pure step type, also what `p4/` mirrors); this app moves its datagrams.
//!
//! - Members send it R2P2 RAFT_REQ/RAFT_REP datagrams on `raft-port` (default 9100): the
//!   leader's AGG_PROBE_REQ and AGG_AE_REQ, the followers' AE_REP.
//! - It relays each AGG_AE_REQ unchanged (the leader's sender id) to every other member in one
//!   multicast datagram to `group` (default 224.123.123.123, the group the replicas join for
//!   client requests), port `raft-port`, and multicasts AGG_COMMIT the same way; an
//!   AGG_PROBE_REP goes to its leader alone.
//! - A datagram that is not R2P2 RAFT_REQ/REP, names a non-member, or does not come from the
//!   address of the member it names is refused and counted (the aggregator never forges for a
//!   member, and no one can forge to it on a member's behalf).
//!
//! Arguments: `peers=IP,IP,...` (the replicas' `peers=`, by id: 3, 5, 7 or 9), `group=`,
//! `raft-port=`, `idle-exit-ms=N` (exit 0 after N ms without a member's message, once one
//! came). State is soft: a restarted aggregator starts empty and the leader's fallback and
//! probe bring it back (apps/hovercraft/README.md).
//!
//! Console: `hover-agg: N members ... ready`, and at exit `hover-agg: exit: term T leader L
//! commit C` and the counters.
#![no_std]
#![no_main]

extern crate alloc;

mod args;

use alloc::vec::Vec;
use core::net::SocketAddrV4;
use ferrix::println;
use ferrix_net::r2p2::header::{Header, MsgType, Policy};
use ferrix_raft::aggregator::{AGGREGATOR, AggOutputs, Aggregator, Dest};
use ferrix_raft::wire::{self, Sender};

/// What the glue counts (the aggregator's own counters are `Aggregator::stats`).
#[derive(Default)]
struct Counters {
    received: u64,
    refused: u64,
    sent: u64,
    multicast: u64,
    send_failed: u64,
}

fn main(core: usize) {
    if core != 0 {
        ferrix::idle();
    }
    let s = ferrix::or_exit("hover-agg", args::parse(ferrix::args()));
    let cfg = ferrix::or_exit("hover-agg", ferrix::net::config());
    if s.peers.contains(&cfg.ip) {
        println!(
            "hover-agg: {} is a member in peers=: the aggregator must have its own address",
            cfg.ip
        );
        ferrix::exit(1);
    }
    let bound = ferrix::net::bind_udp(s.raft_port);
    ferrix::or_exit("hover-agg: raft-port", bound);
    let nodes = s.peers.len() as u8; // checked: 3..=9
    let mut agg = Aggregator::new(nodes);
    let mut c = Counters::default();
    let mut queued: Vec<(SocketAddrV4, Vec<u8>)> = Vec::new();
    println!(
        "hover-agg: {nodes} members, relaying to {}:{} from {}:{}: ready",
        s.group, s.raft_port, cfg.ip, s.raft_port
    );
    let mut last_heard = 0u64;
    loop {
        let before = c.received;
        let polled = ferrix::net::poll(|d, buf| {
            if d.dst.port() != s.raft_port {
                return None;
            }
            c.received += 1;
            let dgram = buf.get(..d.len).unwrap_or_default();
            let body = match Header::parse(dgram) {
                Ok((h, body)) if matches!(h.msg_type, MsgType::RaftReq | MsgType::RaftRep) => body,
                _ => {
                    c.refused += 1;
                    return None;
                }
            };
            // Only a member's own address speaks for it; nothing speaks for the aggregator.
            let vouched = match wire::sender(body) {
                Some(Sender::Member(id) | Sender::LeaderViaAggregator(id)) => {
                    s.peers.get(usize::from(id)) == Some(d.src.ip())
                }
                Some(Sender::Aggregator) | None => false,
            };
            if !vouched {
                c.refused += 1;
                return None;
            }
            queue(&s, agg.receive(body), &mut queued);
            None
        });
        ferrix::or_exit("hover-agg", polled);
        for (dst, b) in queued.drain(..) {
            c.sent += 1;
            if dst.ip().is_multicast() {
                c.multicast += 1;
            }
            if ferrix::net::send_udp(s.raft_port, dst, &b).is_err() {
                c.send_failed += 1;
            }
        }
        let now = ferrix::time::now_ns();
        if c.received != before {
            last_heard = now;
        }
        if s.idle_exit_ns
            .is_some_and(|d| last_heard != 0 && now.saturating_sub(last_heard) > d)
        {
            println!(
                "hover-agg: exit: term {} leader {:?} commit {}",
                agg.term(),
                agg.leader(),
                agg.commit()
            );
            println!(
                "hover-agg: datagrams in {} refused {} out {} multicast {} send_failed {}",
                c.received, c.refused, c.sent, c.multicast, c.send_failed
            );
            println!("hover-agg: core {:?}", agg.stats());
            ferrix::exit(0);
        }
    }
}

/// Encodes what one step asks to send, one datagram per destination: a member's address, or
/// the group for several members.
fn queue(s: &args::Settings, out: AggOutputs, queued: &mut Vec<(SocketAddrV4, Vec<u8>)>) {
    for send in out.sends {
        let dst = match send.to {
            Dest::Node(i) => match s.peers.get(usize::from(i)) {
                Some(ip) => *ip,
                None => continue,
            },
            Dest::AllBut(_) | Dest::All => s.group,
        };
        let ty = if wire::r2p2_type(&send.msg) == wire::R2P2_RAFT_REQ {
            MsgType::RaftReq
        } else {
            MsgType::RaftRep
        };
        let mut b = Header::single(ty, Policy::FixedRoute, 0).encode().to_vec();
        debug_assert!(send.from == AGGREGATOR || usize::from(send.from) < s.peers.len());
        wire::encode(send.from, &send.msg, &mut b);
        queued.push((SocketAddrV4::new(dst, s.raft_port), b));
    }
}

ferrix::entry!(main);
