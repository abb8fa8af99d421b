//! Flow control in front of a replicated group (HovercRaft, thesis chapter 12): REQ0s with
//! a REPLICATED policy go to one address, the group's (an IP multicast group: every replica
//! receives each request), as long as fewer than `max_in_system` of them are in the system;
//! beyond, the client gets DROP. A request leaves the system when the replica that answered
//! it sends FEEDBACK naming it (client and rid), or after the router's slot timeout (a lost
//! request or a lost FEEDBACK, so a slot cannot leak for ever).
//!
//! The group is not a member of the server table: replicas do not join by FEEDBACK. While a
//! group is configured, a non-heartbeat FEEDBACK naming no request of the group or of a
//! server is counted as unmatched and joins nobody, so load-balanced servers join by
//! heartbeat (`apps/synthetic` and `r2p2-server` send one at start).
//!
//! Idempotence: a request is keyed by (client, rid); a second REQ0 with a key already in the
//! system is forwarded again without taking a second slot, and a duplicated FEEDBACK finds no
//! key the second time.

use alloc::collections::BTreeMap;
use core::net::SocketAddrV4;

/// Where replicated requests go and how many may be in the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group's address (multicast group and port, or one replica in vanilla Raft).
    pub addr: SocketAddrV4,
    /// Requests admitted and not yet answered, at most.
    pub max_in_system: usize,
}

/// What the group's flow control counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Requests forwarded to the group (first time for their key).
    pub admitted: u64,
    /// REQ0s whose key was in the system already (forwarded again, no new slot).
    pub repeated: u64,
    /// Requests refused because `max_in_system` were in the system.
    pub refused: u64,
    /// Requests answered (a FEEDBACK named them).
    pub completed: u64,
    /// Requests that left by the slot timeout.
    pub expired: u64,
}

/// The requests in the system.
#[derive(Clone, Debug)]
pub struct Group {
    cfg: GroupConfig,
    in_system: BTreeMap<(SocketAddrV4, u16), u64>,
    stats: GroupStats,
}

impl Group {
    /// Flow control for `cfg`, empty.
    pub fn new(cfg: GroupConfig) -> Group {
        Group {
            cfg,
            in_system: BTreeMap::new(),
            stats: GroupStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &GroupStats {
        &self.stats
    }

    /// Requests in the system now.
    pub fn in_system(&self) -> usize {
        self.in_system.len()
    }

    /// Admits the request (true: forward it to the group) or refuses it (false: DROP).
    pub fn admit(&mut self, client: SocketAddrV4, rid: u16, now_ns: u64) -> bool {
        if self.in_system.contains_key(&(client, rid)) {
            self.stats.repeated += 1;
            return true;
        }
        if self.in_system.len() >= self.cfg.max_in_system {
            self.stats.refused += 1;
            return false;
        }
        self.in_system.insert((client, rid), now_ns);
        self.stats.admitted += 1;
        true
    }

    /// A FEEDBACK named (client, rid): true if that request was in the system (it leaves).
    pub fn complete(&mut self, client: SocketAddrV4, rid: u16) -> bool {
        let hit = self.in_system.remove(&(client, rid)).is_some();
        if hit {
            self.stats.completed += 1;
        }
        hit
    }

    /// Requests admitted before `deadline_ns` leave the system; returns how many.
    pub fn expire(&mut self, deadline_ns: u64) -> usize {
        let before = self.in_system.len();
        self.in_system.retain(|_, at| *at >= deadline_ns);
        let n = before - self.in_system.len();
        self.stats.expired += n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn c(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port)
    }

    fn group(max: usize) -> Group {
        Group::new(GroupConfig {
            addr: SocketAddrV4::new(Ipv4Addr::new(224, 1, 2, 3), 8000),
            max_in_system: max,
        })
    }

    #[test]
    fn admits_below_the_threshold_and_refuses_above() {
        let mut g = group(2);
        assert!(g.admit(c(1), 1, 0));
        assert!(g.admit(c(1), 2, 0));
        assert!(!g.admit(c(2), 1, 0));
        assert_eq!(g.in_system(), 2);
        assert!(g.complete(c(1), 1));
        assert!(g.admit(c(2), 1, 0));
        assert_eq!(
            *g.stats(),
            GroupStats {
                admitted: 3,
                refused: 1,
                completed: 1,
                ..GroupStats::default()
            }
        );
    }

    #[test]
    fn repeats_and_duplicate_feedback_take_and_free_one_slot() {
        let mut g = group(1);
        assert!(g.admit(c(1), 7, 0));
        assert!(g.admit(c(1), 7, 5), "the same request again");
        assert!(g.complete(c(1), 7));
        assert!(!g.complete(c(1), 7), "a duplicated FEEDBACK");
        assert_eq!(g.in_system(), 0);
        assert_eq!(g.stats().repeated, 1);
    }

    #[test]
    fn lost_answers_expire() {
        let mut g = group(4);
        for rid in 0..4 {
            g.admit(c(1), rid, u64::from(rid) * 10);
        }
        assert_eq!(g.expire(20), 2);
        assert_eq!(g.in_system(), 2);
        assert!(g.admit(c(1), 9, 40));
        assert_eq!(g.stats().expired, 2);
    }
}
