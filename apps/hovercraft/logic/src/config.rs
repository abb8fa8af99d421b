//! The construction-time configuration of a replica: fixed membership, timers (in ticks),
//! mode (vanilla Raft or HovercRaft), and the replier policy.

use core::fmt;

use crate::types::NodeId;

/// The cluster sizes a replica accepts (odd, 3 to 9: the Tofino aggregator's limit and the
/// sizes the thesis evaluates).
pub const CLUSTER_SIZES: [u8; 4] = [3, 5, 7, 9];

/// Entries per AppendEntries (the reference fixed 30).
pub const AE_MAX_ENTRIES: usize = 30;

/// The bounded reply queue of JBSQ (the reference used 32 for JBSQ, 64 for random).
pub const REPLY_BOUND_JBSQ: u32 = 32;

/// How client requests are replicated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Vanilla Raft: clients send to the leader, AppendEntries carries the request bytes, the
    /// leader replies.
    Vanilla,
    /// HovercRaft: clients multicast to every replica, AppendEntries carries only metadata,
    /// followers keep the requests in a pending set, replies are load balanced.
    Hover,
}

/// How the leader picks the designated replier (HovercRaft; vanilla always picks itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplierPolicy {
    /// The next eligible node in turn.
    RoundRobin,
    /// Join-Bounded-Shortest-Queue: the eligible node with the fewest assigned but not yet
    /// applied entries (ties broken in turn).
    Jbsq,
    /// A uniformly random eligible node (the thesis's RANDOM, 12.3.6 and figure 12.10),
    /// drawn from the seeded generator.
    Random,
}

/// A replica's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica.
    pub id: NodeId,
    /// Cluster size (one of [`CLUSTER_SIZES`]); members are `0..nodes`.
    pub nodes: u8,
    /// Vanilla or HovercRaft.
    pub mode: Mode,
    /// Election timeout: uniform in `[election_ticks, 2 * election_ticks)` ticks, drawn from
    /// the seeded generator at every reset.
    pub election_ticks: u32,
    /// The leader sends AppendEntries (a heartbeat if empty) to every follower this often.
    pub heartbeat_ticks: u32,
    /// Entries per AppendEntries.
    pub max_entries: usize,
    /// HovercRaft: the replier policy.
    pub replier: ReplierPolicy,
    /// HovercRaft: at most this many assigned but not applied entries per replier; the
    /// leader stops announcing when no node is under it.
    pub reply_bound: u32,
    /// HovercRaft: the most requests held unordered (pending set, leader backlog); beyond,
    /// new ones are dropped and counted.
    pub max_pending: usize,
    /// HovercRaft: a pending request not ordered within this many ticks is forgotten
    /// (the thesis's garbage collection; it will be fetched by RECOVERY_REQ if needed).
    pub pending_ticks: u32,
    /// HovercRaft: RECOVERY_REQ for the same request at most once per this many ticks.
    pub recovery_ticks: u32,
    /// Seed of the election-timeout generator (give every node its own).
    pub seed: u64,
    /// The largest AppendEntries or RECOVERY_REP to build, in encoded bytes
    /// ([`crate::wire::encode`]): entries (or recovered requests) stop before the one that
    /// would pass it, but one always goes, so a transport must carry a message of one entry
    /// whatever this is. A guest that sends each message in one datagram sets it to the
    /// datagram's room and bounds request bodies; `usize::MAX` (the default) is no limit.
    pub max_message_bytes: usize,
    /// HovercRaft++ (thesis 12.4): the leader replicates through the aggregator
    /// ([`crate::aggregator`], peer id [`crate::aggregator::AGGREGATOR`]) once it answered a
    /// probe, and falls back to direct AppendEntries when it goes silent (see
    /// [`crate::plus`]). Off by default; meant for [`Mode::Hover`] (vanilla works alike).
    pub aggregator: bool,
}

impl Config {
    /// A configuration with the defaults: election 10 ticks, heartbeat 2, 30 entries per
    /// AppendEntries, JBSQ with a bound of 32.
    pub fn new(id: NodeId, nodes: u8, mode: Mode) -> Config {
        Config {
            id,
            nodes,
            mode,
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_entries: AE_MAX_ENTRIES,
            replier: ReplierPolicy::Jbsq,
            reply_bound: REPLY_BOUND_JBSQ,
            max_pending: 4096,
            pending_ticks: 1000,
            recovery_ticks: 4,
            seed: u64::from(id),
            max_message_bytes: usize::MAX,
            aggregator: false,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !CLUSTER_SIZES.contains(&self.nodes) {
            return Err(ConfigError::ClusterSize(self.nodes));
        }
        if self.id >= self.nodes {
            return Err(ConfigError::Id(self.id));
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::Timers);
        }
        if self.max_entries == 0 || self.reply_bound == 0 {
            return Err(ConfigError::Zero);
        }
        Ok(())
    }

    /// Votes (or matching logs) needed: a strict majority.
    pub fn quorum(&self) -> usize {
        usize::from(self.nodes) / 2 + 1
    }
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Not 3, 5, 7 or 9 nodes.
    ClusterSize(u8),
    /// The id is not below the cluster size.
    Id(NodeId),
    /// Heartbeat is zero or not shorter than the election timeout.
    Timers,
    /// `max_entries` or `reply_bound` is zero.
    Zero,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ClusterSize(n) => {
                write!(f, "cluster of {n} nodes: must be 3, 5, 7 or 9")
            }
            ConfigError::Id(id) => write!(f, "node id {id} is not a member"),
            ConfigError::Timers => {
                write!(
                    f,
                    "heartbeat must be non-zero and shorter than the election timeout"
                )
            }
            ConfigError::Zero => write!(f, "max_entries and reply_bound must be non-zero"),
        }
    }
}

impl core::error::Error for ConfigError {}
