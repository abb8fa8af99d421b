//! A Lancet agent: serves the control protocol on TCP for one coordinator at a time, runs the
//! open-loop load thread, and answers `get_throughput` / `get_latency` with its own statistics
//! (inter-arrival Anderson-Darling, percentile CIs, ADF stationarity, Spearman iid check), as
//! the thesis's agents do. The coordinator makes it a symmetric, throughput or latency agent
//! and picks software or kernel timestamps per session (`configure`'s `agent` object).

pub mod conn;
pub mod kernel_ts;
pub mod load;
pub mod options;
pub mod sockopt;
pub mod stamps;

use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use ferrix_dist::Shape;

use crate::control::{self, LatencyReport, Reply, Request, ThroughputReport};
use crate::stats::{adf, anderson, quantile, spearman};
use crate::workload::Workload;
use options::{AgentOptions, TsMode};

/// Inter-arrival gaps used for the Anderson-Darling test (the most recent ones): enough to
/// catch a wrong shape, few enough that microsecond send jitter is not itself "significant".
pub const AD_MAX_GAPS: usize = 2000;

struct Session {
    workload: Option<Workload>,
    percentiles: Vec<f64>,
    confidence: f64,
    max_lag: usize,
    opts: AgentOptions,
    /// Kernel mode: keeps the kernel's RX timestamping switched on for the session.
    keeper: Option<std::net::UdpSocket>,
    load: Option<(Sender<load::Cmd>, JoinHandle<()>)>,
}

impl Session {
    fn stop_load(&mut self) {
        if let Some((tx, h)) = self.load.take() {
            let _ = tx.send(load::Cmd::Stop);
            let _ = h.join();
        }
    }

    fn snapshot(&self) -> Result<load::Snapshot, String> {
        let (tx, _) = self
            .load
            .as_ref()
            .ok_or("no load running (send start_load)")?;
        let (rtx, rrx) = mpsc::channel();
        tx.send(load::Cmd::Snapshot(rtx))
            .map_err(|_| "load thread is gone")?;
        let s = rrx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "load thread does not answer")?;
        match s.error {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    fn handle(&mut self, req: Request) -> Result<Reply, String> {
        match req {
            Request::Configure {
                workload,
                percentiles,
                confidence,
                max_lag,
                agent,
            } => {
                workload.validate().map_err(|e| e.to_string())?;
                self.stop_load();
                self.workload = Some(*workload);
                self.opts = agent;
                // A failure shows up per connection (the reports say why); nothing to do here.
                self.keeper = match agent.timestamps {
                    TsMode::Kernel => self
                        .keeper
                        .take()
                        .or_else(|| sockopt::rx_stamp_keeper().ok().map(|k| k.0)),
                    TsMode::Software => None,
                };
                self.percentiles = percentiles;
                self.confidence = confidence;
                self.max_lag = max_lag.max(1);
                Ok(Reply::Ack)
            }
            Request::StartLoad { rps, max_secs } => {
                let w = self.workload.clone().ok_or("not configured")?;
                if !(rps.is_finite() && rps > 0.0) {
                    return Err(format!("bad load {rps}"));
                }
                self.stop_load();
                let (tx, rx) = mpsc::channel();
                let max = Duration::from_secs_f64(max_secs.clamp(0.1, 3600.0));
                let opts = self.opts;
                let h = std::thread::spawn(move || load::run_as(&w, opts, rps, max, &rx));
                self.load = Some((tx, h));
                Ok(Reply::Ack)
            }
            Request::StartMeasure { samples, sampling } => {
                let (tx, _) = self.load.as_ref().ok_or("no load running")?;
                tx.send(load::Cmd::Measure { samples, sampling })
                    .map_err(|_| "load thread is gone")?;
                Ok(Reply::Ack)
            }
            Request::GetThroughput => Ok(Reply::Throughput(self.throughput()?)),
            Request::GetLatency => Ok(Reply::Latency(self.latency()?)),
            Request::Exit => {
                self.stop_load();
                Ok(Reply::Ack)
            }
        }
    }

    fn throughput(&self) -> Result<ThroughputReport, String> {
        let s = self.snapshot()?;
        let w = self.workload.as_ref().ok_or("not configured")?;
        let shape: Shape = w.arrival.parse().map_err(|e| format!("{e}"))?;
        let gaps = &s.gaps_us[s.gaps_us.len().saturating_sub(AD_MAX_GAPS)..];
        let (ia, ia_err) = match anderson::against_shape(gaps, &shape) {
            Ok(r) => (Some((&r).into()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let schedule = schedule_report(&s, &shape);
        let secs = s.window_secs.max(1e-9);
        Ok(ThroughputReport {
            window_secs: s.window_secs,
            sent_rps: s.sent as f64 / secs,
            received_rps: s.received as f64 / secs,
            skipped: s.skipped,
            late: s.late,
            inter_arrival: ia,
            inter_arrival_error: ia_err,
            kind: self.opts.kind,
            schedule,
        })
    }

    fn latency(&self) -> Result<LatencyReport, String> {
        let s = self.snapshot()?;
        let lat: Vec<f64> = s.samples.iter().map(|x| x.1).collect();
        let mut sorted = lat.clone();
        sorted.sort_by(f64::total_cmp);
        let percentiles = if sorted.is_empty() {
            Vec::new()
        } else {
            self.percentiles
                .iter()
                .map(|p| {
                    (&quantile::order_statistic_ci(&sorted, p / 100.0, self.confidence)).into()
                })
                .collect()
        };
        Ok(LatencyReport {
            count: lat.len(),
            target: s.target_samples,
            sampling: s.sampling,
            percentiles,
            stationarity: adf::adf(&lat).ok().map(|r| (&r).into()),
            iid: spearman::iid_check(&lat, self.max_lag, 0.05)
                .ok()
                .map(|r| (&r).into()),
            samples: s.samples,
            timestamps: s.stamps.describe(),
            timestamps_used: s.stamps.used(),
            stamps: s.stamps,
            kind: self.opts.kind,
            busy_poll: s.busy_poll,
        })
    }
}

/// The schedule report over the last [`AD_MAX_GAPS`] gaps (`None` if too few or untestable).
fn schedule_report(s: &load::Snapshot, shape: &Shape) -> Option<control::ScheduleWire> {
    let from = s.sched_gaps_us.len().saturating_sub(AD_MAX_GAPS);
    let ad = anderson::against_shape(&s.sched_gaps_us[from..], shape).ok()?;
    let q = |mut v: Vec<f64>, p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    let late = s.lateness_us[from..].to_vec();
    let close: Vec<f64> = (from..s.sched_gaps_us.len())
        .filter(|i| s.sched_gaps_us[*i] < 20.0)
        .map(|i| s.lateness_us[i])
        .collect();
    Some(control::ScheduleWire {
        ad_statistic: ad.statistic,
        ad_p_value: ad.p_value,
        lateness_p50_us: q(late.clone(), 0.5),
        lateness_p99_us: q(late, 0.99),
        close_lateness_p50_us: q(close, 0.5),
    })
}

/// Serve one coordinator connection until `exit` or disconnect.
pub fn serve_connection(stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut session = Session {
        workload: None,
        percentiles: vec![50.0, 99.0],
        confidence: 0.95,
        max_lag: 20,
        opts: AgentOptions::default(),
        keeper: None,
        load: None,
    };
    let result = loop {
        let req: Request = match control::read_line(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                control::send_line(
                    &mut writer,
                    &Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                )?;
                continue;
            }
            Err(e) => break Err(e),
        };
        let exit = matches!(req, Request::Exit);
        let reply = session
            .handle(req)
            .unwrap_or_else(|message| Reply::Error { message });
        control::send_line(&mut writer, &reply)?;
        if exit {
            break Ok(());
        }
    };
    session.stop_load();
    result
}

/// Accept coordinators one after the other; return after the first session when `once`.
pub fn serve(listener: TcpListener, once: bool) -> io::Result<()> {
    for stream in listener.incoming() {
        let r = serve_connection(stream?);
        if once {
            return r;
        }
    }
    Ok(())
}
