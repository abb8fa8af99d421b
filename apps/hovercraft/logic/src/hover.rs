//! Client requests into the log, and HovercRaft's additions (thesis 12.3): the pending set,
//! RECOVERY_REQ/REP, and the choice of the designated replier under bounded reply queues.
//!
//! - Vanilla: the leader appends each request at once with itself as replier; other
//!   replicas redirect the client.
//! - HovercRaft: every replica receives each request by multicast. The leader queues it in
//!   its backlog and *announces* it (appends it, with a replier, to the log) only when some
//!   replica has fewer than `reply_bound` entries assigned to it and not yet applied (the
//!   leader learns each follower's applied index from its AppendEntries answers). Followers
//!   hold requests in a pending set keyed by (ip, port, rid) until an AppendEntries orders
//!   them; one they do not have is fetched with RECOVERY_REQ from the leader (any replica
//!   answers from its log or pending set). The follower appends entries in order up to the
//!   first missing body and acknowledges only that far, so every log holds full requests and
//!   Raft's safety argument is unchanged. A new leader orders its pending requests.
//!
//! Requests are not deduplicated past their execution: a retried request may be ordered
//! twice, and the application must keep at-most-once semantics (e.g. per-client last rid).

use alloc::vec::Vec;

use crate::config::{Mode, ReplierPolicy};
use crate::message::Message;
use crate::node::{Node, Pending, Role};
use crate::types::{ClientId, Entry, Index, NodeId, Op, Request};

impl Node {
    pub(crate) fn request(&mut self, req: Request) {
        if self.role == Role::Leader {
            if self.backlog_ids.contains(&req.id) || self.unapplied.contains_key(&req.id) {
                self.stats.duplicate_requests += 1;
            } else if self.backlog.len() >= self.cfg.max_pending {
                self.stats.pending_full += 1;
            } else {
                self.backlog_ids.insert(req.id);
                self.backlog.push_back(req);
                self.announce();
            }
        } else if self.cfg.mode == Mode::Vanilla {
            self.stats.redirected += 1;
            self.out.redirects.push((req.id, self.leader));
        } else {
            self.pending_insert(req);
        }
    }

    /// Leader: moves backlog requests into the log with their replier, then sends them.
    pub(crate) fn announce(&mut self) {
        if self.role != Role::Leader || self.backlog.is_empty() {
            return;
        }
        let first = self.log.last_index() + 1;
        let mut new = Vec::new();
        while !self.backlog.is_empty() {
            let replier = match self.cfg.mode {
                Mode::Vanilla => Some(self.cfg.id),
                Mode::Hover => self.pick_replier(),
            };
            let Some(replier) = replier else { break };
            let Some(req) = self.backlog.pop_front() else {
                break;
            };
            self.backlog_ids.remove(&req.id);
            let index = first + new.len() as Index;
            if self.cfg.mode == Mode::Hover {
                self.peers[usize::from(replier)].assigned.push_back(index);
            }
            new.push(Entry {
                term: self.term,
                op: Op::Request { req, replier },
            });
        }
        if new.is_empty() {
            return;
        }
        self.append_local(new);
        self.broadcast_append(false);
    }

    /// The replier of the next announced entry, or `None` when every reply queue is full.
    fn pick_replier(&mut self) -> Option<NodeId> {
        let me = usize::from(self.cfg.id);
        self.peers[me].applied = self.peers[me].applied.max(self.done());
        let n = usize::from(self.cfg.nodes);
        let bound = self.cfg.reply_bound as usize;
        let mut best: Option<(usize, usize)> = None;
        // Random: the eligible nodes, one drawn at the end.
        let mut eligible = [0usize; 16];
        let mut count = 0;
        for k in 0..n {
            let j = (usize::from(self.turn) + k) % n;
            let p = &mut self.peers[j];
            while p.assigned.front().is_some_and(|&i| i <= p.applied) {
                p.assigned.pop_front();
            }
            let load = p.assigned.len();
            if load >= bound {
                continue;
            }
            match self.cfg.replier {
                ReplierPolicy::RoundRobin => {
                    best = Some((j, load));
                    break;
                }
                ReplierPolicy::Jbsq => {
                    if best.is_none_or(|(_, l)| load < l) {
                        best = Some((j, load));
                    }
                }
                ReplierPolicy::Random => {
                    eligible[count] = j;
                    count += 1;
                }
            }
        }
        if count > 0 {
            let k = self.rng.range(0, count as u32) as usize;
            best = Some((eligible[k], 0));
        }
        let (j, _) = best?;
        self.turn = ((j + 1) % n) as u8;
        Some(j as NodeId)
    }

    /// Holds a multicast request until it is ordered.
    pub(crate) fn pending_insert(&mut self, req: Request) {
        if self.pending.contains_key(&req.id) || self.unapplied.contains_key(&req.id) {
            self.stats.duplicate_requests += 1;
        } else if self.pending.len() >= self.cfg.max_pending {
            self.stats.pending_full += 1;
        } else {
            let since = self.now;
            self.pending.insert(req.id, Pending { req, since });
        }
    }

    pub(crate) fn expire_pending(&mut self) {
        let (now, keep) = (self.now, u64::from(self.cfg.pending_ticks));
        let before = self.pending.len();
        self.pending.retain(|_, p| p.since + keep > now);
        self.stats.pending_expired += (before - self.pending.len()) as u64;
        let again = u64::from(self.cfg.recovery_ticks);
        self.recovering.retain(|_, t| *t + again > now);
    }

    /// The body of a request this replica holds (pending, or in the log and not applied).
    pub(crate) fn find_body(&self, id: &ClientId) -> Option<Vec<u8>> {
        if let Some(p) = self.pending.get(id) {
            return Some(p.req.body.clone());
        }
        let i = self.unapplied.get(id)?;
        match &self.log.entry(*i)?.op {
            Op::Request { req, .. } if req.id == *id => Some(req.body.clone()),
            _ => None,
        }
    }

    pub(crate) fn ask_recovery(&mut self, to: NodeId, missing: Vec<(Index, ClientId)>) {
        let (now, again) = (self.now, u64::from(self.cfg.recovery_ticks));
        let mut ask = Vec::new();
        for (index, id) in missing {
            if self.recovering.get(&id).is_some_and(|&t| t + again > now) {
                continue;
            }
            self.recovering.insert(id, now);
            ask.push((index, id));
        }
        if ask.is_empty() {
            return;
        }
        self.stats.recovery_asked += ask.len() as u64;
        let term = self.term;
        self.send(to, Message::RecoveryReq { term, missing: ask });
    }

    pub(crate) fn on_recovery_req(&mut self, from: NodeId, missing: Vec<(Index, ClientId)>) {
        let mut found: Vec<Request> = Vec::new();
        let mut room = self
            .cfg
            .max_message_bytes
            .saturating_sub(crate::wire::RECOVERY_REP_HEADER);
        // Asked for entries the log no longer holds (compacted): the follower needs the
        // snapshot, which the resent AppendEntries brings.
        let mut compacted = false;
        for (index, id) in missing.into_iter().take(self.cfg.max_entries) {
            compacted |= index <= self.log.snapshot().index;
            let in_log = self.log.entry(index).and_then(|e| match &e.op {
                Op::Request { req, .. } if req.id == id => Some(req.clone()),
                _ => None,
            });
            let req = in_log.or_else(|| {
                let body = self.find_body(&id)?;
                let read_only = self.pending.get(&id).is_some_and(|p| p.req.read_only);
                Some(Request {
                    id,
                    read_only,
                    body,
                })
            });
            let Some(r) = req else {
                self.stats.recovery_unknown += 1;
                continue;
            };
            {
                let len = crate::wire::RECOVERED_HEADER + r.body.len();
                if len > room && !found.is_empty() {
                    break;
                }
                room = room.saturating_sub(len);
                found.push(r);
            }
        }
        if found.is_empty() && !compacted {
            // Nothing to give (a flood of requests for bodies nobody holds costs no answer).
            return;
        }
        if !found.is_empty() {
            self.stats.recovery_served += found.len() as u64;
            let term = self.term;
            self.send(from, Message::RecoveryRep { term, found });
        }
        if self.role == Role::Leader {
            // The follower is about to have the bodies: resend what it lacked (directly, also
            // under HovercRaft++, until it caught up).
            let p = &mut self.peers[usize::from(from)];
            p.inflight = false;
            p.direct = true;
            self.send_append(from, false);
        }
    }

    pub(crate) fn on_recovery_rep(&mut self, found: Vec<Request>) {
        for req in found {
            self.recovering.remove(&req.id);
            if self.role != Role::Leader && !self.pending.contains_key(&req.id) {
                self.pending_insert(req);
            }
        }
    }
}
