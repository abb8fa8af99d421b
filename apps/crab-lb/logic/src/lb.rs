//! The load balancer: one frame in, a verdict and the frame rewritten in place (never a
//! change of length).

use alloc::vec::Vec;
use core::net::Ipv4Addr;
use ferrix_net::MacAddr;
use ferrix_net::tcp::crab::{CrabOption, Segment, set_dst};

use crate::policy::{Picker, Policy, mix};
use crate::report;

/// One backend server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Its own address (where redirected SYNs go and its report comes from).
    pub ip: Ipv4Addr,
    /// Its MAC (both kinds of forwarding are on the local segment).
    pub mac: MacAddr,
}

/// What the load balancer serves.
#[derive(Clone, Debug)]
pub struct LbConfig {
    /// The service address clients connect to.
    pub vip: Ipv4Addr,
    /// The service's TCP port (0: every port of the VIP).
    pub port: u16,
    /// The load balancer's own MAC (the source of what it sends, and of its ARP answers).
    pub mac: MacAddr,
    /// Where the backends' load reports go (UDP, to the VIP).
    pub report_port: u16,
    /// The backends (at least one).
    pub backends: Vec<Backend>,
    /// The policy for redirected SYNs.
    pub policy: Policy,
    /// Seed of [`Policy::Random`].
    pub seed: u64,
}

/// What to do with a frame after [`Lb::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it (rewritten) to backend `i`: a redirected SYN.
    Redirect(usize),
    /// Send it (Ethernet addresses rewritten) to backend `i`: the stateless fallback.
    Fallback(usize),
    /// Send it back (an ARP answer for the VIP, rewritten in place).
    Reply,
    /// Taken (a backend's report).
    Consumed,
    /// Not addressed to the VIP: not the load balancer's business.
    NotForUs,
    /// Addressed to the VIP but unusable (counted).
    Dropped,
}

/// What the load balancer counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbStats {
    /// SYNs with the option, sent on to a backend's address.
    pub redirected: u64,
    /// SYNs without the option (clients without CRAB), hashed.
    pub fallback_syns: u64,
    /// Other segments to the VIP, hashed (connections of clients without CRAB).
    pub fallback_segments: u64,
    /// Segments to the VIP with the option but no SYN (forwarded as fallback, option ignored).
    pub option_not_syn: u64,
    /// SYNs with a malformed option, or one naming another VIP (treated as without it).
    pub bad_option: u64,
    /// ARP requests for the VIP answered.
    pub arp_answered: u64,
    /// Reports taken, and refused (not from a backend, or not a report).
    pub reports: u64,
    pub bad_reports: u64,
    /// Frames to the VIP that could not be parsed, or to another TCP port.
    pub malformed: u64,
    pub wrong_port: u64,
}

/// A CRAB load balancer.
#[derive(Clone, Debug)]
pub struct Lb {
    cfg: LbConfig,
    picker: Picker,
    /// Per backend: connections last reported, and SYNs sent to it since.
    reported: Vec<u64>,
    since: Vec<u64>,
    load: Vec<u64>,
    stats: LbStats,
}

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No backend.
    NoBackends,
    /// A backend has the VIP as its own address.
    BackendIsVip,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::NoBackends => "no backends",
            ConfigError::BackendIsVip => "a backend's own address is the VIP",
        })
    }
}

const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

impl Lb {
    /// A load balancer for `cfg` (fresh soft state, as after a restart).
    pub fn new(cfg: LbConfig) -> Result<Lb, ConfigError> {
        if cfg.backends.is_empty() {
            return Err(ConfigError::NoBackends);
        }
        if cfg.backends.iter().any(|b| b.ip == cfg.vip) {
            return Err(ConfigError::BackendIsVip);
        }
        let n = cfg.backends.len();
        Ok(Lb {
            picker: Picker::new(cfg.policy, cfg.seed),
            reported: alloc::vec![0; n],
            since: alloc::vec![0; n],
            load: alloc::vec![0; n],
            stats: LbStats::default(),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LbConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> LbStats {
        self.stats
    }

    /// Each backend's load as least-connections sees it.
    pub fn loads(&self) -> Vec<u64> {
        (0..self.cfg.backends.len())
            .map(|i| self.reported[i] + self.since[i])
            .collect()
    }

    /// Takes backend `ip`'s report of `connections` open connections (false: not a backend).
    pub fn report(&mut self, ip: Ipv4Addr, connections: u32) -> bool {
        let Some(i) = self.cfg.backends.iter().position(|b| b.ip == ip) else {
            return false;
        };
        self.reported[i] = u64::from(connections);
        self.since[i] = 0;
        true
    }

    /// Decides what to do with a received frame and rewrites it for that.
    pub fn handle(&mut self, f: &mut [u8]) -> Verdict {
        if f.get(12..14) == Some(&ETHERTYPE_ARP[..]) {
            return self.arp(f);
        }
        if f.get(12..14) != Some(&[0x08, 0x00][..]) || f.get(30..34) != Some(&self.cfg.vip.octets())
        {
            return Verdict::NotForUs;
        }
        match f.get(23) {
            Some(17) => return self.udp(f),
            Some(6) => {}
            _ => return Verdict::NotForUs,
        }
        let Some(s) = Segment::parse(f) else {
            self.stats.malformed += 1;
            return Verdict::Dropped;
        };
        if self.cfg.port != 0 && s.dport != self.cfg.port {
            self.stats.wrong_port += 1;
            return Verdict::Dropped;
        }
        let syn = s.flags & 0x12 == 0x02;
        let opt = s.option(f);
        if syn {
            match opt {
                CrabOption::Vip(v) if v == self.cfg.vip => {
                    let n = self.cfg.backends.len();
                    if self.cfg.policy == Policy::LeastConnections {
                        for i in 0..n {
                            self.load[i] = self.reported[i] + self.since[i];
                        }
                    }
                    let i = self.picker.pick(n, &self.load);
                    self.since[i] += 1;
                    let b = self.cfg.backends[i];
                    set_dst(f, &s, b.ip);
                    self.set_macs(f, b.mac);
                    self.stats.redirected += 1;
                    return Verdict::Redirect(i);
                }
                CrabOption::Absent => self.stats.fallback_syns += 1,
                _ => {
                    self.stats.bad_option += 1;
                    self.stats.fallback_syns += 1;
                }
            }
        } else {
            if !matches!(opt, CrabOption::Absent) {
                self.stats.option_not_syn += 1;
            }
            self.stats.fallback_segments += 1;
        }
        let i = self.hashed(s.src, s.sport);
        self.set_macs(f, self.cfg.backends[i].mac);
        Verdict::Fallback(i)
    }

    /// The fallback's backend for a client (address, port): a fixed function, so it is the
    /// same after a restart.
    pub fn hashed(&self, ip: Ipv4Addr, port: u16) -> usize {
        let key = u64::from(u32::from(ip)) << 16 | u64::from(port);
        (mix(key) % self.cfg.backends.len() as u64) as usize
    }

    fn set_macs(&self, f: &mut [u8], dst: MacAddr) {
        f[0..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&self.cfg.mac.0);
    }

    /// An ARP request for the VIP becomes our answer.
    fn arp(&mut self, f: &mut [u8]) -> Verdict {
        // Ethernet/IPv4, a request, for the VIP.
        if f.len() < 42
            || f[14..22] != [0, 1, 0x08, 0, 6, 4, 0, 1]
            || f[38..42] != self.cfg.vip.octets()
        {
            return Verdict::NotForUs;
        }
        let (sha, spa) = (
            <[u8; 6]>::try_from(&f[22..28]).unwrap_or_default(),
            <[u8; 4]>::try_from(&f[28..32]).unwrap_or_default(),
        );
        f[0..6].copy_from_slice(&sha);
        f[6..12].copy_from_slice(&self.cfg.mac.0);
        f[21] = 2;
        f[22..28].copy_from_slice(&self.cfg.mac.0);
        f[28..32].copy_from_slice(&self.cfg.vip.octets());
        f[32..38].copy_from_slice(&sha);
        f[38..42].copy_from_slice(&spa);
        self.stats.arp_answered += 1;
        Verdict::Reply
    }

    /// A datagram to the VIP: a backend's report on the report port, or nothing of ours.
    fn udp(&mut self, f: &[u8]) -> Verdict {
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let u = 14 + ihl;
        let (Some(ports), Some(len)) = (f.get(u..u + 4), f.get(u + 4..u + 6)) else {
            self.stats.malformed += 1;
            return Verdict::Dropped;
        };
        if u16::from_be_bytes([ports[2], ports[3]]) != self.cfg.report_port {
            return Verdict::NotForUs;
        }
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
        let taken = len >= 8
            && f.get(u + 8..u + len)
                .and_then(report::decode)
                .is_some_and(|c| self.report(src, c));
        if taken {
            self.stats.reports += 1;
        } else {
            self.stats.bad_reports += 1;
        }
        Verdict::Consumed
    }
}
