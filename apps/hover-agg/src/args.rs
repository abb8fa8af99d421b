//! The aggregator's arguments (kernel command line, `key=value`). Every value is checked; the
//! first bad one is reported in one line and the VM exits 1.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use ferrix::cmdline::{arg_port as port, arg_value as value};

/// What the aggregator was asked to do.
pub struct Settings {
    /// Every member's unicast address, by id (the replicas' `peers=`).
    pub peers: Vec<Ipv4Addr>,
    /// The multicast group every member joined (the replicas' `group=`): relayed
    /// AppendEntries and AGG_COMMIT go there, to `raft_port`.
    pub group: Ipv4Addr,
    /// The members' Raft port (and the aggregator's).
    pub raft_port: u16,
    /// Exit 0 after this long without a member's message, once one came.
    pub idle_exit_ns: Option<u64>,
}

const MS: u64 = 1_000_000;

/// Parses the app's arguments (`ferrix::args()`).
pub fn parse<'a>(args: impl Iterator<Item = &'a str>) -> Result<Settings, String> {
    let mut s = Settings {
        peers: Vec::new(),
        group: Ipv4Addr::new(224, 123, 123, 123),
        raft_port: 9100,
        idle_exit_ns: None,
    };
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("unknown argument {a:?} (want key=value)"));
        };
        match k {
            "peers" => {
                s.peers = v
                    .split(',')
                    .map(|p| value::<Ipv4Addr>(k, p))
                    .collect::<Result<_, _>>()?;
            }
            "group" => {
                s.group = value(k, v)?;
                if !s.group.is_multicast() {
                    return Err(format!(
                        "bad value for group: {v} is not a multicast address"
                    ));
                }
            }
            "raft-port" => s.raft_port = port(k, v)?,
            "idle-exit-ms" => s.idle_exit_ns = Some(value::<u64>(k, v)?.saturating_mul(MS)),
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    let sizes = ferrix_raft::config::CLUSTER_SIZES;
    if !u8::try_from(s.peers.len()).is_ok_and(|n| sizes.contains(&n)) {
        return Err(format!(
            "peers=: {} members; a cluster has {:?}",
            s.peers.len(),
            sizes
        ));
    }
    for (i, p) in s.peers.iter().enumerate() {
        if s.peers[..i].contains(p) {
            return Err(format!("peers=: {p} is listed twice"));
        }
    }
    Ok(s)
}
