//! HovercRaft++ on the members' side (thesis 12.4, 12.5 "In-network Aggregation"): how the
//! leader uses the aggregator ([`crate::aggregator`]) and falls back without it, and how a
//! follower takes the commit index it announces. On with [`crate::Config::aggregator`].
//!
//! - **Switching on.** A new leader replicates directly (as HovercRaft) and sends
//!   AGG_PROBE_REQ; on AGG_PROBE_REP of its term it switches to the aggregator. From then on
//!   every new entry goes out once, in an AGG_AE_REQ to the aggregator (which relays it to
//!   every follower), and a heartbeat is an empty AGG_AE_REQ. Peers still behind at the
//!   switch stay *direct* (point-to-point AppendEntries, one outstanding, as before) until
//!   their matched index reaches the last multicast index.
//! - **Direct peers.** A follower that fails a multicast AppendEntries (a lost one, a log
//!   conflict) answers the leader itself; the leader replicates to it directly until it caught
//!   up. So does one that asks RECOVERY_REQ, and one the leader did not hear from (directly
//!   or in an AGG_COMMIT's `fresh` bits) during a check-quorum period.
//! - **Fallback rule.** When an AGG_AE_REQ (entries or a heartbeat, each owes an AGG_COMMIT)
//!   stays unanswered by any AGG_COMMIT for half an election timeout (at least a heartbeat
//!   period more), or a check-quorum period ends with no majority heard, the leader stops using
//!   the aggregator: every peer gets direct AppendEntries at once (early enough that the
//!   followers' election timers, at least one election timeout, do not fire). After an
//!   election timeout of back-off it probes again at each heartbeat and switches back on the
//!   first AGG_PROBE_REP. A failed check-quorum while the aggregator is in use falls back
//!   instead of stepping down; the next period, direct, decides.
//! - **What the leader verifies.** An AGG_COMMIT counts only if its term is the leader's
//!   (the aggregator's state from another term, however stale, is ignored; within a term every
//!   reported index is a fact about the leader's own log, so old or duplicated ones are merged
//!   with a maximum and change nothing), it comes from the aggregator id with one progress
//!   slot per member (the codec), and each follower's matched index is capped by the highest
//!   index the leader multicast in this term and by its log. The leader ignores the
//!   aggregator's commit field and decides itself, by Raft's rule (an entry of its own term,
//!   held by a majority of its own per-peer matched view, itself included). What it cannot
//!   check is that a follower really answered: like a forged AE_REP from a member, a
//!   Byzantine aggregator is outside Raft's crash-fault model. Crash, restart (empty state),
//!   loss, duplication, delay and partition of the aggregator are tolerated (tests/sim.rs).
//! - **Followers** take an AGG_COMMIT only in their own term, while following a known leader,
//!   and commit `min(commit, verified)` only if that entry has the current term: `verified`
//!   is the prefix they checked against this leader's AppendEntries in this term. So even a
//!   wrong commit index cannot make a follower apply an entry its leader does not have, or one
//!   of an earlier term (Raft figure 8). The leader's own commit index still reaches them in
//!   every AppendEntries.

use alloc::vec::Vec;

use crate::aggregator::AGGREGATOR;
use crate::message::{Message, Progress, WireEntry};
use crate::node::{Node, Role};
use crate::types::{Index, NodeId, Term};
use crate::wire;

/// The leader's use of the aggregator in its term.
#[derive(Clone, Copy, Debug, Default, Hash)]
pub(crate) struct AggState {
    /// Replicating through the aggregator (it answered a probe; no fallback since).
    pub active: bool,
    /// The highest index multicast in this term.
    pub sent: Index,
    /// Since when (tick) an AGG_AE_REQ waits for an AGG_COMMIT.
    pub waiting: Option<u64>,
    /// Probe the aggregator again from this tick on.
    pub retry_at: u64,
}

impl Node {
    /// The leader sends AppendEntries to `p` itself (always, without an aggregator in use).
    pub(crate) fn is_direct(&self, p: NodeId) -> bool {
        !(self.cfg.aggregator && self.agg.active) || self.peers[usize::from(p)].direct
    }

    /// A new leader: direct replication, and a probe of the aggregator.
    pub(crate) fn agg_start(&mut self) {
        self.agg = AggState {
            retry_at: self.now,
            ..AggState::default()
        };
        if self.cfg.aggregator {
            let term = self.term;
            self.send(AGGREGATOR, Message::AggProbeReq { term });
        }
    }

    /// Every entry not yet multicast goes to the aggregator (or, `heartbeat`, an empty
    /// AGG_AE_REQ); while not using it, a probe at each heartbeat after the back-off.
    pub(crate) fn agg_broadcast(&mut self, heartbeat: bool) {
        if !self.agg.active {
            if heartbeat && self.now >= self.agg.retry_at {
                let term = self.term;
                self.send(AGGREGATOR, Message::AggProbeReq { term });
            }
            return;
        }
        let last = self.log.last_index();
        let mut any = false;
        while self.agg.sent < last {
            let prev = self.agg.sent;
            if prev < self.log.snapshot().index {
                // Never expected (the leader compacts only committed entries, all multicast).
                self.agg_fallback();
                return;
            }
            let upto = last.min(prev + self.cfg.max_entries as Index);
            let entries = self.wire_entries(prev + 1, upto, wire::AGG_APPEND_HEADER);
            self.agg.sent = prev + entries.len() as Index;
            self.send_agg_append(prev, entries);
            any = true;
        }
        if heartbeat && !any {
            self.send_agg_append(self.agg.sent, Vec::new());
        }
    }

    fn send_agg_append(&mut self, prev: Index, entries: Vec<WireEntry>) {
        let msg = Message::AggAppendReq {
            term: self.term,
            prev_index: prev,
            prev_term: self.log.term_at(prev).unwrap_or(0),
            commit: self.commit,
            term_start: self.term_start,
            entries,
        };
        self.send(AGGREGATOR, msg);
        if self.agg.waiting.is_none() {
            self.agg.waiting = Some(self.now);
        }
    }

    pub(crate) fn on_agg_probe_rep(&mut self, term: Term) {
        if self.role != Role::Leader || !self.cfg.aggregator || term != self.term {
            return;
        }
        if self.agg.active {
            return;
        }
        let last = self.log.last_index();
        self.stats.agg_switches += 1;
        self.agg.active = true;
        self.agg.sent = last;
        self.agg.waiting = None;
        for p in self.others() {
            let peer = &mut self.peers[usize::from(p)];
            peer.direct = peer.matched < last;
        }
        // Tells the aggregator where the log ends.
        self.agg_broadcast(true);
    }

    /// Back to direct replication for every peer (see the module doc for when).
    pub(crate) fn agg_fallback(&mut self) {
        self.stats.agg_fallbacks += 1;
        self.agg.active = false;
        self.agg.waiting = None;
        self.agg.retry_at = self.now + u64::from(self.cfg.election_ticks);
        for p in self.others() {
            let peer = &mut self.peers[usize::from(p)];
            peer.inflight = false;
            peer.direct = false;
            self.send_append(p, false);
        }
    }

    /// The fallback timer (once a tick, leader).
    pub(crate) fn agg_tick(&mut self) {
        let wait = u64::from((self.cfg.election_ticks / 2).max(self.cfg.heartbeat_ticks + 1));
        if self.cfg.aggregator
            && self.agg.active
            && self.agg.waiting.is_some_and(|t| self.now - t >= wait)
        {
            self.agg_fallback();
        }
    }

    /// At the end of a check-quorum period with the aggregator in use: the peers not heard
    /// go direct; without a majority heard, fall back instead of stepping down (returns true,
    /// the period is over).
    pub(crate) fn agg_check_quorum(&mut self, heard: usize) -> bool {
        if !(self.cfg.aggregator && self.agg.active) {
            return false;
        }
        for p in self.others() {
            let peer = &mut self.peers[usize::from(p)];
            if !peer.heard {
                peer.direct = true;
            }
        }
        if heard >= self.cfg.quorum() {
            return false;
        }
        for p in &mut self.peers {
            p.heard = false;
        }
        self.agg_fallback();
        true
    }

    /// A direct peer whose matched index reached the multicast stream leaves it to the
    /// aggregator.
    pub(crate) fn agg_caught_up(&mut self, p: NodeId) {
        if self.cfg.aggregator && self.agg.active {
            let peer = &mut self.peers[usize::from(p)];
            if peer.direct && peer.matched >= self.agg.sent {
                peer.direct = false;
            }
        }
    }

    pub(crate) fn on_agg_commit(
        &mut self,
        term: Term,
        commit: Index,
        fresh: u16,
        progress: &[Progress],
    ) {
        if term != self.term {
            return;
        }
        match self.role {
            Role::Leader if self.cfg.aggregator => {
                let me = usize::from(self.cfg.id);
                let cap = self.agg.sent.min(self.log.last_index());
                let n = usize::from(self.cfg.nodes);
                for (j, p) in progress.iter().enumerate().take(n) {
                    if j == me {
                        continue;
                    }
                    let claimed = p.matched.min(cap);
                    let peer = &mut self.peers[j];
                    if claimed > peer.matched {
                        peer.matched = claimed;
                        peer.next = peer.next.max(claimed + 1);
                    }
                    if fresh & (1 << j) != 0 {
                        peer.heard = true;
                    }
                    self.note_applied(j as NodeId, p.applied);
                    self.agg_caught_up(j as NodeId);
                }
                self.agg.waiting = None;
                self.maybe_commit();
                self.announce();
            }
            Role::Follower if self.leader.is_some() => {
                let c = commit.min(self.verified);
                if c > self.commit && self.log.term_at(c) == Some(term) {
                    self.stats.agg_commits += 1;
                    self.commit = c;
                    self.apply_committed();
                }
            }
            _ => {}
        }
    }
}
