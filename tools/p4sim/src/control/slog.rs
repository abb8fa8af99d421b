//! The control plane of `p4/slog.p4` (SLOG, thesis chapter 5): an experiment's
//! configuration (TOML, the thesis's YAML file), turned into the program's entries, and the
//! counters read back into a latency histogram with percentiles.
//!
//! The decisions the data plane makes, in Rust (the model the tests compare it with):
//! - pacing: slot s (one pass of the trigger, `slot_ns` apart) draws a 32-bit `d`; with
//!   `T = round(2^32 * p / k)` (p = rate * slot, k targets) the slot sends to target `d / T`
//!   when that is below k, else it is dropped ([`Plan::decide`]). The gaps between sends
//!   are geometric with mean 1/p slots ([`Plan::gap_pmf`]), the slotted Poisson process;
//! - latency: `(rx_us - tx_us) mod 2^32` with tx the request's egress time (low 32 bits of
//!   microseconds), in bucket i when `edges[i] <= latency < edges[i + 1]` (the last bucket
//!   is open), unbucketed below `edges[0]` ([`Plan::bucket_of`]).
//!
//! Example configuration (`p4sim slog FILE` runs it against a simulated device under test;
//! `[dut]` is only for that):
//!
//! ```toml
//! rate_pps = 100000.0        # requests/s over all targets
//! slot_ns = 1000             # the generator's period (one trigger pass)
//! duration_ns = 20000000     # the experiment: duration_ns / slot_ns slots
//! [generator]
//! mac = "02:00:00:00:00:01"
//! net = "10.9.0.0"           # the generator's /16: TX time in its low 16 bits
//! gen_port = 64              # where the trigger enters
//! recirc_port = 68
//! [[target]]
//! mac = "02:00:00:00:00:02"
//! ip = "10.0.0.2"
//! port = 9000
//! egress_port = 1
//! [template]
//! payload_size = 32
//! [histogram]
//! edges_us = [0, 5, 10, 20, 50, 100, 200, 500]
//! [dut]
//! latency_us = 20
//! jitter_us = 30
//! ```

use super::{CloneSession, ControlFile, DefaultAction, RegisterValue, TableEntry, parse_value};
use crate::switch::Switch;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The program's source (p4/slog.p4).
pub const SOURCE: &str = include_str!("../../../../p4/slog.p4");
/// `stats` counter indices (the program's `C_*`).
pub const COUNTERS: [(&str, usize); 7] = [
    ("slots", 0),
    ("sent", 1),
    ("dropped", 2),
    ("received", 3),
    ("unbucketed", 4),
    ("other", 5),
    ("done", 6),
];
/// The program's `MAX_TARGETS`, `MAX_BUCKETS` and `CLONE_BASE`.
pub const MAX_TARGETS: usize = 16;
pub const MAX_BUCKETS: usize = 256;
pub const CLONE_BASE: u32 = 100;
/// Largest UDP payload of the template (a 1500-byte IPv4 packet).
pub const MAX_PAYLOAD: usize = 1472;

/// An experiment, as written in the TOML file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlogConfig {
    /// Requests per second over all targets.
    pub rate_pps: f64,
    /// The generator's period, one trigger pass (v1model timestamps are us: keep it >= 1000
    /// for distinct TX times).
    #[serde(default = "default_slot_ns")]
    pub slot_ns: u64,
    pub duration_ns: u64,
    /// Seed of the switch's `random` (and of the simulated device's jitter).
    #[serde(default)]
    pub seed: u64,
    pub generator: GenConfig,
    #[serde(rename = "target")]
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub template: TemplateConfig,
    pub histogram: HistogramConfig,
    /// The simulated device under test of `p4sim slog` (not part of the switch).
    #[serde(default)]
    pub dut: Option<DutConfig>,
}

fn default_slot_ns() -> u64 {
    1000
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenConfig {
    pub mac: String,
    /// The generator's /16 (the low 16 bits are ignored).
    pub net: String,
    #[serde(default = "default_gen_port")]
    pub gen_port: u16,
    #[serde(default = "default_recirc_port")]
    pub recirc_port: u16,
}

fn default_gen_port() -> u16 {
    64
}

fn default_recirc_port() -> u16 {
    68
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub mac: String,
    pub ip: String,
    pub port: u16,
    pub egress_port: u16,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateConfig {
    pub payload_size: usize,
    /// Every payload byte.
    pub payload_byte: u8,
    pub ttl: u8,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            payload_size: 18,
            payload_byte: 0,
            ttl: 64,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HistogramConfig {
    /// Lower edges of the buckets (us), increasing; the last bucket is open.
    pub edges_us: Vec<u32>,
}

/// `p4sim slog`'s device under test: it echoes each request after `latency_us` plus a
/// uniform `0..=jitter_us`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DutConfig {
    pub latency_us: u64,
    pub jitter_us: u64,
}

/// A configuration that does not make an experiment.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SlogError {
    #[error("config: {0}")]
    Toml(String),
    #[error("config: {0}")]
    Invalid(String),
}

/// A target, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub mac: u64,
    pub ip: u32,
    pub port: u16,
    pub egress_port: u16,
}

/// A checked configuration: what the control plane installs and what the model predicts.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Send probability per slot (all targets).
    pub p: f64,
    /// Draws per target: target t takes `t * per_target .. (t + 1) * per_target`.
    pub per_target: u64,
    pub slots: u64,
    pub slot_ns: u64,
    pub gen_mac: u64,
    pub net_hi: u16,
    pub gen_port: u16,
    pub recirc_port: u16,
    pub targets: Vec<Target>,
    pub edges: Vec<u32>,
    pub template: TemplateConfig,
}

fn value(what: &str, s: &str, bits: u32) -> Result<u128, SlogError> {
    parse_value(s)
        .filter(|v| *v >> bits == 0)
        .ok_or_else(|| SlogError::Invalid(format!("{what} = {s:?}: not a {bits}-bit value")))
}

impl SlogConfig {
    pub fn from_toml(s: &str) -> Result<SlogConfig, SlogError> {
        toml::from_str(s).map_err(|e| SlogError::Toml(e.to_string()))
    }

    /// Checks the configuration and computes what the switch needs.
    pub fn plan(&self) -> Result<Plan, SlogError> {
        let bad = |m: String| Err(SlogError::Invalid(m));
        if self.slot_ns == 0 {
            return bad("slot_ns must be above 0".into());
        }
        let p = self.rate_pps * self.slot_ns as f64 / 1e9;
        if !(p > 0.0 && p <= 1.0) {
            return bad(format!(
                "rate_pps {} with slot_ns {}: {p} requests per slot, not in (0, 1]",
                self.rate_pps, self.slot_ns
            ));
        }
        let slots = self.duration_ns / self.slot_ns;
        if slots == 0 || slots > u64::from(u32::MAX) {
            return bad(format!(
                "duration_ns / slot_ns = {slots} slots: want 1..2^32"
            ));
        }
        let k = self.targets.len();
        if k == 0 || k > MAX_TARGETS {
            return bad(format!("{k} targets: want 1..={MAX_TARGETS}"));
        }
        let e = &self.histogram.edges_us;
        if e.is_empty() || e.len() > MAX_BUCKETS || e.windows(2).any(|w| w[0] >= w[1]) {
            return bad(format!(
                "histogram.edges_us: want 1..={MAX_BUCKETS} increasing edges"
            ));
        }
        if self.template.payload_size > MAX_PAYLOAD {
            return bad(format!("template.payload_size above {MAX_PAYLOAD}"));
        }
        let g = &self.generator;
        if g.gen_port > 510 || g.recirc_port > 510 {
            return bad("generator ports are 0..=510".into());
        }
        let targets = self
            .targets
            .iter()
            .map(|t| {
                Ok(Target {
                    mac: value("target.mac", &t.mac, 48)? as u64,
                    ip: value("target.ip", &t.ip, 32)? as u32,
                    port: t.port,
                    egress_port: t.egress_port,
                })
            })
            .collect::<Result<Vec<_>, SlogError>>()?;
        if targets.iter().any(|t| t.egress_port > 510) {
            return bad("target.egress_port is 0..=510".into());
        }
        let per_target = ((p / k as f64) * 2f64.powi(32)).round() as u64;
        if per_target == 0 {
            return bad(format!("rate {p} per slot rounds to no draw per target"));
        }
        Ok(Plan {
            p,
            per_target,
            slots,
            slot_ns: self.slot_ns,
            gen_mac: value("generator.mac", &g.mac, 48)? as u64,
            net_hi: (value("generator.net", &g.net, 32)? >> 16) as u16,
            gen_port: g.gen_port,
            recirc_port: g.recirc_port,
            targets,
            edges: e.clone(),
            template: self.template.clone(),
        })
    }
}

impl Plan {
    /// The model of `pace`: which target slot draw `d` sends to (None: the slot is dropped).
    pub fn decide(&self, d: u32) -> Option<usize> {
        let t = u64::from(d) / self.per_target;
        (t < self.targets.len() as u64).then_some(t as usize)
    }

    /// The send probability per slot that the table realises (the quantised p).
    pub fn p_exact(&self) -> f64 {
        ((self.per_target * self.targets.len() as u64).min(1 << 32)) as f64 / 2f64.powi(32)
    }

    /// P(gap = g slots) between consecutive sends, g >= 1 (geometric).
    pub fn gap_pmf(&self, g: u64) -> f64 {
        let p = self.p_exact();
        if g == 0 {
            return 0.0;
        }
        (1.0 - p).powf((g - 1) as f64) * p
    }

    /// `pace`'s ranges: (lo, hi, target).
    pub fn pace_ranges(&self) -> Vec<(u64, u64, usize)> {
        (0..self.targets.len() as u64)
            .map(|t| {
                let lo = t * self.per_target;
                let hi = ((t + 1) * self.per_target - 1).min(u64::from(u32::MAX));
                (lo, hi, t as usize)
            })
            .filter(|&(lo, hi, _)| lo <= hi)
            .collect()
    }

    /// The model of `latency_hist`: the bucket of a latency (us), None below the first edge.
    pub fn bucket_of(&self, latency_us: u32) -> Option<usize> {
        self.edges.iter().rposition(|&e| e <= latency_us)
    }

    /// `latency_hist`'s ranges: (lo, hi) per bucket.
    pub fn bucket_ranges(&self) -> Vec<(u32, u32)> {
        self.edges
            .iter()
            .enumerate()
            .map(|(i, &lo)| (lo, self.edges.get(i + 1).map_or(u32::MAX, |&n| n - 1)))
            .collect()
    }

    /// The trigger: the template of every request (Ethernet / IPv4 / UDP / payload), from
    /// the generator's MAC and /16, to the first target (egress rewrites the destination).
    pub fn template_frame(&self) -> Vec<u8> {
        let t = &self.template;
        let udp_len = 8 + t.payload_size as u16;
        let ip_len = 20 + udp_len;
        let mut f = Vec::with_capacity(14 + usize::from(ip_len));
        f.extend_from_slice(&self.targets[0].mac.to_be_bytes()[2..]);
        f.extend_from_slice(&self.gen_mac.to_be_bytes()[2..]);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = t.ttl;
        ip[9] = 17;
        ip[12..14].copy_from_slice(&self.net_hi.to_be_bytes());
        ip[16..20].copy_from_slice(&self.targets[0].ip.to_be_bytes());
        let c = crate::externs::csum16(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&self.targets[0].port.to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.resize(f.len() + t.payload_size, t.payload_byte);
        f
    }

    /// The entries: config, pace ranges, targets and their clone sessions, histogram ranges.
    pub fn control_file(&self) -> ControlFile {
        let params = |kv: &[(&str, String)]| -> BTreeMap<String, String> {
            kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        };
        let mut cf = ControlFile {
            default_actions: vec![DefaultAction {
                table: "SlogIngress.config".into(),
                action: "SlogIngress.set_config".into(),
                params: params(&[
                    ("gen_port", self.gen_port.to_string()),
                    ("recirc_port", self.recirc_port.to_string()),
                    ("slots", self.slots.to_string()),
                    ("net_hi", self.net_hi.to_string()),
                ]),
            }],
            registers: vec![RegisterValue {
                register: "SlogIngress.slot".into(),
                index: 0,
                value: "0".into(),
            }],
            ..ControlFile::default()
        };
        // A range entry whose action takes one parameter.
        let range =
            |table: &str, lo: u64, hi: u64, action: &str, param: &str, v: usize| TableEntry {
                table: format!("SlogIngress.{table}"),
                matches: vec![format!("{lo}..{hi}")],
                action: format!("SlogIngress.{action}"),
                params: params(&[(param, v.to_string())]),
                priority: 1,
            };
        for (lo, hi, t) in self.pace_ranges() {
            cf.table_entries
                .push(range("pace", lo, hi, "send", "target", t));
        }
        for (i, t) in self.targets.iter().enumerate() {
            cf.table_entries.push(TableEntry {
                table: "SlogEgress.target".into(),
                matches: vec![i.to_string()],
                action: "SlogEgress.set_target".into(),
                params: params(&[
                    ("mac", format!("{:#x}", t.mac)),
                    ("ip", t.ip.to_string()),
                    ("port", t.port.to_string()),
                ]),
                priority: 0,
            });
            cf.clone_sessions.push(CloneSession {
                session: CLONE_BASE + i as u32,
                port: t.egress_port,
            });
        }
        for (b, (lo, hi)) in self.bucket_ranges().into_iter().enumerate() {
            let (lo, hi) = (u64::from(lo), u64::from(hi));
            cf.table_entries
                .push(range("latency_hist", lo, hi, "bucket", "index", b));
        }
        cf
    }
}

/// The counters of an experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlogCounters {
    pub slots: u64,
    pub sent: u64,
    pub dropped: u64,
    pub received: u64,
    pub unbucketed: u64,
    pub other: u64,
    pub done: u64,
    pub sent_to: Vec<u64>,
}

/// A `stats` counter by name (u64::MAX for an unknown name).
pub fn stat(sw: &Switch, name: &str) -> u64 {
    COUNTERS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|&(_, i)| sw.counter_read("SlogIngress.stats", i).ok())
        .map_or(u64::MAX, |(p, _)| p)
}

/// Reads the counters (targets: how many `sent_to` cells).
pub fn counters(sw: &Switch, targets: usize) -> SlogCounters {
    SlogCounters {
        slots: stat(sw, "slots"),
        sent: stat(sw, "sent"),
        dropped: stat(sw, "dropped"),
        received: stat(sw, "received"),
        unbucketed: stat(sw, "unbucketed"),
        other: stat(sw, "other"),
        done: stat(sw, "done"),
        sent_to: (0..targets)
            .map(|t| {
                sw.counter_read("SlogIngress.sent_to", t)
                    .map_or(u64::MAX, |c| c.0)
            })
            .collect(),
    }
}

/// A latency histogram read back from the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    /// (lo, hi) us per bucket (the last hi is u32::MAX: open).
    pub ranges: Vec<(u32, u32)>,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn read(sw: &Switch, plan: &Plan) -> Histogram {
        let ranges = plan.bucket_ranges();
        let counts = (0..ranges.len())
            .map(|b| {
                sw.counter_read("SlogIngress.histogram", b)
                    .map_or(u64::MAX, |c| c.0)
            })
            .collect();
        Histogram { ranges, counts }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket holding the q-quantile (0 < q <= 1) of the bucketed samples: the first
    /// whose cumulative count reaches ceil(q * total). None without samples.
    pub fn percentile(&self, q: f64) -> Option<(u32, u32)> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut acc = 0;
        self.counts.iter().zip(&self.ranges).find_map(|(&c, &r)| {
            acc += c;
            (acc >= rank).then_some(r)
        })
    }

    /// A text table with p50, p90, p99 and p99.9.
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for (&(lo, hi), &c) in self.ranges.iter().zip(&self.counts) {
            let _ = writeln!(s, "  {:>22} us  {c}", range_text(lo, hi));
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            if let Some((lo, hi)) = self.percentile(q) {
                let _ = writeln!(s, "  p{:<5} in {} us", q * 100.0, range_text(lo, hi));
            }
        }
        s
    }
}

fn range_text(lo: u32, hi: u32) -> String {
    if hi == u32::MAX {
        format!("[{lo}, inf)")
    } else {
        format!("[{lo}, {}]", hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../p4/slog.toml");

    #[test]
    fn plan_from_toml() {
        let p = SlogConfig::from_toml(EXAMPLE).unwrap().plan().unwrap();
        assert_eq!((p.p, p.slots, p.net_hi), (0.1, 20_000, 0x0a09));
        let t = (0.05f64 * 2f64.powi(32)).round() as u64;
        assert_eq!(p.per_target, t);
        assert_eq!(p.pace_ranges(), [(0, t - 1, 0), (t, 2 * t - 1, 1)]);
        for d in [0, t - 1, t, 2 * t - 1, 2 * t, u64::from(u32::MAX)] {
            let by_range = p
                .pace_ranges()
                .iter()
                .find(|r| r.0 <= d && d <= r.1)
                .map(|r| r.2);
            assert_eq!(p.decide(d as u32), by_range, "{d}");
        }
        let r = p.bucket_ranges();
        assert_eq!((r[0], r[1], r[12]), ((0, 4), (5, 9), (500, u32::MAX)));
        let b: Vec<_> = [0, 4, 5, 499, 500, u32::MAX]
            .iter()
            .map(|&l| p.bucket_of(l))
            .collect();
        assert_eq!(b, [Some(0), Some(0), Some(1), Some(11), Some(12), Some(12)]);
        let mut q = p.clone();
        q.edges = vec![3, 10];
        assert_eq!((q.bucket_of(2), q.bucket_of(3)), (None, Some(0)));
        let f = p.template_frame();
        assert_eq!(f.len(), 14 + 20 + 8 + 32);
        assert_eq!(crate::externs::csum16(&f[14..34]), 0, "IPv4 checksum");
        let cf = p.control_file();
        assert_eq!(cf.table_entries.len(), 2 + 2 + 13);
        assert_eq!(cf.clone_sessions.len(), 2);
    }

    #[test]
    fn bad_configs_are_refused() {
        let cases = [
            (
                "rate_pps = 100000.0",
                "rate_pps = 2000000.0",
                "not in (0, 1]",
            ),
            ("edges_us = [0, 5,", "edges_us = [0, 0, 5,", "increasing"),
            ("duration_ns = 20000000", "duration_ns = 10", "slots"),
            ("net = \"10.9.0.0\"", "net = \"10.9.0\"", "generator.net"),
            ("seed = 1", "seed = 1\nbogus = 1", "unknown field"),
        ];
        for (from, to, want) in cases {
            assert!(EXAMPLE.contains(from), "{from}");
            let e = SlogConfig::from_toml(&EXAMPLE.replace(from, to))
                .and_then(|c| c.plan())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{to}: {e}");
        }
    }

    #[test]
    fn percentiles_from_buckets() {
        let h = Histogram {
            ranges: vec![(0, 9), (10, 19), (20, u32::MAX)],
            counts: vec![50, 45, 5],
        };
        assert_eq!(h.percentile(0.5), Some((0, 9)));
        assert_eq!(h.percentile(0.51), Some((10, 19)));
        assert_eq!(h.percentile(0.95), Some((10, 19)));
        assert_eq!(h.percentile(0.99), Some((20, u32::MAX)));
        assert!(h.report().contains("[20, inf)"));
        let empty = Histogram {
            ranges: vec![(0, 9)],
            counts: vec![0],
        };
        assert_eq!(empty.percentile(0.5), None);
    }
}
