//! How one agent measures (thesis 4.4.2 and 4.5): its kind, its timestamp source and, for
//! latency agents, `SO_BUSY_POLL`. The coordinator chooses these per agent and sends them in
//! `configure`; they are measuring-tool concerns (thesis table 4.1), not part of the workload.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The three agent kinds of thesis fig 4.2.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Load and latency: the open-loop sender over the connection pool, sampling latencies.
    #[default]
    Symmetric,
    /// Load only: the open-loop sender, no latency samples (its `get_latency` has none).
    Throughput,
    /// Latency only, at a low rate: one connection, one request in flight, busy-polling its
    /// socket (with `SO_BUSY_POLL` where allowed). Arrivals that find the request still in
    /// flight are skipped (counted), so its inter-arrivals are only approximately the target
    /// distribution: throughput agents carry the workload's arrival process.
    Latency,
}

impl AgentKind {
    /// Whether this kind records latency samples.
    pub fn measures_latency(self) -> bool {
        !matches!(self, AgentKind::Throughput)
    }

    /// Whether this kind carries the bulk of the load.
    pub fn carries_load(self) -> bool {
        !matches!(self, AgentKind::Latency)
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AgentKind::Symmetric => "symmetric",
            AgentKind::Throughput => "throughput",
            AgentKind::Latency => "latency",
        })
    }
}

impl std::str::FromStr for AgentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "symmetric" => Ok(AgentKind::Symmetric),
            "throughput" => Ok(AgentKind::Throughput),
            "latency" => Ok(AgentKind::Latency),
            _ => Err(format!(
                "unknown agent kind '{s}' (symmetric, throughput or latency)"
            )),
        }
    }
}

/// Which timestamps an agent is asked to use.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TsMode {
    /// User-space `CLOCK_MONOTONIC` before `send()` and after the `recv()` that completes the
    /// response.
    #[default]
    Software,
    /// `SO_TIMESTAMPING`: NIC hardware stamps where the NIC produces them, else the kernel's
    /// software stamps (TX in the driver, RX on arrival); per sample, user-space software when
    /// the kernel's stamps did not arrive.
    Kernel,
}

impl fmt::Display for TsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TsMode::Software => "software",
            TsMode::Kernel => "kernel",
        })
    }
}

/// Where one latency sample's two timestamps came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StampKind {
    /// User-space clock reads around the system calls.
    Software,
    /// The kernel's software stamps (`SOF_TIMESTAMPING_{TX,RX}_SOFTWARE`).
    KernelSoftware,
    /// The NIC's hardware stamps (`SOF_TIMESTAMPING_RAW_HARDWARE`).
    Hardware,
}

impl fmt::Display for StampKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StampKind::Software => "software",
            StampKind::KernelSoftware => "kernel-software",
            StampKind::Hardware => "hardware",
        })
    }
}

/// Default `SO_BUSY_POLL` of latency agents (µs): the kernel documentation's suggested value.
pub const DEFAULT_BUSY_POLL_US: u32 = 50;

fn default_busy_poll_us() -> u32 {
    DEFAULT_BUSY_POLL_US
}

/// Per-agent measuring options (the `agent` object of `configure`; every field optional on the
/// wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOptions {
    #[serde(default)]
    pub kind: AgentKind,
    #[serde(default)]
    pub timestamps: TsMode,
    /// `SO_BUSY_POLL` for latency agents' sockets (µs, 0 = leave the socket's default).
    #[serde(default = "default_busy_poll_us")]
    pub busy_poll_us: u32,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            kind: AgentKind::Symmetric,
            timestamps: TsMode::Software,
            busy_poll_us: DEFAULT_BUSY_POLL_US,
        }
    }
}

/// Whether a latency agent's `SO_BUSY_POLL` took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyPollReport {
    pub requested_us: u32,
    /// The socket reads the requested value back.
    pub applied: bool,
    pub detail: String,
}

/// How many samples used which stamps, and why kernel stamps were not used where requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampReport {
    /// What was asked for.
    pub requested: TsMode,
    /// Samples timed with NIC hardware stamps.
    pub hardware: u64,
    /// Samples timed with kernel software stamps.
    pub kernel_software: u64,
    /// Samples timed in user space.
    pub software: u64,
    /// Kernel mode: samples that fell back to user space because a kernel TX stamp did not
    /// arrive in time.
    pub missing_tx: u64,
    /// ... because the response's receive carried no kernel stamp.
    pub missing_rx: u64,
    /// ... because the kernel stamps were inconsistent with the user-space ones (a kernel
    /// interval must lie inside the user-space one); never observed unless stamps are
    /// mismatched, and then not used.
    pub rejected: u64,
    /// Connections (or the whole agent) that fell back to user-space stamps, and why.
    pub fallbacks: Vec<String>,
}

impl StampReport {
    /// Count one sample.
    pub fn count(&mut self, k: StampKind) {
        match k {
            StampKind::Software => self.software += 1,
            StampKind::KernelSoftware => self.kernel_software += 1,
            StampKind::Hardware => self.hardware += 1,
        }
    }

    /// Record why kernel stamps are not (all) used; the same reason is kept once.
    pub fn fallback(&mut self, why: String) {
        if !self.fallbacks.contains(&why) && self.fallbacks.len() < 16 {
            self.fallbacks.push(why);
        }
    }

    /// The kinds with at least one sample, best first.
    pub fn used(&self) -> Vec<StampKind> {
        [
            (StampKind::Hardware, self.hardware),
            (StampKind::KernelSoftware, self.kernel_software),
            (StampKind::Software, self.software),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k)
        .collect()
    }

    /// Add another agent's counts.
    pub fn merge(&mut self, o: &StampReport) {
        self.hardware += o.hardware;
        self.kernel_software += o.kernel_software;
        self.software += o.software;
        self.missing_tx += o.missing_tx;
        self.missing_rx += o.missing_rx;
        self.rejected += o.rejected;
        for f in &o.fallbacks {
            self.fallback(f.clone());
        }
    }

    /// One line for humans: which stamps timed how many samples, and why not kernel ones.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (k, n, how) in [
            (
                StampKind::Hardware,
                self.hardware,
                "NIC hardware stamps (SO_TIMESTAMPING)",
            ),
            (
                StampKind::KernelSoftware,
                self.kernel_software,
                "kernel software stamps (SO_TIMESTAMPING: TX in the driver, RX on arrival)",
            ),
            (
                StampKind::Software,
                self.software,
                "user-space CLOCK_MONOTONIC before send() and after recv()",
            ),
        ] {
            if n > 0 {
                parts.push(format!("{k}: {n} samples, {how}"));
            }
        }
        let mut s = if parts.is_empty() {
            format!("{}: no samples", self.requested)
        } else {
            parts.join("; ")
        };
        if self.requested == TsMode::Kernel {
            let mut why = Vec::new();
            if self.missing_tx > 0 {
                why.push(format!("{} without a kernel TX stamp", self.missing_tx));
            }
            if self.missing_rx > 0 {
                why.push(format!("{} without a kernel RX stamp", self.missing_rx));
            }
            if self.rejected > 0 {
                why.push(format!("{} with inconsistent kernel stamps", self.rejected));
            }
            why.extend(self.fallbacks.iter().cloned());
            if !why.is_empty() {
                s += &format!(" (kernel requested; software fallback: {})", why.join("; "));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_on_the_wire() {
        let o: AgentOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(o, AgentOptions::default());
        let o: AgentOptions =
            serde_json::from_str(r#"{"kind":"latency","timestamps":"kernel"}"#).unwrap();
        assert_eq!(o.kind, AgentKind::Latency);
        assert_eq!(o.timestamps, TsMode::Kernel);
        assert_eq!(o.busy_poll_us, DEFAULT_BUSY_POLL_US);
        assert_eq!(
            serde_json::to_string(&StampKind::KernelSoftware).unwrap(),
            "\"kernel-software\""
        );
    }

    #[test]
    fn stamp_report_says_what_was_used() {
        let mut r = StampReport {
            requested: TsMode::Kernel,
            ..StampReport::default()
        };
        r.count(StampKind::KernelSoftware);
        r.count(StampKind::KernelSoftware);
        r.count(StampKind::Software);
        r.missing_tx = 1;
        assert_eq!(
            r.used(),
            vec![StampKind::KernelSoftware, StampKind::Software]
        );
        let d = r.describe();
        assert!(d.contains("kernel-software: 2 samples"), "{d}");
        assert!(d.contains("1 without a kernel TX stamp"), "{d}");
        let mut all = StampReport::default();
        all.merge(&r);
        all.merge(&r);
        assert_eq!((all.kernel_software, all.software), (4, 2));
    }
}
