//! Log replication: the leader's AppendEntries and InstallSnapshot, the follower's
//! consistency check with the conflict hint, and the commit rule.
//!
//! Each follower has at most one AppendEntries (or snapshot) outstanding: the next goes when
//! the answer comes, or at the next heartbeat if it is lost. A heartbeat goes even while one
//! is outstanding; then only the answer that reaches the heartbeat's last index ends it, so
//! that the two answers do not start two streams (each heartbeat under load would add one). A rejection carries a hint (the
//! first index of the conflicting term, or the follower's last index + 1 when its log is too
//! short), so the leader skips a whole term per round trip. A follower whose next entry was
//! compacted away gets the snapshot instead.

use alloc::vec::Vec;

use crate::aggregator::AGGREGATOR;
use crate::config::Mode;
use crate::message::{Message, WireEntry};
use crate::node::{Node, Role};
use crate::storage::Write;
use crate::types::{Index, NodeId, Snapshot, Term};
use crate::wire;

impl Node {
    /// AppendEntries to every follower (`heartbeat`: even those with one outstanding).
    /// (HovercRaft++: one AGG_AE_REQ to the aggregator, and direct ones only to the peers
    /// that need them; [`crate::plus`].)
    pub(crate) fn broadcast_append(&mut self, heartbeat: bool) {
        if self.cfg.aggregator {
            self.agg_broadcast(heartbeat);
        }
        for p in self.others() {
            if self.is_direct(p) {
                self.send_append(p, heartbeat);
            }
        }
    }

    /// The wire entries `next..=upto`, within `max_message_bytes` after `header` bytes (one
    /// entry always goes).
    pub(crate) fn wire_entries(&self, next: Index, upto: Index, header: usize) -> Vec<WireEntry> {
        let with_body = self.cfg.mode == Mode::Vanilla;
        let mut room = self.cfg.max_message_bytes.saturating_sub(header);
        let mut entries: Vec<WireEntry> = Vec::new();
        for e in self.log.range(next, upto) {
            let w = WireEntry::of(e, with_body);
            let len = wire::entry_len(&w);
            if len > room && !entries.is_empty() {
                break;
            }
            room = room.saturating_sub(len);
            entries.push(w);
        }
        entries
    }

    pub(crate) fn send_append(&mut self, to: NodeId, heartbeat: bool) {
        let last = self.log.last_index();
        let peer = &mut self.peers[usize::from(to)];
        if peer.inflight && !heartbeat {
            return;
        }
        peer.inflight = true;
        let next = peer.next.clamp(1, last + 1);
        let prev = next - 1;
        let term = self.term;
        if prev < self.log.snapshot().index {
            self.stats.snapshots_sent += 1;
            let snapshot = self.log.snapshot().clone();
            self.send(to, Message::SnapReq { term, snapshot });
            return;
        }
        let prev_term = self.log.term_at(prev).unwrap_or(0);
        let upto = last.min(prev + self.cfg.max_entries as Index);
        let entries = self.wire_entries(next, upto, wire::APPEND_HEADER);
        self.peers[usize::from(to)].sent = prev + entries.len() as Index;
        let commit = self.commit;
        self.send(
            to,
            Message::AppendReq {
                term,
                prev_index: prev,
                prev_term,
                commit,
                entries,
            },
        );
    }

    pub(crate) fn reply_append(
        &mut self,
        to: NodeId,
        success: bool,
        index: Index,
        hint_term: Term,
    ) {
        let (term, applied) = (self.term, self.done());
        self.send(
            to,
            Message::AppendRep {
                term,
                success,
                index,
                hint_term,
                applied,
            },
        );
    }

    /// A message from the leader of `term` (not older than ours): follow it, unless this
    /// replica leads the same term (two leaders in a term: never expected, counted).
    fn follow(&mut self, from: NodeId, term: Term) -> bool {
        if self.role == Role::Leader {
            self.stats.split_brain += 1;
            return false;
        }
        self.become_follower(term, Some(from));
        self.heard_from_leader();
        true
    }

    /// `via_agg`: relayed by the HovercRaft++ aggregator, so a success answer goes to it (a
    /// failure still goes to the leader, which then replicates to this replica directly).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append_req(
        &mut self,
        from: NodeId,
        term: Term,
        prev: Index,
        prev_term: Term,
        leader_commit: Index,
        mut entries: Vec<WireEntry>,
        via_agg: bool,
    ) {
        let ack_to = if via_agg { AGGREGATOR } else { from };
        if term < self.term {
            self.reply_append(from, false, 0, 0);
            return;
        }
        if !self.follow(from, term) {
            return;
        }
        let (mut prev, mut prev_term) = (prev, prev_term);
        let snap = self.log.snapshot().clone();
        if prev < snap.index {
            // Our snapshot holds committed entries: skip what it covers.
            let skip = (snap.index - prev) as usize;
            if skip > entries.len() {
                self.verified = self.verified.max(snap.index);
                self.reply_append(ack_to, true, snap.index, 0);
                return;
            }
            if skip > 0 && entries[skip - 1].term != snap.term {
                self.stats.committed_conflict += 1;
                return;
            }
            entries.drain(..skip);
            prev = snap.index;
            prev_term = snap.term;
        }
        if self.log.term_at(prev) != Some(prev_term) {
            let last = self.log.last_index();
            let (index, hint) = if prev > last {
                (last + 1, 0)
            } else {
                let ct = self.log.term_at(prev).unwrap_or(0);
                let mut i = prev;
                while i > self.log.first_index() && self.log.term_at(i - 1) == Some(ct) {
                    i -= 1;
                }
                (i, ct)
            };
            self.reply_append(from, false, index, hint);
            return;
        }
        let mut idx = prev + 1;
        let mut splice_from = None;
        let mut new = Vec::new();
        let mut missing = Vec::new();
        for (i, we) in entries.into_iter().enumerate() {
            let at = prev + 1 + i as Index;
            if !missing.is_empty() {
                // Past a missing body: only collect what else to ask for.
                if let Some(m) = we.meta
                    && we.body.is_none()
                    && self.find_body(&m.id).is_none()
                {
                    missing.push((at, m.id));
                }
                continue;
            }
            if splice_from.is_none() {
                match self.log.term_at(idx) {
                    Some(t) if t == we.term => {
                        idx += 1;
                        continue;
                    }
                    Some(_) if idx <= self.commit => {
                        self.stats.committed_conflict += 1;
                        break;
                    }
                    _ => splice_from = Some(idx),
                }
            }
            let meta = we.meta;
            let body = match meta {
                Some(m) if we.body.is_none() => self.find_body(&m.id),
                _ => None,
            };
            match we.into_entry(body) {
                Some(e) => {
                    new.push(e);
                    idx += 1;
                }
                None => {
                    if let Some(m) = meta {
                        missing.push((at, m.id));
                    }
                }
            }
        }
        if let Some(at) = splice_from
            && !new.is_empty()
        {
            self.splice(at, new);
        }
        let matched = idx - 1;
        self.verified = self.verified.max(matched);
        let commit = self.commit.max(leader_commit.min(matched));
        if commit > self.commit {
            self.commit = commit;
            self.apply_committed();
        }
        self.reply_append(ack_to, true, matched, 0);
        if !missing.is_empty() {
            self.ask_recovery(from, missing);
        }
    }

    pub(crate) fn on_append_rep(
        &mut self,
        from: NodeId,
        success: bool,
        index: Index,
        hint_term: Term,
        applied: Index,
    ) {
        let last = self.log.last_index();
        self.peer_heard(from, applied);
        let p = &mut self.peers[usize::from(from)];
        // The latest AppendEntries is answered (a failure always is: it is resent below).
        if !success || index >= p.sent {
            p.inflight = false;
        }
        if success {
            let index = index.min(last);
            let progressed = index > p.matched;
            if progressed {
                p.matched = index;
            }
            p.next = p.matched + 1;
            self.agg_caught_up(from);
            if progressed {
                self.maybe_commit();
            }
            self.announce();
            if progressed
                && self.is_direct(from)
                && self.peers[usize::from(from)].next <= self.log.last_index()
            {
                self.send_append(from, false);
            }
        } else {
            let next = if hint_term == 0 {
                index
            } else {
                self.last_index_of(hint_term).map_or(index, |j| j + 1)
            };
            let p = &mut self.peers[usize::from(from)];
            p.next = next.clamp(p.matched + 1, last + 1);
            p.direct = true;
            self.send_append(from, false);
        }
    }

    /// Bookkeeping for any answer from a follower of this term.
    fn peer_heard(&mut self, from: NodeId, applied: Index) {
        let p = &mut self.peers[usize::from(from)];
        p.heard = true;
        self.note_applied(from, applied);
    }

    /// A replica's applied index, as reported (capped by the log): frees its reply queue.
    pub(crate) fn note_applied(&mut self, from: NodeId, applied: Index) {
        let last = self.log.last_index();
        let p = &mut self.peers[usize::from(from)];
        p.applied = p.applied.max(applied.min(last));
        while p.assigned.front().is_some_and(|&i| i <= p.applied) {
            p.assigned.pop_front();
        }
    }

    /// The last index holding `term` (terms never decrease along the log).
    fn last_index_of(&self, term: Term) -> Option<Index> {
        let mut i = self.log.last_index();
        while i >= self.log.first_index() {
            match self.log.term_at(i) {
                Some(t) if t == term => return Some(i),
                Some(t) if t < term => return None,
                _ => i -= 1,
            }
        }
        None
    }

    /// Raft's commit rule: the highest index of the **current** term held by a majority
    /// (entries of earlier terms commit with it, never by being counted; Raft 5.4.2).
    pub(crate) fn maybe_commit(&mut self) {
        let mut n = self.log.last_index();
        while n > self.commit {
            if self.log.term_at(n) != Some(self.term) {
                break;
            }
            let count = self.peers.iter().filter(|p| p.matched >= n).count();
            if count >= self.cfg.quorum() {
                self.commit = n;
                self.apply_committed();
                break;
            }
            n -= 1;
        }
    }

    pub(crate) fn on_snap_req(&mut self, from: NodeId, term: Term, snapshot: Snapshot) {
        if term < self.term {
            let term = self.term;
            self.send(from, Message::SnapRep { term, index: 0 });
            return;
        }
        if !self.follow(from, term) {
            return;
        }
        let index = snapshot.index;
        if index > self.commit {
            self.stats.snapshots_installed += 1;
            self.log.install(snapshot.clone());
            self.out.writes.push(Write::Snapshot(snapshot.clone()));
            self.commit = index;
            self.applied = index;
            // The application restarts from the snapshot: it has run everything in it.
            if let Some(e) = &mut self.executed {
                *e = (*e).max(index);
            }
            self.rebuild_unapplied();
            self.out.restore = Some(snapshot);
        }
        let term = self.term;
        self.send(from, Message::SnapRep { term, index });
    }

    pub(crate) fn on_snap_rep(&mut self, from: NodeId, index: Index) {
        let last = self.log.last_index();
        self.peer_heard(from, index);
        let p = &mut self.peers[usize::from(from)];
        p.inflight = false;
        let index = index.min(last);
        if index > p.matched {
            p.matched = index;
        }
        p.next = p.matched + 1;
        self.agg_caught_up(from);
        self.maybe_commit();
        self.announce();
        if self.is_direct(from) && self.peers[usize::from(from)].next <= self.log.last_index() {
            self.send_append(from, false);
        }
    }
}
