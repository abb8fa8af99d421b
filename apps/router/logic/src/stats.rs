//! The router's counters: what it received, what it did with it, and every reason it dropped
//! something. Nothing is dropped without a count.

use core::fmt;

/// Why a REQ0 was refused (the client gets DROP for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No server accepts new requests.
    NoServer,
    /// JBSQ: every server at its bound and the central queue full.
    QueueFull,
    /// It waited in the central queue longer than the queue timeout.
    QueueTimeout,
    /// SVEN's admission control.
    Sven,
    /// The replicated group has its bound of requests in the system.
    GroupFull,
}

/// Counters since boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Datagrams handed to the router.
    pub rx: u64,
    /// REQ0s received.
    pub req0: u64,
    /// FEEDBACKs received (heartbeats included).
    pub feedback: u64,
    /// FEEDBACKs that completed no request (heartbeats, announcements).
    pub heartbeats: u64,
    /// REQ0s sent to a server (directly or from the central queue).
    pub forwarded: u64,
    /// REQ0s that waited in the central queue.
    pub queued: u64,
    /// Refusals by reason (each answered with DROP).
    pub refused_no_server: u64,
    pub refused_queue_full: u64,
    pub refused_queue_timeout: u64,
    pub refused_sven: u64,
    pub refused_group_full: u64,
    /// Not R2P2: too short, bad magic, bad `header_size`.
    pub malformed: u64,
    /// FEEDBACK bodies shorter than the reference's.
    pub malformed_feedback: u64,
    /// REQUEST packets other than REQ0 (they go straight to servers, never to the router).
    pub not_req0: u64,
    /// Types the router does not take (RESPONSE, ACK, DROP, RAFT_*, unassigned).
    pub unexpected_type: u64,
    /// REQ0s whose policy the router does not serve (REPLICATED_*, unassigned): balanced by
    /// the default policy.
    pub policy_fallback: u64,
    /// FEEDBACKs naming no outstanding request (duplicates, late after a reclaim or expiry,
    /// requests that did not pass through this router, e.g. before a restart).
    pub feedback_unmatched: u64,
    /// FEEDBACKs refused: table full or sender outside the server network.
    pub feedback_refused: u64,
    /// Slots freed because a served count revealed lost FEEDBACK.
    pub slots_reclaimed: u64,
    /// Slots freed by the slot timeout.
    pub slots_expired: u64,
    /// Entries dropped from tracking by unbounded policies over `max_tracked`.
    pub untracked: u64,
    /// Servers that joined / were removed for silence.
    pub servers_joined: u64,
    pub servers_removed: u64,
    /// Outstanding requests of servers removed for silence.
    pub lost_with_server: u64,
}

impl RouterStats {
    pub(crate) fn count_refusal(&mut self, r: Refusal) {
        match r {
            Refusal::NoServer => self.refused_no_server += 1,
            Refusal::QueueFull => self.refused_queue_full += 1,
            Refusal::QueueTimeout => self.refused_queue_timeout += 1,
            Refusal::Sven => self.refused_sven += 1,
            Refusal::GroupFull => self.refused_group_full += 1,
        }
    }

    /// All refusals.
    pub fn refused(&self) -> u64 {
        self.refused_no_server
            + self.refused_queue_full
            + self.refused_queue_timeout
            + self.refused_sven
            + self.refused_group_full
    }
}

impl fmt::Display for RouterStats {
    /// One line: the traffic, then each non-zero drop or anomaly by name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx {} req0 {} feedback {} forwarded {} queued {} refused {}",
            self.rx,
            self.req0,
            self.feedback,
            self.forwarded,
            self.queued,
            self.refused()
        )?;
        for (name, v) in [
            ("no_server", self.refused_no_server),
            ("queue_full", self.refused_queue_full),
            ("queue_timeout", self.refused_queue_timeout),
            ("sven", self.refused_sven),
            ("group_full", self.refused_group_full),
            ("malformed", self.malformed),
            ("malformed_feedback", self.malformed_feedback),
            ("not_req0", self.not_req0),
            ("unexpected_type", self.unexpected_type),
            ("policy_fallback", self.policy_fallback),
            ("feedback_unmatched", self.feedback_unmatched),
            ("feedback_refused", self.feedback_refused),
            ("slots_reclaimed", self.slots_reclaimed),
            ("slots_expired", self.slots_expired),
            ("untracked", self.untracked),
            ("servers_joined", self.servers_joined),
            ("servers_removed", self.servers_removed),
            ("lost_with_server", self.lost_with_server),
        ] {
            if v != 0 {
                write!(f, " {name} {v}")?;
            }
        }
        Ok(())
    }
}
