//! Collects what a run measures: each measured request's latency (sojourn = wait + service),
//! the CPU time each worker spends, steals and drops; then turns them into a [`RunResult`] with
//! batch-means confidence intervals.
//!
//! Requests are identified by arrival index, so models may complete them in any order. Batches
//! are contiguous ranges of arrival indices. Little's law is checked independently of the latency
//! mean: L is the time-average number of requests in the system over the measured window
//! [first measured arrival, last arrival], computed from the overlap of every request's
//! [arrival, departure) with the window (warm-up requests that overlap it included).

use crate::result::RunResult;
use crate::stats::{Estimate, quantile_in_place};
use crate::{SimConfig, stats};

/// Per-run measurement state.
#[derive(Debug)]
pub struct Recorder {
    warmup: u64,
    workers: usize,
    /// Latency of measured request i (NaN if dropped), indexed by idx - warmup.
    latency: Vec<f64>,
    /// Arrival time of measured request i.
    arrival: Vec<f64>,
    /// Departure times of warm-up requests (for the Little's-law window).
    warm_departures: Vec<f64>,
    /// CPU time of each worker spent on measured requests (service plus overheads).
    busy: Vec<f64>,
    /// CPU time spent on the measured requests of each batch.
    batch_busy: Vec<f64>,
    /// Sum of waits (latency - CPU time) and count of requests that waited, per batch.
    batch_wait: Vec<f64>,
    batch_waited: Vec<u64>,
    /// batches / requests.
    batch_scale: f64,
    /// Measured requests that ran on a worker other than their home (ZygOS).
    stolen: u64,
    /// Measured requests dropped by admission control.
    dropped: u64,
    /// Warm-up and measured requests dropped (for the control loop's view).
    recorded: u64,
}

impl Recorder {
    pub fn new(cfg: &SimConfig) -> Self {
        let n = cfg.requests as usize;
        Self {
            warmup: cfg.warmup,
            workers: cfg.workers,
            latency: vec![f64::NAN; n],
            arrival: vec![0.0; n],
            warm_departures: Vec::with_capacity(cfg.warmup as usize),
            busy: vec![0.0; cfg.workers],
            batch_busy: vec![0.0; cfg.batches],
            batch_wait: vec![0.0; cfg.batches],
            batch_waited: vec![0; cfg.batches],
            batch_scale: cfg.batches as f64 / n as f64,
            stolen: 0,
            dropped: 0,
            recorded: 0,
        }
    }

    /// Request `idx` arrived at `arrival`, left at `departure` and cost `worker` `cpu` time.
    #[inline]
    pub fn complete(&mut self, idx: u64, arrival: f64, departure: f64, worker: usize, cpu: f64) {
        self.recorded += 1;
        if idx < self.warmup {
            self.warm_departures.push(departure);
            return;
        }
        let i = (idx - self.warmup) as usize;
        self.latency[i] = departure - arrival;
        self.arrival[i] = arrival;
        self.busy[worker] += cpu;
        // Batch of request i (float multiply: no division on the hot path; a request on a batch
        // boundary may land in the neighbouring batch, which does not matter statistically).
        let k = ((i as f64 * self.batch_scale) as usize).min(self.batch_busy.len() - 1);
        self.batch_busy[k] += cpu;
        let wait = departure - arrival - cpu;
        self.batch_wait[k] += wait;
        // Relative tolerance: `departure` was computed as start + cpu in floating point.
        self.batch_waited[k] += u64::from(wait > 1e-9 * departure.abs().max(1.0));
    }

    /// Request `idx` (arrived at `arrival`) was executed by a thief.
    #[inline]
    pub fn stolen(&mut self, idx: u64) {
        if idx >= self.warmup {
            self.stolen += 1;
        }
    }

    /// Request `idx` was dropped at arrival.
    #[inline]
    pub fn drop_request(&mut self, idx: u64, arrival: f64) {
        self.recorded += 1;
        if idx < self.warmup {
            return;
        }
        let i = (idx - self.warmup) as usize;
        self.arrival[i] = arrival;
        self.dropped += 1;
    }

    /// Number of requests recorded so far (completed or dropped).
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// Summarise the run.
    pub fn finish(mut self, cfg: &SimConfig) -> RunResult {
        let n = self.latency.len();
        let b = cfg.batches;
        let w0 = self.arrival[0];
        let w1 = self.arrival[n - 1];
        let span = (w1 - w0).max(f64::MIN_POSITIVE);

        // Little's law: time-average number in system over [w0, w1].
        let overlap = |a: f64, d: f64| (d.min(w1) - a.max(w0)).max(0.0);
        let mut area: f64 = self
            .warm_departures
            .iter()
            .map(|&d| (d.min(w1) - w0).max(0.0))
            .sum();
        let mut sum_lat = 0.0;
        let mut served = 0usize;
        for (a, l) in self.arrival.iter().zip(&self.latency) {
            if !l.is_nan() {
                area += overlap(*a, a + l);
                sum_lat += l;
                served += 1;
            }
        }
        let little_l = area / span;
        let throughput = served as f64 / span;

        // Per-batch statistics (batches by arrival index).
        let mut bmean = Vec::with_capacity(b);
        let mut bp = [
            Vec::with_capacity(b),
            Vec::with_capacity(b),
            Vec::with_capacity(b),
        ];
        let mut butil = Vec::with_capacity(b);
        let mut blittle = Vec::with_capacity(b);
        let qs = [0.5, 0.99, 0.999];
        let mut kept: Vec<f64> = Vec::with_capacity(n);
        for k in 0..b {
            let (lo, hi) = (k * n / b, (k + 1) * n / b);
            let t0 = self.arrival[lo];
            let t1 = if hi < n { self.arrival[hi] } else { w1 };
            let mut lats: Vec<f64> = self.latency[lo..hi]
                .iter()
                .copied()
                .filter(|l| !l.is_nan())
                .collect();
            let m = lats.iter().sum::<f64>() / lats.len().max(1) as f64;
            bmean.push(m);
            // λ·W per batch, for the Little CI.
            blittle.push(lats.len() as f64 / (t1 - t0).max(f64::MIN_POSITIVE) * m);
            // Utilisation per batch: CPU time of the batch's requests over its span.
            butil
                .push(self.batch_busy[k] / (cfg.workers as f64 * (t1 - t0).max(f64::MIN_POSITIVE)));
            for (j, q) in qs.iter().enumerate() {
                bp[j].push(quantile_in_place(&mut lats, *q));
            }
            kept.extend_from_slice(&lats);
        }
        let per_batch = |k: usize| (k * n / b, (k + 1) * n / b);
        let counts: Vec<f64> = (0..b)
            .map(|k| {
                let (lo, hi) = per_batch(k);
                self.latency[lo..hi]
                    .iter()
                    .filter(|l| !l.is_nan())
                    .count()
                    .max(1) as f64
            })
            .collect();
        let bwait: Vec<f64> = (0..b).map(|k| self.batch_wait[k] / counts[k]).collect();
        let bwaited: Vec<f64> = (0..b)
            .map(|k| self.batch_waited[k] as f64 / counts[k])
            .collect();
        let served_f = served.max(1) as f64;
        let mean_wait =
            Estimate::from_batches(self.batch_wait.iter().sum::<f64>() / served_f, &bwait);
        let wait_prob = Estimate::from_batches(
            self.batch_waited.iter().sum::<u64>() as f64 / served_f,
            &bwaited,
        );
        let mean = Estimate::from_batches(sum_lat / served.max(1) as f64, &bmean);
        let pct = qs.map(|q| quantile_in_place(&mut kept, q));
        let [p50, p99, p999] = [0, 1, 2].map(|j| Estimate::from_batches(pct[j], &bp[j]));

        // Utilisation: CPU time of the requests that arrived in the window over n × the window
        // (an unbiased ratio estimator of ρ for a stable queue; under overload, the demand).
        let busy_span = span;
        let per_worker: Vec<f64> = self.busy.iter().map(|x| x / busy_span).collect();
        let util_value = self.busy.iter().sum::<f64>() / (self.workers as f64 * busy_span);
        let total = n as u64;
        self.latency.clear();
        RunResult {
            model: cfg.model.to_string(),
            label: cfg.model.label(),
            dist: cfg.service.to_string(),
            workers: cfg.workers,
            load: cfg.load,
            lambda: cfg.lambda(),
            seed: cfg.seed,
            requests: total,
            mean,
            mean_wait,
            wait_prob,
            p50,
            p99,
            p999,
            throughput,
            utilisation: Estimate::from_batches(util_value, &butil),
            per_worker_utilisation: per_worker,
            little_l,
            little_lambda_w: Estimate::from_batches(throughput * mean.value, &blittle),
            steal_rate: self.stolen as f64 / total as f64,
            drop_rate: self.dropped as f64 / total as f64,
            slo: cfg.slo,
            meets_slo: p99.value <= cfg.slo * cfg.mean,
            t975: stats::t_quantile(0.975, b - 1),
        }
    }
}
