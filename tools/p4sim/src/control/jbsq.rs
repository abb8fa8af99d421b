//! The control plane of `p4/jbsq.p4`: from the router's addresses and a server set, the
//! table entries and registers that make the switch decide as `ferrix-router` does with
//! `Balance::Jbsq(n)` (see the program's header comment and p4/README.md).
//!
//! Servers get indices in ascending (IP, port) order: FIXED_ROUTE's master is index order's
//! first server with a bound above 0, which is the Rust router's "live server with the
//! lowest address" when its servers joined in that order.

use super::{ControlFile, DefaultAction, MulticastGroup, RegisterValue, Replica, TableEntry};
use crate::switch::Switch;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Servers compared in one pass (the program's `GROUP`).
pub const GROUP: usize = 4;
/// Register size (the program's `MAX_SERVERS`).
pub const MAX_SERVERS: usize = 64;
/// Indices of the program's `stats` counter.
pub const COUNTERS: [(&str, usize); 15] = [
    ("rx", 0),
    ("req0", 1),
    ("feedback", 2),
    ("heartbeats", 3),
    ("forwarded", 4),
    ("malformed", 5),
    ("malformed_feedback", 6),
    ("not_req0", 7),
    ("unexpected_type", 8),
    ("policy_fallback", 9),
    ("feedback_unknown", 10),
    ("recirculated", 11),
    ("parked_sweeps", 12),
    ("not_router", 13),
    ("no_server", 14),
];

/// One server: where its REQ0s go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    pub addr: SocketAddrV4,
    pub mac: [u8; 6],
    pub egress_port: u16,
}

/// A route for traffic not addressed to the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub net: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    pub port: u16,
}

/// A host on one of the switch's ports (client, server, anything on the segment): bridged to
/// by its MAC, in the flood group, and routed to by its IP as a /32 for traffic sent to the
/// router's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub port: u16,
}

/// The program's flood group (`FLOOD_GROUP`).
pub const FLOOD_GROUP: u16 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JbsqConfig {
    /// The router's (IP, UDP port)s for REQ0 and FEEDBACK (e.g. :8000 and :9000).
    pub router: Vec<SocketAddrV4>,
    pub router_mac: [u8; 6],
    pub servers: Vec<Server>,
    /// JBSQ's n for servers that have not announced one.
    pub n: u32,
    /// The port recirculated packets leave on.
    pub recirc_port: u16,
    pub routes: Vec<Route>,
    /// The hosts on the switch's ports (none: the switch only routes, as in the differential
    /// tests). The router's IPs are answered for in ARP whenever there are hosts.
    pub hosts: Vec<Host>,
}

/// Why a configuration cannot be installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JbsqError {
    #[error("{0} servers (at most {MAX_SERVERS})")]
    TooManyServers(usize),
    #[error("bound {0} (1..=1024)")]
    BadBound(u32),
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

impl JbsqConfig {
    /// The servers in index order.
    pub fn ordered(&self) -> Vec<Server> {
        let mut s = self.servers.clone();
        s.sort_by_key(|s| (s.addr.ip().octets(), s.addr.port()));
        s
    }

    /// The control file for this configuration.
    pub fn control_file(&self) -> Result<ControlFile, JbsqError> {
        let servers = self.ordered();
        if servers.len() > MAX_SERVERS {
            return Err(JbsqError::TooManyServers(servers.len()));
        }
        if !(1..=1024).contains(&self.n) {
            return Err(JbsqError::BadBound(self.n));
        }
        for p in servers
            .iter()
            .map(|s| s.egress_port)
            .chain([self.recirc_port])
            .chain(self.routes.iter().map(|r| r.port))
            .chain(self.hosts.iter().map(|h| h.port))
        {
            if p > 510 {
                return Err(JbsqError::BadPort(p));
            }
        }
        let mut cf = ControlFile::default();
        let k = servers.len();
        cf.default_actions.push(DefaultAction {
            table: "RouterIngress.config".into(),
            action: "RouterIngress.set_config".into(),
            params: params(&[
                ("k", k.to_string()),
                ("windows", k.div_ceil(GROUP).to_string()),
                ("recirc_port", self.recirc_port.to_string()),
                ("router_mac", mac(self.router_mac)),
            ]),
        });
        for a in &self.router {
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.router_addr".into(),
                matches: vec![a.ip().to_string(), a.port().to_string()],
                action: "RouterIngress.to_router".into(),
                ..Default::default()
            });
        }
        // type, flags, policy -> action (ternary, ternary, range), higher priority first.
        let class = [
            ("0", "0x80&&&0x80", "0..0", "req0_lb", 30),
            ("0", "0x80&&&0x80", "1..1", "req0_fixed", 30),
            ("0", "0x80&&&0x80", "2..15", "req0_fallback", 30),
            ("0", "_", "_", "not_req0", 10),
            ("2", "_", "_", "feedback", 30),
        ];
        for (t, f, p, a, prio) in class {
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.classify".into(),
                matches: vec![format!("{t}&&&0xf"), f.into(), p.into()],
                action: format!("RouterIngress.{a}"),
                params: BTreeMap::new(),
                priority: prio,
            });
        }
        for (i, s) in servers.iter().enumerate() {
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.server_addr".into(),
                matches: vec![i.to_string()],
                action: "RouterIngress.set_server".into(),
                params: params(&[
                    ("ip", s.addr.ip().to_string()),
                    ("port", s.addr.port().to_string()),
                    ("mac", mac(s.mac)),
                    ("egress", s.egress_port.to_string()),
                ]),
                priority: 0,
            });
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.server_index".into(),
                matches: vec![s.addr.ip().to_string(), s.addr.port().to_string()],
                action: "RouterIngress.set_index".into(),
                params: params(&[("index", i.to_string())]),
                priority: 0,
            });
            cf.registers.push(RegisterValue {
                register: "RouterIngress.bound".into(),
                index: i,
                value: self.n.to_string(),
            });
        }
        for r in &self.routes {
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.ipv4_lpm".into(),
                matches: vec![format!("{}/{}", r.net, r.prefix)],
                action: "RouterIngress.set_nhop".into(),
                params: params(&[("dmac", mac(r.mac)), ("port", r.port.to_string())]),
                priority: 0,
            });
        }
        self.host_entries(&mut cf);
        Ok(cf)
    }

    /// ARP for the router's addresses, bridging, flooding and /32 routes for the hosts.
    fn host_entries(&self, cf: &mut ControlFile) {
        if self.hosts.is_empty() {
            return;
        }
        let mut router_ips: Vec<Ipv4Addr> = self.router.iter().map(|a| *a.ip()).collect();
        router_ips.sort();
        router_ips.dedup();
        for ip in router_ips {
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.arp_proxy".into(),
                matches: vec![ip.to_string()],
                action: "RouterIngress.arp_reply".into(),
                params: params(&[("mac", mac(self.router_mac))]),
                priority: 0,
            });
        }
        let mut ports: Vec<u16> = Vec::new();
        for h in &self.hosts {
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.l2_fwd".into(),
                matches: vec![mac(h.mac)],
                action: "RouterIngress.l2_forward".into(),
                params: params(&[("port", h.port.to_string())]),
                priority: 0,
            });
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.ipv4_lpm".into(),
                matches: vec![format!("{}/32", h.ip)],
                action: "RouterIngress.set_nhop".into(),
                params: params(&[("dmac", mac(h.mac)), ("port", h.port.to_string())]),
                priority: 0,
            });
            if !ports.contains(&h.port) {
                ports.push(h.port);
            }
        }
        cf.multicast_groups.push(MulticastGroup {
            group: FLOOD_GROUP,
            replicas: ports
                .into_iter()
                .map(|port| Replica { port, rid: 0 })
                .collect(),
        });
    }
}

/// The JBSQ program's source (p4/jbsq.p4).
pub const SOURCE: &str = include_str!("../../../../p4/jbsq.p4");

/// A switch running p4/jbsq.p4 with `cfg` installed.
pub fn switch(cfg: &JbsqConfig, seed: u64) -> Result<Switch, String> {
    let mut sw = Switch::load(SOURCE, seed).map_err(|e| format!("jbsq.p4:{e}"))?;
    let cf = cfg.control_file().map_err(|e| e.to_string())?;
    cf.install(&mut sw).map_err(|e| e.to_string())?;
    Ok(sw)
}

/// Per-server outstanding counts and bounds, in index order.
pub fn slots(sw: &Switch, k: usize) -> Vec<(u128, u128)> {
    (0..k)
        .map(|i| {
            (
                sw.register_read("RouterIngress.outstanding", i)
                    .unwrap_or(u128::MAX),
                sw.register_read("RouterIngress.bound", i)
                    .unwrap_or(u128::MAX),
            )
        })
        .collect()
}

/// A `stats` counter by name (packets).
pub fn stat(sw: &Switch, name: &str) -> u64 {
    COUNTERS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|&(_, i)| sw.counter_read("RouterIngress.stats", i).ok())
        .map_or(0, |(p, _)| p)
}
