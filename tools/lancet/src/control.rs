//! The coordinator ↔ agent control protocol (thesis table 4.2), newline-delimited JSON over
//! TCP; see README.md "Control protocol". Every request gets exactly one reply line.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::options::{AgentKind, AgentOptions, BusyPollReport, StampKind, StampReport};
use crate::stats::adf::AdfResult;
use crate::stats::anderson::AdResult;
use crate::stats::quantile::QuantileCi;
use crate::stats::spearman::IidCheck;
use crate::workload::Workload;

/// Coordinator → agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Workload and analysis parameters (an addition to table 4.2: agents may be remote).
    Configure {
        workload: Box<Workload>,
        /// Percentiles to report, e.g. [50, 90, 99].
        percentiles: Vec<f64>,
        /// Confidence level of the intervals, e.g. 0.95.
        confidence: f64,
        /// Largest lag for the Spearman autocorrelation.
        max_lag: usize,
        /// This agent's kind, timestamps and busy polling (defaults: symmetric, software).
        #[serde(default)]
        agent: AgentOptions,
    },
    /// Start (or change) open-loop load; the agent stops by itself after `max_secs`.
    StartLoad {
        rps: f64,
        max_secs: f64,
    },
    /// Collect `samples` latencies, sampling one request in `sampling`.
    StartMeasure {
        samples: usize,
        sampling: u32,
    },
    GetThroughput,
    GetLatency,
    Exit,
}

/// Agent → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ack,
    Throughput(ThroughputReport),
    Latency(LatencyReport),
    Error { message: String },
}

/// Reply to `get_throughput`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputReport {
    pub window_secs: f64,
    pub sent_rps: f64,
    pub received_rps: f64,
    pub skipped: u64,
    /// Arrivals dropped because the sender fell behind schedule (descheduled).
    pub late: u64,
    /// Anderson-Darling of the inter-transmission gaps against the target distribution.
    pub inter_arrival: Option<AdResultWire>,
    /// Why the inter-arrival test could not run, if it could not.
    pub inter_arrival_error: Option<String>,
    /// The agent's kind.
    #[serde(default)]
    pub kind: AgentKind,
    /// How well the sends kept to their schedule (same gaps as `inter_arrival`).
    #[serde(default)]
    pub schedule: Option<ScheduleWire>,
}

/// The sender's schedule against its actual sends: the scheduled gaps' own Anderson-Darling
/// (does the generator draw the target process?) and how late the sends went out. A failing
/// `inter_arrival` with a passing schedule test and large lateness means the sender could not
/// keep its schedule (each `send()` blocks the load thread), not that the draws are wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleWire {
    pub ad_statistic: f64,
    pub ad_p_value: f64,
    pub lateness_p50_us: f64,
    pub lateness_p99_us: f64,
    /// Median lateness of the sends scheduled less than 20 µs after the previous one.
    pub close_lateness_p50_us: f64,
}

/// Reply to `get_latency`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyReport {
    pub count: usize,
    pub target: usize,
    pub sampling: u32,
    pub percentiles: Vec<QuantileCiWire>,
    pub stationarity: Option<AdfWire>,
    pub iid: Option<IidWire>,
    /// (send time s, latency µs), send order.
    pub samples: Vec<(f64, f64)>,
    /// Which timestamps timed the samples, for humans.
    pub timestamps: String,
    /// The stamp kinds that timed at least one sample, best first.
    #[serde(default)]
    pub timestamps_used: Vec<StampKind>,
    /// Samples per stamp kind and why kernel stamps were not used where asked for.
    #[serde(default)]
    pub stamps: StampReport,
    /// The agent's kind (a throughput agent has no samples).
    #[serde(default)]
    pub kind: AgentKind,
    /// Latency agents: whether `SO_BUSY_POLL` took effect.
    #[serde(default)]
    pub busy_poll: Option<BusyPollReport>,
}

/// Wire forms of the statistics results (plain data).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdResultWire {
    pub statistic: f64,
    pub p_value: f64,
    pub method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantileCiWire {
    pub p: f64,
    pub estimate: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdfWire {
    pub statistic: f64,
    pub p_value: f64,
    pub used_lag: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IidWire {
    pub iid: bool,
    pub first_insignificant_lag: Option<usize>,
    pub lag1_rho: f64,
    pub lag1_p: f64,
}

impl From<&AdResult> for AdResultWire {
    fn from(r: &AdResult) -> Self {
        AdResultWire {
            // JSON has no infinity: an unbounded statistic travels as f64::MAX.
            statistic: finite(r.statistic),
            p_value: r.p_value,
            method: r.method.into(),
        }
    }
}

impl From<&QuantileCi> for QuantileCiWire {
    fn from(q: &QuantileCi) -> Self {
        QuantileCiWire {
            p: q.p,
            estimate: q.estimate,
            low: q.low,
            high: q.high,
        }
    }
}

impl QuantileCiWire {
    pub fn to_ci(&self) -> QuantileCi {
        QuantileCi {
            p: self.p,
            estimate: self.estimate,
            low: self.low,
            high: self.high,
        }
    }
}

impl From<&AdfResult> for AdfWire {
    fn from(r: &AdfResult) -> Self {
        AdfWire {
            statistic: finite(r.statistic),
            p_value: r.p_value,
            used_lag: r.used_lag,
        }
    }
}

impl From<&IidCheck> for IidWire {
    fn from(r: &IidCheck) -> Self {
        IidWire {
            iid: r.iid,
            first_insignificant_lag: r.first_insignificant_lag,
            lag1_rho: r.lags.first().map_or(0.0, |l| l.rho),
            lag1_p: r.lags.first().map_or(1.0, |l| l.p_value),
        }
    }
}

fn finite(v: f64) -> f64 {
    if v.is_nan() {
        f64::MAX
    } else {
        v.clamp(f64::MIN, f64::MAX)
    }
}

/// Write one message as a JSON line.
pub fn send_line<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let mut s = serde_json::to_string(msg).map_err(io::Error::other)?;
    s.push('\n');
    w.write_all(s.as_bytes())?;
    w.flush()
}

/// Read one JSON line; `Ok(None)` at end of stream.
pub fn read_line<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> io::Result<Option<T>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An agent failed or answered nonsense.
#[derive(Debug, thiserror::Error)]
#[error("agent {agent} failed: {why}")]
pub struct AgentError {
    pub agent: String,
    pub why: String,
}

/// The coordinator's handle on one agent.
#[derive(Debug)]
pub struct AgentClient {
    pub name: String,
    /// The kind this agent is configured as (symmetric unless set).
    pub kind: AgentKind,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl AgentClient {
    /// Connect to an agent's control address; replies must come within `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self, AgentError> {
        let err = |e: io::Error| AgentError {
            agent: addr.into(),
            why: e.to_string(),
        };
        let s = TcpStream::connect(addr).map_err(err)?;
        s.set_read_timeout(Some(timeout)).map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
        Ok(AgentClient {
            name: addr.into(),
            kind: AgentKind::Symmetric,
            reader: BufReader::new(s.try_clone().map_err(err)?),
            writer: s,
        })
    }

    /// The same handle, configured as `kind`.
    pub fn with_kind(mut self, kind: AgentKind) -> Self {
        self.kind = kind;
        self
    }

    /// Send `req`, wait for its reply; an `Error` reply, a timeout or a closed connection is an
    /// [`AgentError`].
    pub fn call(&mut self, req: &Request) -> Result<Reply, AgentError> {
        let fail = |why: String| AgentError {
            agent: self.name.clone(),
            why,
        };
        send_line(&mut self.writer, req).map_err(|e| fail(e.to_string()))?;
        match read_line::<Reply>(&mut self.reader) {
            Ok(Some(Reply::Error { message })) => Err(fail(message)),
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(fail("control connection closed".into())),
            Err(e) => Err(fail(e.to_string())),
        }
    }
}
