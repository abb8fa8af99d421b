//! The replica's arguments (kernel command line, `key=value`). Every value is checked; the
//! first bad one is reported in one line and the VM exits 1.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use ferrix::cmdline::{arg_port as port, arg_value as value};
use ferrix_raft::{Config, Mode, NodeId, ReplierPolicy};

/// The reference's multicast group for HovercRaft clients.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 123, 123, 123);

/// What the replica was asked to do.
pub struct Settings {
    /// The Raft core's configuration.
    pub raft: Config,
    /// Every member's unicast address, by id (this replica's included).
    pub peers: Vec<Ipv4Addr>,
    /// Where clients send R2P2 requests (to `group` in HovercRaft mode, to a replica in
    /// vanilla mode).
    pub port: u16,
    /// Where replicas exchange Raft messages.
    pub raft_port: u16,
    /// HovercRaft: the group clients multicast to.
    pub group: Ipv4Addr,
    /// One Raft tick, ns.
    pub tick_ns: u64,
    /// Largest request body accepted (the rest get DROP): a request must fit one datagram,
    /// and so must an AppendEntries (vanilla) or RECOVERY_REP carrying it.
    pub max_body: usize,
    /// Most log entries held (no compaction yet): beyond, requests get DROP.
    pub max_log: u64,
    /// Item memory of the store, MiB.
    pub mem_mb: usize,
    /// Where the replier sends FEEDBACK after each reply (a router doing flow control for
    /// the group: apps/router `group=`).
    pub router: Option<core::net::SocketAddrV4>,
    /// HovercRaft++: the aggregator's address (`hover-agg`, port `raft_port`).
    pub aggregator: Option<Ipv4Addr>,
    /// Exit 0 after this many requests were applied.
    pub exit_after: Option<u64>,
    /// Exit 0 after this long without a client request, once one came.
    pub idle_exit_ns: Option<u64>,
}

const MS: u64 = 1_000_000;
/// Room for one Raft message: a 1500-byte MTU less the IPv4, UDP and R2P2 headers.
pub const MAX_MESSAGE: usize = 1500 - 20 - 8 - 8;

/// Parses the app's arguments (`ferrix::args()`).
pub fn parse<'a>(args: impl Iterator<Item = &'a str>) -> Result<Settings, String> {
    let mut id: Option<NodeId> = None;
    let mut mode = Mode::Hover;
    let mut peers: Vec<Ipv4Addr> = Vec::new();
    let mut replier = ReplierPolicy::Jbsq;
    let mut reply_bound: Option<u32> = None;
    let mut election_ticks = 150u32;
    let mut heartbeat_ticks = 20u32;
    let mut seed: Option<u64> = None;
    let mut s = Settings {
        raft: Config::new(0, 3, Mode::Hover),
        peers: Vec::new(),
        port: ferrix_net::r2p2::DEFAULT_PORT,
        raft_port: 9100,
        group: DEFAULT_GROUP,
        tick_ns: MS,
        max_body: 1024,
        max_log: 200_000,
        mem_mb: 64,
        router: None,
        aggregator: None,
        exit_after: None,
        idle_exit_ns: None,
    };
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("unknown argument {a:?} (want key=value)"));
        };
        match k {
            "id" => id = Some(value(k, v)?),
            "peers" => {
                peers = v
                    .split(',')
                    .map(|p| value::<Ipv4Addr>(k, p))
                    .collect::<Result<_, _>>()?;
            }
            "mode" => {
                mode = match v {
                    "hover" | "hovercraft" => Mode::Hover,
                    "vanilla" | "raft" => Mode::Vanilla,
                    _ => return Err(format!("bad value for mode: {v:?} (hover or vanilla)")),
                }
            }
            "replier" => {
                replier = match v {
                    "jbsq" => ReplierPolicy::Jbsq,
                    "rr" => ReplierPolicy::RoundRobin,
                    _ => return Err(format!("bad value for replier: {v:?} (jbsq or rr)")),
                }
            }
            "reply-bound" => reply_bound = Some(value(k, v)?),
            "port" => s.port = port(k, v)?,
            "raft-port" => s.raft_port = port(k, v)?,
            "group" => {
                s.group = value(k, v)?;
                if !s.group.is_multicast() {
                    return Err(format!(
                        "bad value for group: {v} is not a multicast address"
                    ));
                }
            }
            "tick-us" => match value::<u64>(k, v)? {
                0 => return Err(format!("bad value for {k}: 0")),
                us => s.tick_ns = us.saturating_mul(1000),
            },
            "election-ticks" => election_ticks = value(k, v)?,
            "heartbeat-ticks" => heartbeat_ticks = value(k, v)?,
            "max-body" => s.max_body = value(k, v)?,
            "max-log" => s.max_log = value(k, v)?,
            "mem-mb" => s.mem_mb = value(k, v)?,
            "seed" => seed = Some(value(k, v)?),
            "router" => s.router = Some(value(k, v)?),
            "aggregator" => s.aggregator = Some(value(k, v)?),
            "exit-after" => s.exit_after = Some(value(k, v)?),
            "idle-exit-ms" => s.idle_exit_ns = Some(value::<u64>(k, v)?.saturating_mul(MS)),
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    let id = id.ok_or("id= is missing (this replica's index in peers=)")?;
    let n = u8::try_from(peers.len()).map_err(|_| "peers=: too many replicas")?;
    let mut raft = Config::new(id, n, mode);
    raft.replier = replier;
    if let Some(b) = reply_bound {
        raft.reply_bound = b;
    }
    raft.election_ticks = election_ticks;
    raft.heartbeat_ticks = heartbeat_ticks;
    raft.seed = seed.unwrap_or(0x4856_5243 ^ u64::from(id));
    raft.max_message_bytes = MAX_MESSAGE;
    raft.aggregator = s.aggregator.is_some();
    if let Some(a) = s.aggregator {
        if mode != Mode::Hover {
            return Err("aggregator= needs mode=hover (HovercRaft++)".into());
        }
        if peers.contains(&a) {
            return Err(format!("aggregator={a} is a member in peers="));
        }
    }
    // Pending requests the leader has not ordered are forgotten after about 2 s.
    raft.pending_ticks = u32::try_from(2_000 * MS / s.tick_ns)
        .unwrap_or(u32::MAX)
        .max(10);
    raft.validate()
        .map_err(|e| format!("peers= and id=: {e}"))?;
    for (i, p) in peers.iter().enumerate() {
        if peers[..i].contains(p) {
            return Err(format!("peers=: {p} is listed twice"));
        }
    }
    // The largest request must fit a RECOVERY_REP, and a vanilla AppendEntries, of one.
    let room = MAX_MESSAGE - ferrix_raft::wire::APPEND_HEADER - ferrix_raft::wire::ENTRY_HEADER - 4;
    if s.max_body == 0 || s.max_body > room {
        return Err(format!("bad value for max-body: 1..={room} (one datagram)"));
    }
    if s.port == s.raft_port {
        return Err(format!("port and raft-port must differ (both {})", s.port));
    }
    if s.mem_mb == 0 {
        return Err("bad value for mem-mb: 0".into());
    }
    s.raft = raft;
    s.peers = peers;
    Ok(s)
}
