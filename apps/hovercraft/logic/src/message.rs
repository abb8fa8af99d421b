//! The messages replicas exchange (their byte layout is in [`crate::wire`]).

use alloc::vec::Vec;

use crate::types::{ClientId, Entry, Index, NodeId, Op, Request, Snapshot, Term};

/// An AppendEntries entry as sent: the body travels only in vanilla mode (or, in HovercRaft,
/// never: followers resolve it from their pending set).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WireEntry {
    /// Term of the entry.
    pub term: Term,
    /// Ordered request metadata, `None` for a no-op.
    pub meta: Option<Meta>,
    /// The request bytes (vanilla) or `None` (HovercRaft, or a no-op).
    pub body: Option<Vec<u8>>,
}

/// The fixed-size metadata of a request entry (about 25 bytes on the wire, as the thesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Meta {
    /// Request identity.
    pub id: ClientId,
    /// Read-only (REPLICATED_ROUTE_NO_SE).
    pub read_only: bool,
    /// Designated replier.
    pub replier: NodeId,
}

impl WireEntry {
    /// The wire form of a log entry, with or without the body.
    pub fn of(e: &Entry, with_body: bool) -> WireEntry {
        match &e.op {
            Op::Noop => WireEntry {
                term: e.term,
                meta: None,
                body: None,
            },
            Op::Request { req, replier } => WireEntry {
                term: e.term,
                meta: Some(Meta {
                    id: req.id,
                    read_only: req.read_only,
                    replier: *replier,
                }),
                body: with_body.then(|| req.body.clone()),
            },
        }
    }

    /// The log entry, given the body (taken from the entry itself or from elsewhere).
    pub fn into_entry(self, body: Option<Vec<u8>>) -> Option<Entry> {
        let op = match self.meta {
            None => Op::Noop,
            Some(m) => Op::Request {
                req: Request {
                    id: m.id,
                    read_only: m.read_only,
                    body: self.body.or(body)?,
                },
                replier: m.replier,
            },
        };
        Some(Entry {
            term: self.term,
            op,
        })
    }
}

/// One member's progress as the HovercRaft++ aggregator saw it (in [`Message::AggCommit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Progress {
    /// Highest index its success answers reported matching the leader's log (this term).
    pub matched: Index,
    /// Its applied index ("done"), as last reported.
    pub applied: Index,
}

/// A Raft message. Every one carries the sender's current term (for pre-vote: the term it
/// would campaign in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// Pre-vote (Raft thesis 9.6): would you vote for me in `term`? Changes no state.
    PreVoteReq {
        /// The term the sender would start.
        term: Term,
        /// Sender's last log index.
        last_index: Index,
        /// Sender's last log term.
        last_term: Term,
    },
    /// Pre-vote answer; `term` is the requested term when granted, the receiver's otherwise.
    PreVoteRep {
        /// See above.
        term: Term,
        /// Granted.
        granted: bool,
    },
    /// RequestVote.
    VoteReq {
        /// Candidate's term.
        term: Term,
        /// Candidate's last log index.
        last_index: Index,
        /// Candidate's last log term.
        last_term: Term,
    },
    /// RequestVote answer.
    VoteRep {
        /// Receiver's term.
        term: Term,
        /// Granted.
        granted: bool,
    },
    /// AppendEntries (a heartbeat when `entries` is empty).
    AppendReq {
        /// Leader's term.
        term: Term,
        /// Index just before the first entry.
        prev_index: Index,
        /// Term at `prev_index`.
        prev_term: Term,
        /// Leader's commit index.
        commit: Index,
        /// Entries `prev_index + 1 ..`.
        entries: Vec<WireEntry>,
    },
    /// AppendEntries answer.
    AppendRep {
        /// Receiver's term.
        term: Term,
        /// Success: `index` is the last index known to match the leader's log. Failure:
        /// `index` and `hint_term` are the conflict hint (first index of the conflicting
        /// term, or last index + 1 with `hint_term` 0 when the log is too short).
        success: bool,
        /// See `success`.
        index: Index,
        /// See `success`.
        hint_term: Term,
        /// Receiver's applied index ("done"), for HovercRaft's bounded reply queues.
        applied: Index,
    },
    /// InstallSnapshot, in one message (chunking is the transport's: R2P2 multi-packet).
    SnapReq {
        /// Leader's term.
        term: Term,
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// InstallSnapshot answer: the receiver now matches up to `index`.
    SnapRep {
        /// Receiver's term.
        term: Term,
        /// Matching index after the install.
        index: Index,
    },
    /// HovercRaft RECOVERY_REQ: send me the bodies of these requests (the index is where
    /// the sender saw the metadata; any holder may answer from its log or pending set).
    RecoveryReq {
        /// Sender's term.
        term: Term,
        /// (log index, request id) of each missing request.
        missing: Vec<(Index, ClientId)>,
    },
    /// HovercRaft RECOVERY_REP: the requests found.
    RecoveryRep {
        /// Sender's term.
        term: Term,
        /// The requests.
        found: Vec<Request>,
    },
    /// HovercRaft++ AGG_AE_REQ: an AppendEntries the leader sends once, to the aggregator,
    /// which relays it unchanged to every other member. A follower answers success to the
    /// aggregator ([`crate::aggregator::AGGREGATOR`]) and failure to the leader.
    AggAppendReq {
        /// Leader's term.
        term: Term,
        /// Index just before the first entry.
        prev_index: Index,
        /// Term at `prev_index`.
        prev_term: Term,
        /// Leader's commit index.
        commit: Index,
        /// The index of the leader's first entry of `term` (its no-op): the aggregator
        /// counts only indices from here on (Raft's current-term commit rule).
        term_start: Index,
        /// Entries `prev_index + 1 ..`.
        entries: Vec<WireEntry>,
    },
    /// HovercRaft++ AGG_COMMIT (the reference's AE_REP_GROUP, multicast as the thesis's
    /// commit announcement): the aggregator's per-member progress, sent to every member.
    AggCommit {
        /// The aggregator's term (the leader's it relays for).
        term: Term,
        /// The highest index of `term` a majority matched (followers may commit up to it,
        /// within what they verified themselves; the leader ignores it and counts).
        commit: Index,
        /// Bit `i`: member `i` answered since the previous AGG_COMMIT (check-quorum).
        fresh: u16,
        /// One per member, by id (the leader's slot: what it multicast).
        progress: Vec<Progress>,
    },
    /// HovercRaft++ AGG_PROBE_REQ (the thesis's vote_request to the aggregator): the leader
    /// of `term` asks whether the aggregator is up; a higher term flushes its state.
    AggProbeReq {
        /// Leader's term.
        term: Term,
    },
    /// HovercRaft++ AGG_PROBE_REP: the aggregator serves the leader of `term`.
    AggProbeRep {
        /// The aggregator's term.
        term: Term,
    },
}

impl Message {
    /// The term the message carries.
    pub fn term(&self) -> Term {
        match self {
            Message::PreVoteReq { term, .. }
            | Message::PreVoteRep { term, .. }
            | Message::VoteReq { term, .. }
            | Message::VoteRep { term, .. }
            | Message::AppendReq { term, .. }
            | Message::AppendRep { term, .. }
            | Message::SnapReq { term, .. }
            | Message::SnapRep { term, .. }
            | Message::RecoveryReq { term, .. }
            | Message::RecoveryRep { term, .. }
            | Message::AggAppendReq { term, .. }
            | Message::AggCommit { term, .. }
            | Message::AggProbeReq { term }
            | Message::AggProbeRep { term } => *term,
        }
    }
}

impl Message {
    /// Sent by the HovercRaft++ aggregator itself (its sender id is
    /// [`crate::aggregator::AGGREGATOR`]).
    pub fn from_aggregator(&self) -> bool {
        matches!(
            self,
            Message::AggCommit { .. } | Message::AggProbeRep { .. }
        )
    }
}
