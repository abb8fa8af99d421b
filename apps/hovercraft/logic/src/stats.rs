//! What a replica counts: refused input (never a panic) and protocol events.

/// Counters, all since construction (a restart starts from zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes that were not a message: truncated, trailing bytes, bad fields.
    pub malformed: u64,
    /// Messages whose `msg_type` is unknown.
    pub unknown_type: u64,
    /// Messages from a non-member (or from the receiver's own id): a forged term cannot
    /// come in this way.
    pub unknown_sender: u64,
    /// Messages from an older term, answered with the current term or ignored.
    pub stale_term: u64,
    /// AppendEntries for this term received while leader: two leaders in a term (never
    /// expected; ignored).
    pub split_brain: u64,
    /// AppendEntries that would have truncated a committed entry (never expected; refused).
    pub committed_conflict: u64,
    /// Pre-vote rounds started.
    pub prevotes: u64,
    /// Elections started (after a pre-vote majority).
    pub elections: u64,
    /// Times this replica became leader.
    pub became_leader: u64,
    /// Leaderships given up because a majority was silent for an election timeout.
    pub quorum_lost: u64,
    /// Snapshots sent to followers too far behind.
    pub snapshots_sent: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Client requests refused because this replica is not the leader (vanilla).
    pub redirected: u64,
    /// Client requests already held (pending, backlog, or ordered and not yet applied).
    pub duplicate_requests: u64,
    /// Client requests dropped because the pending set or backlog was full.
    pub pending_full: u64,
    /// Pending requests forgotten unordered after `pending_ticks`.
    pub pending_expired: u64,
    /// Request bodies asked for with RECOVERY_REQ.
    pub recovery_asked: u64,
    /// Request bodies sent in RECOVERY_REP.
    pub recovery_served: u64,
    /// Bodies asked for in RECOVERY_REQ that this replica does not hold (unanswered).
    pub recovery_unknown: u64,
    /// HovercRaft++ leader: switches to replicating through the aggregator.
    pub agg_switches: u64,
    /// HovercRaft++ leader: fallbacks to direct replication.
    pub agg_fallbacks: u64,
    /// HovercRaft++ follower: commits advanced by an AGG_COMMIT.
    pub agg_commits: u64,
}
