//! The replica: state, the step function, roles and leader election with pre-vote.
//! Replication is in [`crate::replicate`], HovercRaft's pending set, recovery and replier
//! assignment in [`crate::hover`].
//!
//! A [`Node`] has no clock, no I/O and no randomness but its seeded generator: the caller
//! feeds it [`Input`]s (a tick, a peer's message, a client request, a compaction) and carries
//! out the [`Outputs`]: first the persistent writes (see [`crate::storage`] for the fsync
//! rule), then the messages; committed entries are handed out for the application to run.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::mem;

use crate::config::{Config, ConfigError, Mode};
use crate::log::Log;
use crate::message::Message;
use crate::rng::SplitMix;
use crate::stats::Stats;
use crate::storage::{Durable, Write};
use crate::types::{ClientId, Index, NodeId, Op, Request, Snapshot, Term};
use crate::wire::{self, DecodeError};

/// What a replica is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Following a leader (or waiting for one).
    Follower,
    /// Asking for pre-votes; its term is unchanged until a majority would vote for it.
    PreCandidate,
    /// Asking for votes in a term it started.
    Candidate,
    /// Leading its term.
    Leader,
}

/// One input of [`Node::step`].
#[derive(Clone, Debug)]
pub enum Input {
    /// One unit of time passed (the reference ticks at 1 kHz).
    Tick,
    /// A message from a peer.
    Message {
        /// The sender (checked: a non-member is counted and ignored).
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A client request reached this replica (vanilla: sent to it; HovercRaft: multicast).
    Request(Request),
    /// The application finished running the entries up to `index` (at most
    /// [`Node::applied`]). An application on its own thread (thesis 12.6: the application
    /// thread runs committed entries while the network thread goes on) sends this as it goes:
    /// from the first one on, the applied index the replica reports for HovercRaft's bounded
    /// reply queues ([`Message::AppendRep`]'s `applied`, the leader's own queue) is this one
    /// instead of the index handed out in [`Outputs::applied`], so that a replier busy with a
    /// long request is seen busy. An application that runs each step's entries before the
    /// next step need not send it.
    Executed(Index),
    /// The application's state after applying every entry up to `index` (at most
    /// [`Node::applied`]): the log before it is discarded.
    Compact {
        /// The last index the state covers.
        index: Index,
        /// The serialized state.
        data: Vec<u8>,
    },
}

/// A committed entry for the application, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Its index.
    pub index: Index,
    /// Its term.
    pub term: Term,
    /// What it orders.
    pub op: Op,
    /// Run it against the state machine: every replica runs read-write requests; a
    /// read-only one runs only on its designated replier; a no-op runs nowhere.
    pub execute: bool,
    /// This replica is the designated replier: it answers the client.
    pub reply: bool,
}

/// What one step asks the caller to do, in this order: make `writes` durable; replace the
/// application's state by `restore` if set; run `applied`; send `messages`; answer every
/// client in `redirects` with "not the leader" (vanilla).
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Persistent writes: durable before any message is sent.
    pub writes: Vec<Write>,
    /// (destination, message).
    pub messages: Vec<(NodeId, Message)>,
    /// A snapshot installed from the leader: the state machine restarts from it.
    pub restore: Option<Snapshot>,
    /// Newly committed entries.
    pub applied: Vec<Applied>,
    /// Client requests refused (vanilla, not the leader), with the leader if known.
    pub redirects: Vec<(ClientId, Option<NodeId>)>,
}

/// The leader's view of one replica (its own slot included, for the reply queue).
#[derive(Clone, Debug, Default, Hash)]
pub(crate) struct Peer {
    /// Next index to send.
    pub next: Index,
    /// Highest index known to match.
    pub matched: Index,
    /// Its applied index, as last reported.
    pub applied: Index,
    /// An AppendEntries or snapshot is outstanding (only a heartbeat resends).
    pub inflight: bool,
    /// The last index the latest AppendEntries to it carried (its `prev_index` if empty):
    /// only an answer reaching it ends the outstanding one, so that the answer to an older
    /// one (sent before a heartbeat) does not start a second stream of AppendEntries.
    pub sent: Index,
    /// Heard from in the current check-quorum period.
    pub heard: bool,
    /// HovercRaft: indices of entries it is the replier of, not yet applied by it.
    pub assigned: VecDeque<Index>,
    /// HovercRaft++: replicate to it point to point although the aggregator is in use (it
    /// lags, failed a multicast AppendEntries, or went unheard through the aggregator).
    pub direct: bool,
}

/// A request held unordered (HovercRaft), since a tick.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub req: Request,
    pub since: u64,
}

/// One Raft replica.
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) rng: SplitMix,
    // Persistent (mirrored to storage through `out.writes`).
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: Log,
    // Volatile.
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) commit: Index,
    pub(crate) applied: Index,
    /// What the application reported run ([`Input::Executed`]); `None` until it reports.
    pub(crate) executed: Option<Index>,
    elapsed: u32,
    timeout: u32,
    heartbeat: u32,
    pub(crate) now: u64,
    votes: u16,
    pub(crate) peers: Vec<Peer>,
    /// Leader: accepted requests not yet in the log (HovercRaft: waiting for a replier).
    pub(crate) backlog: VecDeque<Request>,
    pub(crate) backlog_ids: BTreeSet<ClientId>,
    /// HovercRaft: multicast requests not yet ordered.
    pub(crate) pending: BTreeMap<ClientId, Pending>,
    /// Request entries in `applied + 1 ..= last_index`, by id (latest index).
    pub(crate) unapplied: BTreeMap<ClientId, Index>,
    /// HovercRaft: when RECOVERY_REQ was last sent for a request.
    pub(crate) recovering: BTreeMap<ClientId, u64>,
    /// Round-robin position of the replier choice.
    pub(crate) turn: u8,
    pub(crate) stats: Stats,
    pub(crate) out: Outputs,
    /// Follower: the highest index verified to match the current leader's log in this term
    /// (what AGG_COMMIT may commit up to).
    pub(crate) verified: Index,
    /// Leader: the index of its first entry of its term (its no-op).
    pub(crate) term_start: Index,
    /// Leader, HovercRaft++: the aggregator's use.
    pub(crate) agg: crate::plus::AggState,
}

impl Node {
    /// A replica resuming from `durable` (`Durable::default()` for a fresh one). The
    /// application restores its state from `durable.log.snapshot()` itself; entries after
    /// it are handed out again as they are (re)committed.
    pub fn new(cfg: Config, durable: Durable) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let mut rng = SplitMix::new(cfg.seed);
        let timeout = rng.range(cfg.election_ticks, 2 * cfg.election_ticks);
        let base = durable.log.snapshot().index;
        let mut n = Node {
            rng,
            term: durable.term,
            vote: durable.vote,
            log: durable.log,
            role: Role::Follower,
            leader: None,
            commit: base,
            applied: base,
            executed: None,
            elapsed: 0,
            timeout,
            heartbeat: 0,
            now: 0,
            votes: 0,
            peers: alloc::vec![Peer::default(); usize::from(cfg.nodes)],
            backlog: VecDeque::new(),
            backlog_ids: BTreeSet::new(),
            pending: BTreeMap::new(),
            unapplied: BTreeMap::new(),
            recovering: BTreeMap::new(),
            turn: 0,
            stats: Stats::default(),
            out: Outputs::default(),
            verified: 0,
            term_start: 0,
            agg: crate::plus::AggState::default(),
            cfg,
        };
        n.rebuild_unapplied();
        Ok(n)
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// Vote in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    /// The leader of the current term, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// Highest index known committed.
    pub fn commit(&self) -> Index {
        self.commit
    }
    /// Highest index handed out in [`Outputs::applied`] (or covered by the snapshot).
    pub fn applied(&self) -> Index {
        self.applied
    }
    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// HovercRaft: requests held unordered.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The applied index reported for the bounded reply queues: what the application ran
    /// ([`Input::Executed`]) once it reports, the handed-out index before.
    pub fn done(&self) -> Index {
        self.executed.map_or(self.applied, |e| e.min(self.applied))
    }

    /// Hashes the protocol state (role, term, vote, leader, log, commit and applied indices,
    /// votes, the leader's view of its followers, the backlog and pending set), leaving out
    /// counters, the clock and the timers: two replicas with the same fingerprint behave
    /// alike but for when their timers fire. For model checkers.
    pub fn fingerprint<H: core::hash::Hasher>(&self, h: &mut H) {
        use core::hash::Hash;
        (self.cfg.id, self.role, self.term, self.vote, self.leader).hash(h);
        (self.commit, self.applied, self.votes).hash(h);
        self.log.snapshot().hash(h);
        for e in self.log.entries() {
            e.hash(h);
        }
        if self.role == Role::Leader {
            self.peers.hash(h);
            (self.agg, self.term_start).hash(h);
        }
        (self.verified, self.executed).hash(h);
        self.backlog.hash(h);
        for id in self.pending.keys() {
            id.hash(h);
        }
    }

    /// Feeds one input; returns what to do.
    pub fn step(&mut self, input: Input) -> Outputs {
        match input {
            Input::Tick => self.tick(),
            Input::Message { from, msg } => {
                let agg = from == crate::aggregator::AGGREGATOR;
                // The aggregator's own messages only from it; the rest only from a member.
                let member = from < self.cfg.nodes && from != self.cfg.id;
                if agg != msg.from_aggregator() || (!agg && !member) {
                    self.stats.unknown_sender += 1;
                } else {
                    self.message(from, msg);
                }
            }
            Input::Request(req) => self.request(req),
            Input::Executed(index) => self.executed(index),
            Input::Compact { index, data } => self.compact(index, data),
        }
        mem::take(&mut self.out)
    }

    /// Decodes a message from the network ([`wire`]) and steps it; malformed input is
    /// counted in [`Node::stats`] and changes nothing.
    pub fn receive(&mut self, bytes: &[u8]) -> Outputs {
        match wire::decode(bytes, self.cfg.nodes, self.cfg.id) {
            Ok((from, msg)) => self.step(Input::Message { from, msg }),
            Err(e) => {
                match e {
                    DecodeError::UnknownType(_) => self.stats.unknown_type += 1,
                    DecodeError::UnknownSender(_) => self.stats.unknown_sender += 1,
                    _ => self.stats.malformed += 1,
                }
                Outputs::default()
            }
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        self.out.messages.push((to, msg));
    }

    pub(crate) fn others(&self) -> impl Iterator<Item = NodeId> + use<> {
        let me = self.cfg.id;
        (0..self.cfg.nodes).filter(move |&p| p != me)
    }

    /// A message from the current leader: the election timer starts over.
    pub(crate) fn heard_from_leader(&mut self) {
        self.elapsed = 0;
    }

    fn save_hard_state(&mut self) {
        self.out.writes.push(Write::HardState {
            term: self.term,
            vote: self.vote,
        });
    }

    fn reset_timer(&mut self) {
        self.elapsed = 0;
        self.timeout = self
            .rng
            .range(self.cfg.election_ticks, 2 * self.cfg.election_ticks);
    }

    fn tick(&mut self) {
        self.now += 1;
        self.elapsed += 1;
        if self.role == Role::Leader {
            self.heartbeat += 1;
            if self.heartbeat >= self.cfg.heartbeat_ticks {
                self.heartbeat = 0;
                self.broadcast_append(true);
            }
            if self.elapsed >= self.cfg.election_ticks {
                self.elapsed = 0;
                self.check_quorum();
            }
            if self.role == Role::Leader {
                self.agg_tick();
            }
        } else if self.elapsed >= self.timeout {
            self.start_prevote();
        } else if self.role == Role::Candidate
            && self.elapsed.is_multiple_of(self.cfg.heartbeat_ticks)
        {
            // RequestVote again to those that have not granted (lost messages, restarts).
            self.request_votes();
        }
        if self.cfg.mode == Mode::Hover && self.now.is_multiple_of(16) {
            self.expire_pending();
        }
    }

    /// A leader that heard from no majority for an election timeout steps down, so that
    /// clients stop waiting on it and its pre-vote refusals stop.
    fn check_quorum(&mut self) {
        let me = usize::from(self.cfg.id);
        let heard = 1 + self
            .peers
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != me && p.heard)
            .count();
        if self.agg_check_quorum(heard) {
            return;
        }
        for p in &mut self.peers {
            p.heard = false;
        }
        if heard < self.cfg.quorum() {
            self.stats.quorum_lost += 1;
            self.become_follower(self.term, None);
        }
    }

    fn start_prevote(&mut self) {
        self.stats.prevotes += 1;
        self.step_down_leadership();
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = 1 << self.cfg.id;
        self.reset_timer();
        let msg = Message::PreVoteReq {
            term: self.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        for p in self.others() {
            self.send(p, msg.clone());
        }
    }

    fn start_election(&mut self) {
        self.stats.elections += 1;
        self.role = Role::Candidate;
        self.term += 1;
        self.verified = 0;
        self.vote = Some(self.cfg.id);
        self.votes = 1 << self.cfg.id;
        self.save_hard_state();
        self.reset_timer();
        self.request_votes();
    }

    fn request_votes(&mut self) {
        let msg = Message::VoteReq {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        for p in self.others() {
            if self.votes & (1 << p) == 0 {
                self.send(p, msg.clone());
            }
        }
    }

    /// Adopts `term` (forgetting the vote if it is newer) and follows `leader`.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.verified = 0;
            self.vote = None;
            self.save_hard_state();
        }
        if self.role != Role::Follower {
            self.step_down_leadership();
            self.role = Role::Follower;
            self.reset_timer();
        }
        self.leader = leader;
    }

    /// A leader giving up keeps its unordered requests as pending (HovercRaft: a later
    /// leader may order them) or drops them (vanilla: clients retry).
    fn step_down_leadership(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let backlog = mem::take(&mut self.backlog);
        self.backlog_ids.clear();
        if self.cfg.mode == Mode::Hover {
            for req in backlog {
                self.pending_insert(req);
            }
        }
    }

    fn become_leader(&mut self) {
        self.stats.became_leader += 1;
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.heartbeat = 0;
        self.elapsed = 0;
        let next = self.log.last_index() + 1;
        for p in &mut self.peers {
            *p = Peer {
                next,
                heard: true,
                ..Peer::default()
            };
        }
        let me = usize::from(self.cfg.id);
        self.peers[me].matched = self.log.last_index();
        self.term_start = next;
        self.agg_start();
        // A no-op of this term, so that earlier terms' entries can commit (Raft 5.4.2).
        self.append_local(alloc::vec![crate::types::Entry {
            term: self.term,
            op: Op::Noop,
        }]);
        if self.cfg.mode == Mode::Hover {
            let pending = mem::take(&mut self.pending);
            for (_, p) in pending {
                self.backlog_ids.insert(p.req.id);
                self.backlog.push_back(p.req);
            }
        }
        self.announce();
        self.broadcast_append(false);
    }

    fn message(&mut self, from: NodeId, msg: Message) {
        let t = msg.term();
        let prevote = matches!(
            msg,
            Message::PreVoteReq { .. } | Message::PreVoteRep { granted: true, .. }
        );
        // The aggregator never changes a term.
        if t > self.term && !prevote && !msg.from_aggregator() {
            let leader = match msg {
                Message::AppendReq { .. }
                | Message::SnapReq { .. }
                | Message::AggAppendReq { .. } => Some(from),
                _ => None,
            };
            self.become_follower(t, leader);
        }
        if t < self.term && !matches!(msg, Message::PreVoteReq { .. }) {
            self.stats.stale_term += 1;
        }
        match msg {
            Message::PreVoteReq {
                term,
                last_index,
                last_term,
            } => self.on_prevote_req(from, term, last_index, last_term),
            Message::PreVoteRep { term, granted } => {
                if self.role == Role::PreCandidate && granted && term == self.term + 1 {
                    self.count_vote(from);
                }
            }
            Message::VoteReq {
                term,
                last_index,
                last_term,
            } => self.on_vote_req(from, term, last_index, last_term),
            Message::VoteRep { term, granted } => {
                if self.role == Role::Candidate && granted && term == self.term {
                    self.count_vote(from);
                }
            }
            Message::AppendReq {
                term,
                prev_index,
                prev_term,
                commit,
                entries,
            } => self.on_append_req(from, term, prev_index, prev_term, commit, entries, false),
            Message::AggAppendReq {
                term,
                prev_index,
                prev_term,
                commit,
                entries,
                ..
            } => self.on_append_req(from, term, prev_index, prev_term, commit, entries, true),
            Message::AggCommit {
                term,
                commit,
                fresh,
                progress,
            } => self.on_agg_commit(term, commit, fresh, &progress),
            Message::AggProbeRep { term } => self.on_agg_probe_rep(term),
            // Only the aggregator takes probes.
            Message::AggProbeReq { .. } => {}
            Message::AppendRep {
                term,
                success,
                index,
                hint_term,
                applied,
            } => {
                if term == self.term && self.role == Role::Leader {
                    self.on_append_rep(from, success, index, hint_term, applied);
                }
            }
            Message::SnapReq { term, snapshot } => self.on_snap_req(from, term, snapshot),
            Message::SnapRep { term, index } => {
                if term == self.term && self.role == Role::Leader {
                    self.on_snap_rep(from, index);
                }
            }
            Message::RecoveryReq { missing, .. } => self.on_recovery_req(from, missing),
            Message::RecoveryRep { found, .. } => self.on_recovery_rep(found),
        }
    }

    fn on_prevote_req(&mut self, from: NodeId, term: Term, li: Index, lt: Term) {
        // Refuse while a leader is known to be alive: a replica cut off and back must not
        // depose a working leader (the point of pre-vote).
        let leader_alive = self.role == Role::Leader
            || (self.leader.is_some() && self.elapsed < self.cfg.election_ticks);
        let granted = term > self.term && !leader_alive && self.log.up_to_date(li, lt);
        let term = if granted { term } else { self.term };
        self.send(from, Message::PreVoteRep { term, granted });
    }

    fn on_vote_req(&mut self, from: NodeId, term: Term, li: Index, lt: Term) {
        // A candidate or leader of this term voted for itself: the vote test refuses.
        let granted =
            term == self.term && self.vote.is_none_or(|v| v == from) && self.log.up_to_date(li, lt);
        if granted && self.vote.is_none() {
            self.vote = Some(from);
            self.save_hard_state();
        }
        if granted {
            self.become_follower(self.term, None);
            self.reset_timer();
        }
        let term = self.term;
        self.send(from, Message::VoteRep { term, granted });
    }

    fn count_vote(&mut self, from: NodeId) {
        self.votes |= 1 << from;
        if self.votes.count_ones() as usize >= self.cfg.quorum() {
            if self.role == Role::PreCandidate {
                self.start_election();
            } else {
                self.become_leader();
            }
        }
    }

    fn executed(&mut self, index: Index) {
        let index = index.min(self.applied);
        self.executed = Some(self.executed.map_or(index, |e| e.max(index)));
        if self.role == Role::Leader {
            let me = self.cfg.id;
            self.note_applied(me, self.done());
            self.announce();
        }
    }

    fn compact(&mut self, index: Index, data: Vec<u8>) {
        if index > self.applied || index <= self.log.snapshot().index {
            return;
        }
        let Some(term) = self.log.term_at(index) else {
            return;
        };
        let snap = Snapshot { index, term, data };
        self.log.install(snap.clone());
        self.out.writes.push(Write::Snapshot(snap));
    }

    /// Appends to the local log (leader, or a follower's accepted entries at the end).
    pub(crate) fn append_local(&mut self, entries: Vec<crate::types::Entry>) {
        let from = self.log.last_index() + 1;
        self.splice(from, entries);
        if self.role == Role::Leader {
            let me = usize::from(self.cfg.id);
            self.peers[me].matched = self.log.last_index();
        }
    }

    /// Replaces the log from `from` on, keeping the id index and the pending set in step.
    pub(crate) fn splice(&mut self, from: Index, entries: Vec<crate::types::Entry>) {
        let dropped: Vec<Request> = self
            .log
            .range(from, self.log.last_index())
            .filter_map(|e| match &e.op {
                Op::Request { req, .. } => Some(req.clone()),
                Op::Noop => None,
            })
            .collect();
        for r in dropped {
            if self.unapplied.get(&r.id).is_some_and(|&i| i >= from) {
                self.unapplied.remove(&r.id);
            }
            // A truncated request may still be ordered by a later leader.
            if self.cfg.mode == Mode::Hover {
                self.pending_insert(r);
            }
        }
        for (i, e) in entries.iter().enumerate() {
            if let Some(id) = e.client() {
                self.unapplied.insert(id, from + i as Index);
                self.pending.remove(&id);
                self.recovering.remove(&id);
            }
        }
        self.log.splice(from, &entries);
        self.out.writes.push(Write::Entries { from, entries });
    }

    pub(crate) fn rebuild_unapplied(&mut self) {
        self.unapplied.clear();
        let first = self.applied + 1;
        for (i, e) in self.log.range(first, self.log.last_index()).enumerate() {
            if let Some(id) = e.client() {
                self.unapplied.insert(id, first + i as Index);
            }
        }
    }

    /// Hands out the entries up to `commit`.
    pub(crate) fn apply_committed(&mut self) {
        let me = self.cfg.id;
        let mut any = false;
        while self.applied < self.commit {
            let index = self.applied + 1;
            let Some(e) = self.log.entry(index) else {
                break;
            };
            let (execute, reply) = match &e.op {
                Op::Noop => (false, false),
                Op::Request { req, replier } => (!req.read_only || *replier == me, *replier == me),
            };
            let applied = Applied {
                index,
                term: e.term,
                op: e.op.clone(),
                execute,
                reply,
            };
            if let Some(id) = e.client()
                && self.unapplied.get(&id) == Some(&index)
            {
                self.unapplied.remove(&id);
            }
            self.out.applied.push(applied);
            self.applied = index;
            any = true;
        }
        if any && self.role == Role::Leader {
            self.note_applied(me, self.done());
            self.announce();
        }
    }
}
