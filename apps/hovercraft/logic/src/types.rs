//! The vocabulary shared by every module: node ids, terms, indices, the R2P2 identity of a
//! client request, log entries and snapshots.

use alloc::vec::Vec;

/// A replica's id: `0..n` for a cluster of `n` nodes (0xFF is the HovercRaft++ aggregator,
/// [`crate::aggregator::AGGREGATOR`]).
pub type NodeId = u8;
/// A Raft term. The reference puts a u8 on the wire; ferrix uses a u64 everywhere.
pub type Term = u64;
/// A log index; the first entry has index 1, index 0 is "before the log".
pub type Index = u64;

/// The identity of an R2P2 request: (client IP, client UDP port, rid). Unique per request
/// while it is in flight (spec/r2p2.md "Identity"); HovercRaft keys its pending set by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId {
    /// IPv4 address, host order.
    pub ip: u32,
    /// UDP port.
    pub port: u16,
    /// R2P2 request id.
    pub rid: u16,
}

/// A client request as it reaches a replica: R2P2 REQUEST with policy REPLICATED_ROUTE
/// (`read_only == false`) or REPLICATED_ROUTE_NO_SE (`read_only == true`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// Who asked.
    pub id: ClientId,
    /// No side effects: executed only by the designated replier.
    pub read_only: bool,
    /// The request bytes, opaque to Raft.
    pub body: Vec<u8>,
}

/// What a log entry orders.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Appended by every new leader in its own term, so that it can commit the entries of
    /// earlier terms (Raft section 5.4.2) without waiting for a client.
    Noop,
    /// A client request with the replica chosen to answer it (`replier`, fixed by the leader
    /// before the entry is first sent, never changed).
    Request {
        /// The request.
        req: Request,
        /// The designated replier.
        replier: NodeId,
    },
}

/// One log entry. Its index is implicit (its position in the log).
///
/// The log always holds the full request bytes, in both modes. What differs is the wire: in
/// vanilla Raft an AppendEntries entry carries the body ([`crate::message::WireEntry::body`]
/// is `Some`); in HovercRaft it carries only the metadata and each follower takes the body from
/// its pending set of multicast requests (or fetches it with RECOVERY_REQ) before appending.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: Term,
    /// What it orders.
    pub op: Op,
}

impl Entry {
    /// The client identity, for a request entry.
    pub fn client(&self) -> Option<ClientId> {
        match &self.op {
            Op::Noop => None,
            Op::Request { req, .. } => Some(req.id),
        }
    }
}

/// A snapshot of the application's state machine after applying every entry up to `index`
/// (the default, index 0, stands for "no snapshot").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The last index the state covers.
    pub index: Index,
    /// The term of that entry.
    pub term: Term,
    /// The application's serialized state (opaque to Raft).
    pub data: Vec<u8>,
}
