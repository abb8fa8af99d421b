//! The aggregator's differential harness: one trace of full Ethernet/IPv4/UDP/R2P2 frames fed
//! to `ferrix_raft::Aggregator` (with the transport a guest would put around it) and to
//! p4/aggregator.p4 in p4sim, and a generator of cluster traffic.
//!
//! The Rust transport: an IPv4/UDP datagram inside the frame, to the aggregator's address
//! (else `not_agg`); an R2P2 RAFT_REQ/RAFT_REP with an 8-byte header (else `not_raft`); a
//! complete prefix naming a member must come from that member's address (else `spoofed`);
//! then `Aggregator::receive` on the payload. A relayed AGG_AE_REQ is the received datagram,
//! unchanged; other messages get `Header::single(RAFT_REP, FIXED_ROUTE, 0)` and
//! `wire::encode`. Every message leaves in a frame of `write_udp_frame` from the
//! aggregator's address to the member's, in member order (a relay of a datagram that came
//! without a UDP checksum keeps none).

#![allow(dead_code)]

use ferrix_net::MacAddr;
use ferrix_net::r2p2::{Header, MsgType, Policy};
use ferrix_net::stack::{UDP_PAYLOAD_OFFSET, write_udp_frame};
use ferrix_raft::{
    AGGREGATOR, Aggregator, ClientId, Dest, Message, Meta, Snapshot, WireEntry, wire,
};
use p4sim::Switch;
use p4sim::control::aggregator::{self, AggConfig, Member};
use std::net::{Ipv4Addr, SocketAddrV4};

pub const AGG_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 254);
pub const RAFT_PORT: u16 = 7000;
pub const AGG_MAC: [u8; 6] = [2, 0, 0, 0, 2, 0xfe];
pub const SWITCH_MAC: [u8; 6] = [2, 0, 0, 0, 2, 0xee];
pub const GROUP: u16 = 1;

pub fn agg_addr() -> SocketAddrV4 {
    SocketAddrV4::new(AGG_IP, RAFT_PORT)
}

pub fn member_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 2, 1 + i as u8),
        RAFT_PORT + (i % 2) as u16,
    )
}

pub fn member_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 3, i as u8]
}

/// A frame from `src` to `dst` carrying `payload`; `zero_csum` sends UDP checksum 0.
pub fn frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8], zero_csum: bool) -> Vec<u8> {
    let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + payload.len()];
    assert!(write_udp_frame(
        &mut f,
        MacAddr(SWITCH_MAC),
        MacAddr([2, 0, 0, 0, 4, 4]),
        *src.ip(),
        *dst.ip(),
        0x1234,
        src.port(),
        dst.port(),
        payload,
    ));
    if zero_csum {
        f[40] = 0;
        f[41] = 0;
    }
    f
}

/// The R2P2 datagram of `m` from `from`, in the R2P2 type its kind rides in.
pub fn datagram(from: u8, m: &Message) -> Vec<u8> {
    let ty = if wire::r2p2_type(m) == wire::R2P2_RAFT_REQ {
        MsgType::RaftReq
    } else {
        MsgType::RaftRep
    };
    let mut d = Header::single(ty, Policy::FixedRoute, 0).encode().to_vec();
    wire::encode(from, m, &mut d);
    d
}

/// What left for one frame: (egress port, frame bytes).
pub type Sent = Vec<(u16, Vec<u8>)>;

/// Counters of the Rust transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    pub not_agg: u64,
    pub not_raft: u64,
    pub spoofed: u64,
}

#[derive(Clone)]
pub struct Both {
    pub n: usize,
    pub agg: Aggregator,
    pub tr: Transport,
    pub sw: Switch,
    pub now: u64,
}

impl Both {
    pub fn new(n: usize) -> Both {
        let cfg = AggConfig {
            addr: agg_addr(),
            mac: AGG_MAC,
            members: (0..n)
                .map(|i| Member {
                    addr: member_addr(i),
                    mac: member_mac(i),
                    egress_port: 1 + i as u16,
                })
                .collect(),
            group: GROUP,
        };
        Both {
            n,
            agg: Aggregator::new(n as u8),
            tr: Transport::default(),
            sw: aggregator::switch(&cfg, 1).expect("aggregator.p4 loads"),
            now: 0,
        }
    }

    /// The Rust side.
    pub fn rust(&mut self, f: &[u8]) -> Sent {
        let mut sent = vec![];
        let Some(h) = f.first_chunk::<UDP_PAYLOAD_OFFSET>() else {
            self.tr.not_agg += 1;
            return sent;
        };
        let udp_len = usize::from(u16::from_be_bytes([h[38], h[39]]));
        let dst = SocketAddrV4::new(
            Ipv4Addr::new(h[30], h[31], h[32], h[33]),
            u16::from_be_bytes([h[36], h[37]]),
        );
        if h[12..14] != [8, 0]
            || h[14] != 0x45
            || h[23] != 17
            || h[20] & 0x3f != 0
            || h[21] != 0
            || udp_len < 8
            || 34 + udp_len > f.len()
            || dst != agg_addr()
        {
            self.tr.not_agg += 1;
            return sent;
        }
        let src = SocketAddrV4::new(
            Ipv4Addr::new(h[26], h[27], h[28], h[29]),
            u16::from_be_bytes([h[34], h[35]]),
        );
        let dgram = &f[42..34 + udp_len];
        if dgram.len() < 8 || dgram[0] != 0xcc || dgram[1] != 8 || !matches!(dgram[2] >> 4, 5 | 6) {
            self.tr.not_raft += 1;
            return sent;
        }
        let body = &dgram[8..];
        if body.len() >= 10 && usize::from(body[1]) < self.n && src != member_addr(body[1].into()) {
            self.tr.spoofed += 1;
            return sent;
        }
        let out = self.agg.receive(body);
        for s in out.sends {
            let to: Vec<usize> = match s.to {
                Dest::Node(i) => vec![usize::from(i)],
                Dest::AllBut(l) => (0..self.n).filter(|&i| i != usize::from(l)).collect(),
                Dest::All => (0..self.n).collect(),
            };
            let relay = matches!(s.msg, Message::AggAppendReq { .. });
            let payload = if relay {
                dgram.to_vec()
            } else {
                assert_eq!(s.from, AGGREGATOR);
                datagram(s.from, &s.msg)
            };
            for i in to {
                let mut out = vec![0u8; UDP_PAYLOAD_OFFSET + payload.len()];
                assert!(write_udp_frame(
                    &mut out,
                    MacAddr(member_mac(i)),
                    MacAddr(AGG_MAC),
                    AGG_IP,
                    *member_addr(i).ip(),
                    0,
                    RAFT_PORT,
                    member_addr(i).port(),
                    &payload,
                ));
                if relay && f[40..42] == [0, 0] {
                    out[40] = 0;
                    out[41] = 0;
                }
                sent.push((1 + i as u16, out));
            }
        }
        sent
    }

    /// The switch side.
    pub fn p4(&mut self, f: &[u8]) -> Sent {
        let mut out = vec![];
        self.sw
            .inject(0, f, self.now, &mut out)
            .expect("no runtime error");
        out.into_iter()
            .map(|o| match o {
                p4sim::Output::Tx { port, bytes } => (port, bytes),
                p4sim::Output::Recirculate(_) => panic!("aggregator.p4 never recirculates"),
            })
            .collect()
    }

    pub fn step(&mut self, f: &[u8]) -> (Sent, Sent) {
        let r = self.rust(f);
        let p = self.p4(f);
        self.now += 1000;
        (r, p)
    }

    /// The Rust aggregator's state in the switch's terms.
    pub fn rust_state(&self) -> aggregator::AggState {
        aggregator::AggState {
            term: self.agg.term(),
            leader: self.agg.leader(),
            commit: self.agg.commit(),
            progress: self
                .agg
                .progress()
                .iter()
                .map(|p| (p.matched, p.applied))
                .collect(),
        }
    }

    pub fn p4_state(&self) -> aggregator::AggState {
        aggregator::state(&self.sw, self.n)
    }

    /// (name, Rust, switch) for every counter both keep.
    pub fn counters(&self) -> Vec<(&'static str, u64, u64)> {
        let s: &ferrix_raft::aggregator::AggStats = self.agg.stats();
        [
            ("malformed", s.malformed),
            ("unexpected", s.unexpected),
            ("stale", s.stale),
            ("flushes", s.flushes),
            ("relayed", s.relayed),
            ("commits", s.commits),
            ("not_agg", self.tr.not_agg),
            ("not_raft", self.tr.not_raft),
            ("spoofed", self.tr.spoofed),
        ]
        .into_iter()
        .map(|(n, r)| (n, r, aggregator::stat(&self.sw, n)))
        .collect()
    }
}

/// splitmix64 for trace generation.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}

/// A cluster's view for generating plausible traffic: the term, its leader, the leader's
/// last index and where its term started, what each member acknowledged.
pub struct Cluster {
    pub n: usize,
    pub term: u64,
    pub leader: usize,
    pub last: u64,
    pub term_start: u64,
    pub acked: Vec<u64>,
    pub applied: Vec<u64>,
    /// The previous frame (for duplicates).
    pub prev: Option<Vec<u8>>,
    /// `body`: AppendEntries may carry entries with bodies (the switch checks up to the
    /// first; README).
    pub bodies: bool,
}

/// An entry of term `t`: a no-op, a request, a read-only request; with a body when `body`.
pub fn entry(g: &mut Gen, t: u64, n: usize, body: bool) -> WireEntry {
    let id = ClientId {
        ip: 0x0a00_0100 | g.below(256) as u32,
        port: 20_000 + g.below(100) as u16,
        rid: g.below(65_536) as u16,
    };
    match g.below(5) {
        0 => WireEntry {
            term: t,
            meta: None,
            body: None,
        },
        k => WireEntry {
            term: t,
            meta: Some(Meta {
                id,
                read_only: k == 2,
                replier: g.below(n) as u8,
            }),
            body: body.then(|| vec![0x5a; g.below(40)]),
        },
    }
}

impl Cluster {
    pub fn new(n: usize, bodies: bool) -> Cluster {
        Cluster {
            n,
            term: 0,
            leader: 0,
            last: 0,
            term_start: 0,
            acked: vec![0; n],
            applied: vec![0; n],
            prev: None,
            bodies,
        }
    }

    pub fn follower(&self, g: &mut Gen) -> usize {
        if self.n == 1 {
            return 0;
        }
        let k = g.below(self.n - 1);
        if k >= self.leader { k + 1 } else { k }
    }

    /// A new term with a new leader; sometimes the leader probes first.
    pub fn elect(&mut self, g: &mut Gen) -> Vec<u8> {
        self.term += 1 + g.below(2) as u64;
        self.leader = g.below(self.n);
        self.term_start = self.last + 1;
        if g.chance(50) {
            let m = Message::AggProbeReq { term: self.term };
            frame(
                member_addr(self.leader),
                agg_addr(),
                &datagram(self.leader as u8, &m),
                false,
            )
        } else {
            self.append(g)
        }
    }

    /// The leader's AGG_AE_REQ: new entries after its last index, or a resend / heartbeat.
    pub fn append(&mut self, g: &mut Gen) -> Vec<u8> {
        let prev = if g.chance(75) {
            self.last
        } else {
            self.last.saturating_sub(g.below(4) as u64)
        };
        let count = match g.below(20) {
            0 => 31 + g.below(5),
            1..=5 => 0,
            _ => 1 + g.below(4),
        };
        let body = self.bodies && g.chance(20);
        let entries: Vec<WireEntry> = (0..count)
            .map(|_| entry(g, self.term, self.n, body))
            .collect();
        self.last = self.last.max(prev + count as u64);
        let m = Message::AggAppendReq {
            term: self.term,
            prev_index: prev,
            prev_term: self.term.saturating_sub(1),
            commit: self.acked.iter().copied().min().unwrap_or(0),
            term_start: self.term_start,
            entries,
        };
        frame(
            member_addr(self.leader),
            agg_addr(),
            &datagram(self.leader as u8, &m),
            g.chance(10),
        )
    }

    /// A follower's answer: mostly success of the current term, up to (and sometimes past)
    /// the leader's last index.
    pub fn reply(&mut self, g: &mut Gen) -> Vec<u8> {
        let f = self.follower(g);
        let index = if g.chance(10) {
            self.last + 1 + g.below(3) as u64
        } else {
            let lo = self.acked[f].min(self.last);
            lo + g.below((self.last - lo) as usize + 1) as u64
        };
        self.acked[f] = self.acked[f].max(index.min(self.last));
        self.applied[f] = self.applied[f].max(index.saturating_sub(g.below(3) as u64));
        let term = match g.below(20) {
            0 => self.term.saturating_sub(1),
            1 => self.term + 1,
            _ => self.term,
        };
        let m = Message::AppendRep {
            term,
            success: !g.chance(5),
            index,
            hint_term: term,
            applied: self.applied[f],
        };
        let from = if g.chance(3) { self.leader } else { f };
        frame(
            member_addr(from),
            agg_addr(),
            &datagram(from as u8, &m),
            false,
        )
    }

    /// A message from the wrong sender or term.
    pub fn stale(&mut self, g: &mut Gen) -> Vec<u8> {
        let (from, term) = match g.below(3) {
            0 => (self.follower(g), self.term),
            _ => (g.below(self.n), self.term.saturating_sub(1)),
        };
        let m = if g.chance(50) {
            Message::AggProbeReq { term }
        } else {
            Message::AggAppendReq {
                term,
                prev_index: self.last,
                prev_term: term,
                commit: 0,
                term_start: self.term_start,
                entries: vec![entry(g, term, self.n, false)],
            }
        };
        frame(
            member_addr(from),
            agg_addr(),
            &datagram(from as u8, &m),
            false,
        )
    }

    /// Well-formed messages the aggregator has no use for.
    pub fn other(&mut self, g: &mut Gen) -> Vec<u8> {
        let t = self.term;
        let id = ClientId {
            ip: g.next() as u32,
            port: g.next() as u16,
            rid: g.next() as u16,
        };
        let m = match g.below(9) {
            0 => Message::PreVoteReq {
                term: t,
                last_index: g.next(),
                last_term: t,
            },
            1 => Message::VoteRep {
                term: t,
                granted: g.chance(50),
            },
            2 => Message::AppendReq {
                term: t,
                prev_index: self.last,
                prev_term: t,
                commit: 0,
                entries: (0..g.below(4))
                    .map(|_| entry(g, t, self.n, false))
                    .collect(),
            },
            3 => Message::SnapReq {
                term: t,
                snapshot: Snapshot {
                    index: g.next(),
                    term: t,
                    data: vec![1; g.below(30)],
                },
            },
            4 => Message::SnapRep {
                term: t,
                index: g.next(),
            },
            5 => Message::RecoveryReq {
                term: t,
                missing: (0..g.below(3)).map(|i| (i as u64, id)).collect(),
            },
            6 => Message::RecoveryRep {
                term: t,
                found: vec![],
            },
            7 => Message::VoteReq {
                term: t,
                last_index: 3,
                last_term: 1,
            },
            _ => Message::PreVoteRep {
                term: t,
                granted: true,
            },
        };
        let from = g.below(self.n);
        frame(
            member_addr(from),
            agg_addr(),
            &datagram(from as u8, &m),
            false,
        )
    }

    /// Bytes that are not a message, or not for the aggregator.
    pub fn junk(&mut self, g: &mut Gen) -> Vec<u8> {
        let from = g.below(self.n);
        let src = member_addr(from);
        let good = {
            let m = Message::AppendRep {
                term: self.term,
                success: true,
                index: self.last,
                hint_term: 0,
                applied: 0,
            };
            datagram(from as u8, &m)
        };
        let ae = {
            let m = Message::AggAppendReq {
                term: self.term,
                prev_index: self.last,
                prev_term: 0,
                commit: 0,
                term_start: self.term_start,
                entries: (0..1 + g.below(3))
                    .map(|_| entry(g, self.term, self.n, false))
                    .collect(),
            };
            datagram(self.leader as u8, &m)
        };
        let leader = member_addr(self.leader);
        match g.below(22) {
            0 => frame(src, agg_addr(), &good[..8 + g.below(10)], false), // short prefix
            1 => frame(src, agg_addr(), &good[..good.len() - 1], false),  // truncated
            2 => {
                let mut d = good;
                d.push(0); // trailing
                frame(src, agg_addr(), &d, false)
            }
            3 => {
                let mut d = good;
                d[18] = 2; // success not a bool
                frame(src, agg_addr(), &d, false)
            }
            4 => {
                let mut d = good;
                d[8] = [0, 15, 12, 14][g.below(4)]; // unknown type, or the aggregator's own
                frame(src, agg_addr(), &d, false)
            }
            5 => {
                let mut d = good;
                d[9] = [self.n as u8, 0xff, 200][g.below(3)]; // not a member
                frame(src, agg_addr(), &d, false)
            }
            6 => {
                let mut d = good;
                d[0] = 0xcd; // bad magic
                frame(src, agg_addr(), &d, false)
            }
            7 => {
                let mut d = good;
                d[1] = 12; // longer R2P2 header
                frame(src, agg_addr(), &d, false)
            }
            8 => {
                let mut d = good;
                d[2] = 0x01; // an R2P2 REQUEST
                frame(src, agg_addr(), &d, false)
            }
            9 => frame(member_addr((from + 1) % self.n), agg_addr(), &good, false), // spoofed
            10 => frame(src, member_addr(0), &good, false),                         // not to it
            11 => {
                let mut f = frame(src, agg_addr(), &good, false);
                f.truncate(f.len() - 2); // UDP length beyond the frame
                f
            }
            12 => {
                let mut f = frame(src, agg_addr(), &good, false);
                f[12] = 0x86; // not IPv4
                f
            }
            13 => {
                let mut f = frame(src, agg_addr(), &good, false);
                f.extend_from_slice(&[0xee; 7]); // Ethernet trailer after the datagram
                f
            }
            14 => {
                let mut d = ae;
                d[67] = d[67].wrapping_add(1); // first entry's index wrong
                frame(leader, agg_addr(), &d, false)
            }
            15 => {
                let mut d = ae;
                d[68] = 0x08; // unknown flag
                frame(leader, agg_addr(), &d, false)
            }
            16 => {
                let mut d = ae;
                d[68] = 0x01; // a request whose replier is not a member
                d[69] = self.n as u8;
                frame(leader, agg_addr(), &d, false)
            }
            17 => {
                let mut d = ae;
                d[68] = 0x02; // READ_ONLY without REQUEST
                frame(leader, agg_addr(), &d, false)
            }
            18 => {
                let mut d = ae;
                d.truncate(d.len() - 1 - g.below(20)); // entries truncated
                frame(leader, agg_addr(), &d, false)
            }
            19 => {
                let mut d = ae;
                d.push(7); // trailing after the entries
                frame(leader, agg_addr(), &d, false)
            }
            20 => {
                // An index beyond u64.
                let m = Message::AggAppendReq {
                    term: self.term,
                    prev_index: u64::MAX,
                    prev_term: 0,
                    commit: 0,
                    term_start: 0,
                    entries: vec![],
                };
                let mut d = datagram(self.leader as u8, &m);
                let c = d.len() - 2;
                d[c + 1] = 1;
                d.extend_from_slice(&[0; 26]);
                frame(leader, agg_addr(), &d, false)
            }
            _ => {
                let m = Message::RecoveryReq {
                    term: self.term,
                    missing: vec![(
                        1,
                        ClientId {
                            ip: 1,
                            port: 2,
                            rid: 3,
                        },
                    )],
                };
                let mut d = datagram(from as u8, &m);
                d.truncate(d.len() - 3);
                frame(src, agg_addr(), &d, false)
            }
        }
    }

    /// One step of traffic.
    pub fn next_frame(&mut self, g: &mut Gen) -> Vec<u8> {
        if let Some(p) = self.prev.take()
            && g.chance(8)
        {
            return p; // a duplicate
        }
        let f = if self.term == 0 {
            self.elect(g)
        } else {
            match g.below(100) {
                0..=3 => self.elect(g),
                4..=27 => self.append(g),
                28..=74 => self.reply(g),
                75..=82 => self.stale(g),
                83..=88 => self.other(g),
                _ => self.junk(g),
            }
        };
        self.prev = Some(f.clone());
        f
    }
}
