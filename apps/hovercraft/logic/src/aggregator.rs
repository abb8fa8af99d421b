//! The HovercRaft++ aggregator (thesis 12.4 and 12.6.4) as a pure step function, for a guest
//! app (and later a P4 program) to run: it takes the fan-out and fan-in of AppendEntries off
//! the leader.
//!
//! - AGG_AE_REQ from the leader: relayed unchanged to every other member (one multicast).
//!   A higher term flushes the state (the aggregator serves one leader per term); an older
//!   term, or the same term from another sender, is dropped.
//! - AE_REP (success) from a follower: its matched and applied indices are kept (the maximum:
//!   duplicates and reordered answers are harmless). When a majority (the leader counting with
//!   the last index it multicast) matched a higher index of the leader's term (at or after the
//!   `term_start` the leader announces: Raft's current-term rule), one AGG_COMMIT with every
//!   member's progress goes to every member. An AGG_AE_REQ that does not extend the log (a
//!   heartbeat, or a resend after a lost AGG_COMMIT) marks an AGG_COMMIT as owed: the next
//!   answer triggers one even if the commit index did not move (the thesis's
//!   check_log_idx / set_pending / check_pending stages).
//! - AGG_PROBE_REQ from a leader (the thesis's vote_request): adopt its term (flushing if
//!   higher) and answer AGG_PROBE_REP, so that it switches to the aggregator.
//!
//! All state is soft: a restarted aggregator starts empty and relearns from the next
//! answers. It never takes part in elections and never changes a member's term: members
//! ignore its messages unless their term equals its own. Safety does not rest on it: the
//! leader commits by its own count from the (capped) progress it believes, and a follower
//! commits at most what it verified itself, and only an entry of the current term (see
//! [`crate::node`], "HovercRaft++").

use alloc::vec;
use alloc::vec::Vec;

use crate::message::{Message, Progress};
use crate::types::{Index, NodeId, Term};
use crate::wire;

/// The aggregator's id on the wire (the reference's 0xFF, outside every cluster's `0..n`).
pub const AGGREGATOR: NodeId = 0xFF;

/// One input of [`Aggregator::step`].
#[derive(Clone, Debug)]
pub enum AggInput {
    /// A message from member `from` (checked: a non-member is counted and ignored).
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: Message,
    },
}

/// Where one output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// One member.
    Node(NodeId),
    /// Every member but this one (the leader): one multicast datagram in a guest.
    AllBut(NodeId),
    /// Every member: one multicast datagram.
    All,
}

/// One message to send, encoded with `from` as its sender id ([`wire::encode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggSend {
    /// Destination.
    pub to: Dest,
    /// The sender id to encode: the leader's for a relayed AGG_AE_REQ, [`AGGREGATOR`]
    /// otherwise.
    pub from: NodeId,
    /// The message.
    pub msg: Message,
}

/// What one step asks the caller to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggOutputs {
    /// The messages, in order.
    pub sends: Vec<AggSend>,
}

/// What the aggregator counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggStats {
    /// Bytes that were not a message (truncated, bad fields, unknown type or sender).
    pub malformed: u64,
    /// Messages it has no use for (a type it never takes, a failure answer).
    pub unexpected: u64,
    /// Messages of another term than its own, or from a member that is not its leader.
    pub stale: u64,
    /// Flushes on a higher term.
    pub flushes: u64,
    /// AppendEntries relayed.
    pub relayed: u64,
    /// AGG_COMMITs sent.
    pub commits: u64,
}

/// The aggregator of one cluster.
#[derive(Clone, Debug)]
pub struct Aggregator {
    nodes: u8,
    term: Term,
    leader: Option<NodeId>,
    term_start: Index,
    /// Per member, this term; the leader's slot is the last index it multicast.
    progress: Vec<Progress>,
    fresh: u16,
    commit: Index,
    owed: bool,
    stats: AggStats,
}

impl Aggregator {
    /// An empty aggregator for a cluster of `nodes` members (as a restart leaves it).
    pub fn new(nodes: u8) -> Aggregator {
        Aggregator {
            nodes,
            term: 0,
            leader: None,
            term_start: 0,
            progress: vec![Progress::default(); usize::from(nodes)],
            fresh: 0,
            commit: 0,
            owed: false,
            stats: AggStats::default(),
        }
    }

    /// The term it serves.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The leader of that term, once heard.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The highest commit index it announced in this term.
    pub fn commit(&self) -> Index {
        self.commit
    }
    /// Per-member progress in this term.
    pub fn progress(&self) -> &[Progress] {
        &self.progress
    }
    /// Counters.
    pub fn stats(&self) -> &AggStats {
        &self.stats
    }

    /// Decodes a datagram's payload ([`wire::decode`]) and steps it; malformed input is
    /// counted and changes nothing.
    pub fn receive(&mut self, bytes: &[u8]) -> AggOutputs {
        match wire::decode(bytes, self.nodes, AGGREGATOR) {
            Ok((from, msg)) => self.step(AggInput::Message { from, msg }),
            Err(_) => {
                self.stats.malformed += 1;
                AggOutputs::default()
            }
        }
    }

    /// Feeds one input; returns what to send.
    pub fn step(&mut self, input: AggInput) -> AggOutputs {
        let mut out = AggOutputs::default();
        let AggInput::Message { from, msg } = input;
        if from >= self.nodes {
            self.stats.malformed += 1;
            return out;
        }
        match msg {
            Message::AggProbeReq { term } => {
                if self.adopt(from, term) {
                    out.sends.push(AggSend {
                        to: Dest::Node(from),
                        from: AGGREGATOR,
                        msg: Message::AggProbeRep { term },
                    });
                }
            }
            Message::AggAppendReq {
                term,
                prev_index,
                term_start,
                ref entries,
                ..
            } => {
                if !self.adopt(from, term) {
                    return out;
                }
                let last = prev_index.saturating_add(entries.len() as Index);
                let me = &mut self.progress[usize::from(from)];
                if last > me.matched {
                    me.matched = last;
                } else {
                    // Nothing new: the leader waits for an AGG_COMMIT (a heartbeat, or one
                    // that was lost); the next answer brings one.
                    self.owed = true;
                }
                self.term_start = term_start;
                self.stats.relayed += 1;
                out.sends.push(AggSend {
                    to: Dest::AllBut(from),
                    from,
                    msg,
                });
            }
            Message::AppendRep {
                term,
                success,
                index,
                applied,
                ..
            } => {
                if !success {
                    // Failures go to the leader, never here.
                    self.stats.unexpected += 1;
                } else if term != self.term || Some(from) == self.leader || self.leader.is_none() {
                    self.stats.stale += 1;
                } else {
                    self.answer(from, index, applied, &mut out);
                }
            }
            _ => self.stats.unexpected += 1,
        }
        out
    }

    /// Takes `term` from `from`: a higher term flushes; false (dropped) for an older term or
    /// another sender in the same term.
    fn adopt(&mut self, from: NodeId, term: Term) -> bool {
        if term > self.term {
            let stats = core::mem::take(&mut self.stats);
            *self = Aggregator::new(self.nodes);
            self.stats = stats;
            self.stats.flushes += 1;
            self.term = term;
            self.leader = Some(from);
            return true;
        }
        if term < self.term || self.leader != Some(from) {
            self.stats.stale += 1;
            return false;
        }
        true
    }

    fn answer(&mut self, from: NodeId, index: Index, applied: Index, out: &mut AggOutputs) {
        let leader = self.leader.map_or(0, usize::from);
        let sent = self.progress[leader].matched;
        let p = &mut self.progress[usize::from(from)];
        // A follower answers a multicast AppendEntries: never beyond what was multicast.
        p.matched = p.matched.max(index.min(sent));
        p.applied = p.applied.max(applied);
        self.fresh |= 1 << from;
        let mut m: Vec<Index> = self.progress.iter().map(|p| p.matched).collect();
        m.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = usize::from(self.nodes) / 2 + 1;
        let majority = m[quorum - 1];
        let advanced = majority >= self.term_start && majority > self.commit;
        if advanced {
            self.commit = majority;
        }
        if advanced || self.owed {
            self.owed = false;
            self.stats.commits += 1;
            out.sends.push(AggSend {
                to: Dest::All,
                from: AGGREGATOR,
                msg: Message::AggCommit {
                    term: self.term,
                    commit: self.commit,
                    fresh: self.fresh,
                    progress: self.progress.clone(),
                },
            });
            self.fresh = 0;
        }
    }
}
