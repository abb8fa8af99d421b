//! The control plane of `p4/aggregator.p4`: from a HovercRaft cluster's members and the
//! aggregator's address, the table entries and the multicast group that make the switch
//! decide as `ferrix_raft::aggregator::Aggregator` (see the program's header comment and
//! p4/README.md).
//!
//! Member `i` (its Raft id) is the key of `members` (the address its messages must come
//! from, the port its AGG_PROBE_REP leaves on) and the rid of its replica in the multicast
//! group, which lists the members in id order: a multicast leaves in the order the Rust
//! aggregator's `Dest::All` / `Dest::AllBut` name them.

use super::{ControlFile, DefaultAction, MulticastGroup, Replica, TableEntry};
use crate::switch::Switch;
use std::collections::BTreeMap;
use std::net::SocketAddrV4;

/// Largest cluster (the program's `MAX_NODES`: its registers and the unrolled majority).
pub const MAX_NODES: usize = 9;
/// Entries of an AppendEntries the switch checks (the program's `MAX_ENTRIES`).
pub const MAX_ENTRIES: usize = 30;
/// Indices of the program's `stats` counter: `AggStats`' fields, then the transport's drops.
pub const COUNTERS: [(&str, usize); 9] = [
    ("malformed", 0),
    ("unexpected", 1),
    ("stale", 2),
    ("flushes", 3),
    ("relayed", 4),
    ("commits", 5),
    ("not_agg", 6),
    ("not_raft", 7),
    ("spoofed", 8),
];

/// One cluster member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its Raft address (messages to and from it).
    pub addr: SocketAddrV4,
    pub mac: [u8; 6],
    /// The switch port it is behind.
    pub egress_port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggConfig {
    /// The aggregator's address: members send to it, it sends from it.
    pub addr: SocketAddrV4,
    pub mac: [u8; 6],
    /// Members in id order (id = position).
    pub members: Vec<Member>,
    /// The multicast group of the members (non-zero).
    pub group: u16,
}

/// Why a configuration cannot be installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    #[error("{0} members (1..={MAX_NODES})")]
    BadSize(usize),
    #[error("multicast group 0 (it means none)")]
    NoGroup,
    #[error("port {0} above 510")]
    BadPort(u16),
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn params(p: &[(&str, String)]) -> BTreeMap<String, String> {
    p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

impl AggConfig {
    /// The control file for this configuration.
    pub fn control_file(&self) -> Result<ControlFile, AggError> {
        let n = self.members.len();
        if !(1..=MAX_NODES).contains(&n) {
            return Err(AggError::BadSize(n));
        }
        if self.group == 0 {
            return Err(AggError::NoGroup);
        }
        if let Some(m) = self.members.iter().find(|m| m.egress_port > 510) {
            return Err(AggError::BadPort(m.egress_port));
        }
        let mut cf = ControlFile::default();
        cf.default_actions.push(DefaultAction {
            table: "AggIngress.config".into(),
            action: "AggIngress.set_config".into(),
            params: params(&[
                ("nodes", n.to_string()),
                ("agg_ip", self.addr.ip().to_string()),
                ("agg_port", self.addr.port().to_string()),
                ("agg_mac", mac(self.mac)),
                ("mgrp", self.group.to_string()),
            ]),
        });
        let mut replicas = vec![];
        for (i, m) in self.members.iter().enumerate() {
            cf.table_entries.push(TableEntry {
                table: "AggIngress.members".into(),
                matches: vec![i.to_string()],
                action: "AggIngress.set_member".into(),
                params: params(&[
                    ("ip", m.addr.ip().to_string()),
                    ("port", m.addr.port().to_string()),
                    ("mac", mac(m.mac)),
                    ("egress", m.egress_port.to_string()),
                ]),
                priority: 0,
            });
            cf.table_entries.push(TableEntry {
                table: "AggEgress.replicas".into(),
                matches: vec![i.to_string()],
                action: "AggEgress.set_replica".into(),
                params: params(&[
                    ("ip", m.addr.ip().to_string()),
                    ("port", m.addr.port().to_string()),
                    ("mac", mac(m.mac)),
                ]),
                priority: 0,
            });
            replicas.push(Replica {
                port: m.egress_port,
                rid: i as u16,
            });
        }
        cf.multicast_groups.push(MulticastGroup {
            group: self.group,
            replicas,
        });
        Ok(cf)
    }
}

/// The aggregator program's source (p4/aggregator.p4).
pub const SOURCE: &str = include_str!("../../../../p4/aggregator.p4");

/// A switch running p4/aggregator.p4 with `cfg` installed.
pub fn switch(cfg: &AggConfig, seed: u64) -> Result<Switch, String> {
    let mut sw = Switch::load(SOURCE, seed).map_err(|e| format!("aggregator.p4:{e}"))?;
    let cf = cfg.control_file().map_err(|e| e.to_string())?;
    cf.install(&mut sw).map_err(|e| e.to_string())?;
    Ok(sw)
}

/// A `stats` counter by name (packets).
pub fn stat(sw: &Switch, name: &str) -> u64 {
    COUNTERS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|&(_, i)| sw.counter_read("AggIngress.stats", i).ok())
        .map_or(0, |(p, _)| p)
}

/// The switch's view of the aggregator: (term, leader, term_start, commit, owed, fresh) and
/// per member (matched, applied), for comparing with the Rust aggregator's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggState {
    pub term: u64,
    pub leader: Option<u8>,
    pub commit: u64,
    pub progress: Vec<(u64, u64)>,
}

/// Reads the registers of the first `nodes` members.
pub fn state(sw: &Switch, nodes: usize) -> AggState {
    let r = |name: &str, i: usize| sw.register_read(name, i).unwrap_or(u128::MAX) as u64;
    AggState {
        term: r("AggIngress.term_r", 0),
        leader: (r("AggIngress.has_leader_r", 0) == 1).then(|| r("AggIngress.leader_r", 0) as u8),
        commit: r("AggIngress.commit_r", 0),
        progress: (0..nodes)
            .map(|i| (r("AggIngress.matched_r", i), r("AggIngress.applied_r", i)))
            .collect(),
    }
}
