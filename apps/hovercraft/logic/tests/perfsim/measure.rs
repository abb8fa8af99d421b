//! What a run measured: per-request latency (a sorted vector: exact percentiles), the
//! achieved throughput, and the leader's message counts per operation.

use super::clock::Time;

/// The p-th percentile (0 < p <= 100) of `sorted` (nearest rank); `None` stands for a request
/// never answered, above everything.
pub fn percentile(sorted: &[Option<Time>], p: f64) -> Option<Time> {
    if sorted.is_empty() {
        return Some(0);
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts latencies, unanswered (`None`) last.
pub fn sort(lat: &mut [Option<Time>]) {
    lat.sort_unstable_by_key(|l| l.unwrap_or(Time::MAX));
}

/// What one host's threads did (counted over the measurement window).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Raft messages received (from peers or the aggregator).
    pub rx_raft: u64,
    /// Raft messages sent.
    pub tx_raft: u64,
    /// Of those, sent by a tick (heartbeats, probes).
    pub tx_tick: u64,
    /// Client requests received.
    pub rx_requests: u64,
    /// Client replies sent.
    pub tx_replies: u64,
    /// Entries the application ran.
    pub executed: u64,
    /// AppendEntries (or AGG_AE_REQ) sent with at least one entry, and their entries.
    pub appends: u64,
    pub append_entries: u64,
}

impl Counts {
    pub fn minus(&self, o: &Counts) -> Counts {
        Counts {
            rx_raft: self.rx_raft - o.rx_raft,
            tx_raft: self.tx_raft - o.tx_raft,
            tx_tick: self.tx_tick - o.tx_tick,
            rx_requests: self.rx_requests - o.rx_requests,
            tx_replies: self.tx_replies - o.tx_replies,
            executed: self.executed - o.executed,
            appends: self.appends - o.appends,
            append_entries: self.append_entries - o.append_entries,
        }
    }
}

/// The leader's messages per client operation (thesis table 12.1), over a window.
#[derive(Clone, Copy, Debug, Default)]
pub struct PerOp {
    /// Client requests and Raft messages received, per operation.
    pub rx: f64,
    /// Raft messages and client replies sent, per operation.
    pub tx: f64,
    /// The same without the ticks' heartbeats and their answers (one answer each).
    pub rx_no_hb: f64,
    pub tx_no_hb: f64,
    /// Mean entries per AppendEntries carrying any.
    pub batch: f64,
}

impl PerOp {
    pub fn of(c: &Counts, ops: u64) -> PerOp {
        let ops = ops.max(1) as f64;
        let rx = (c.rx_requests + c.rx_raft) as f64;
        let tx = (c.tx_raft + c.tx_replies) as f64;
        let hb = c.tx_tick as f64;
        PerOp {
            rx: rx / ops,
            tx: tx / ops,
            rx_no_hb: (rx - hb).max(0.0) / ops,
            tx_no_hb: (tx - hb).max(0.0) / ops,
            batch: c.append_entries as f64 / c.appends.max(1) as f64,
        }
    }
}

/// One run's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Offered load (requests a second).
    pub offered: f64,
    /// Throughput: the offered load times the fraction of the window's requests answered.
    pub achieved: f64,
    /// Latency percentiles of the measured requests (`None`: above every answered one,
    /// some were never answered or the run stopped early).
    pub p50: Option<Time>,
    pub p99: Option<Time>,
    /// Requests generated in the window, and answered.
    pub measured: usize,
    pub answered: usize,
    /// Stopped once more than 1 % of the window's requests were late: p99 is over the SLO.
    pub aborted: bool,
    /// The leader's messages per operation in the window (replicated runs).
    pub leader: Option<PerOp>,
    pub leader_id: Option<usize>,
    /// Every replica's counters and core stats at the end (for a look by hand).
    pub notes: String,
}

impl Outcome {
    /// p99 at most `slo`.
    pub fn meets(&self, slo: Time) -> bool {
        !self.aborted && self.p99.is_some_and(|p| p <= slo)
    }

    pub fn from_latencies(offered: f64, mut lat: Vec<Option<Time>>, aborted: bool) -> Outcome {
        sort(&mut lat);
        let answered = lat.iter().filter(|l| l.is_some()).count();
        Outcome {
            offered,
            // The offered rate times the fraction answered: the window's Poisson count
            // (± 1 % in 10 ms at 1 M ops/s) would otherwise show as throughput.
            achieved: offered * answered as f64 / lat.len().max(1) as f64,
            p50: percentile(&lat, 50.0),
            p99: if aborted {
                None
            } else {
                percentile(&lat, 99.0)
            },
            measured: lat.len(),
            answered,
            aborted,
            leader: None,
            leader_id: None,
            notes: String::new(),
        }
    }
}
