//! SVEN, SLO-aware RPC admission control (thesis chapter 11), as a stage in front of the
//! balancing policy.
//!
//! - Data plane: every REQ0 is timestamped on arrival and its FEEDBACK closes the measurement
//!   (arrival to FEEDBACK, a proxy for the client's latency); a request whose slot expires
//!   without FEEDBACK counts as late. Each class (the REQ0's policy nibble, so applications
//!   mark request types without the router knowing them) has its own latency histogram, its
//!   own counts under and over the SLO for the current period, and its own drop rate. A REQ0 is
//!   refused with probability equal to its class's drop rate, and the client gets DROP.
//! - Control loop (listing 11.1): every `period_ns` (20 ms), per class, the fraction of the
//!   period's requests that met the SLO is smoothed (EWMA with weight `alpha` on the new
//!   period); below the target percentile the drop rate grows by `step` (at most `cap`), else
//!   it shrinks by `step` (at least 0). A period without a measurement counts as meeting the
//!   SLO. Classes in `no_drop` are measured but never refused (e.g. writes).

use crate::rng::Rng;

/// Number of classes (policy nibble values).
pub const CLASSES: usize = 16;
/// Histogram buckets: linear from 0 to 4 x SLO, the last one open-ended.
pub const BUCKETS: usize = 64;

/// SVEN's knobs (defaults from the thesis).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SvenConfig {
    /// Latency SLO at `percentile` (ns).
    pub slo_ns: u64,
    /// Target fraction under the SLO (0.99 for an SLO on the p99).
    pub percentile: f64,
    /// Control period (20 ms).
    pub period_ns: u64,
    /// Drop-rate step per period (0.01).
    pub step: f64,
    /// Largest drop rate (0.99).
    pub cap: f64,
    /// EWMA weight of the latest period's fraction (1.0: no smoothing).
    pub alpha: f64,
    /// Classes never dropped, as a bit mask over policy nibbles (default: FIXED_ROUTE).
    pub no_drop: u16,
}

impl Default for SvenConfig {
    fn default() -> Self {
        SvenConfig {
            slo_ns: 300_000,
            percentile: 0.99,
            period_ns: 20_000_000,
            step: 0.01,
            cap: 0.99,
            alpha: 0.5,
            no_drop: 1 << crate::wire::POLICY_FIXED,
        }
    }
}

/// One class's state.
#[derive(Clone, Debug)]
pub struct ClassState {
    /// Current drop rate.
    pub drop_rate: f64,
    /// Smoothed fraction under the SLO (None before the first period with samples).
    pub estimate: Option<f64>,
    /// This period's measurements under / over the SLO.
    under: u64,
    over: u64,
    /// Latency histogram since boot (bucket width SLO / 16).
    pub histogram: [u64; BUCKETS],
    /// REQ0s admitted / refused since boot.
    pub admitted: u64,
    pub dropped: u64,
}

impl Default for ClassState {
    fn default() -> Self {
        ClassState {
            drop_rate: 0.0,
            estimate: None,
            under: 0,
            over: 0,
            histogram: [0; BUCKETS],
            admitted: 0,
            dropped: 0,
        }
    }
}

/// SVEN's state.
#[derive(Clone, Debug)]
pub struct Sven {
    cfg: SvenConfig,
    classes: [ClassState; CLASSES],
    next_period_ns: Option<u64>,
    /// Control periods run.
    pub periods: u64,
}

impl Sven {
    /// SVEN with `cfg` (an SLO of 0 is taken as 1 ns).
    pub fn new(mut cfg: SvenConfig) -> Sven {
        cfg.slo_ns = cfg.slo_ns.max(1);
        cfg.period_ns = cfg.period_ns.max(1);
        Sven {
            cfg,
            classes: core::array::from_fn(|_| ClassState::default()),
            next_period_ns: None,
            periods: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SvenConfig {
        &self.cfg
    }

    /// Class `c`'s state (c is a policy nibble).
    pub fn class(&self, c: u8) -> &ClassState {
        &self.classes[usize::from(c) % CLASSES]
    }

    /// Decides whether a REQ0 of class `c` is admitted.
    #[inline]
    pub fn admit(&mut self, c: u8, rng: &mut Rng) -> bool {
        let droppable = self.cfg.no_drop & (1 << (c % 16)) == 0;
        let s = &mut self.classes[usize::from(c) % CLASSES];
        if droppable && s.drop_rate > 0.0 && rng.chance(s.drop_rate) {
            s.dropped += 1;
            false
        } else {
            s.admitted += 1;
            true
        }
    }

    /// Records a measured latency (REQ0 arrival to FEEDBACK) for class `c`.
    #[inline]
    pub fn record(&mut self, c: u8, latency_ns: u64) {
        let slo = self.cfg.slo_ns;
        let s = &mut self.classes[usize::from(c) % CLASSES];
        if latency_ns <= slo {
            s.under += 1;
        } else {
            s.over += 1;
        }
        let b = (u128::from(latency_ns) * 16 / u128::from(slo)).min(BUCKETS as u128 - 1);
        s.histogram[b as usize] += 1;
    }

    /// Records a request of class `c` whose FEEDBACK never came (late by definition).
    pub fn record_lost(&mut self, c: u8) {
        let s = &mut self.classes[usize::from(c) % CLASSES];
        s.over += 1;
        s.histogram[BUCKETS - 1] += 1;
    }

    /// Runs the control loop for every period that ended by `now_ns`.
    pub fn tick(&mut self, now_ns: u64) {
        let next = *self
            .next_period_ns
            .get_or_insert(now_ns + self.cfg.period_ns);
        if now_ns < next {
            return;
        }
        self.step_all();
        // Periods with no traffic at all while nobody called: skip rather than replay them.
        self.next_period_ns = Some(now_ns + self.cfg.period_ns);
    }

    fn step_all(&mut self) {
        self.periods += 1;
        let cfg = self.cfg;
        for (c, s) in self.classes.iter_mut().enumerate() {
            let n = s.under + s.over;
            let frac = if n == 0 {
                1.0
            } else {
                s.under as f64 / n as f64
            };
            let est = match s.estimate {
                Some(e) if n > 0 => cfg.alpha * frac + (1.0 - cfg.alpha) * e,
                _ => frac,
            };
            if n > 0 {
                s.estimate = Some(est);
            }
            s.under = 0;
            s.over = 0;
            if cfg.no_drop & (1 << c) != 0 {
                continue;
            }
            s.drop_rate = if est < cfg.percentile {
                (s.drop_rate + cfg.step).min(cfg.cap)
            } else {
                (s.drop_rate - cfg.step).max(0.0)
            };
        }
    }

    /// The latency below which `q` of class `c`'s measurements fall (bucket upper edge), from
    /// the histogram since boot; None without measurements.
    pub fn quantile_ns(&self, c: u8, q: f64) -> Option<u64> {
        let h = &self.class(c).histogram;
        let total: u64 = h.iter().sum();
        if total == 0 {
            return None;
        }
        // ceil(q * total) without libm.
        let x = q.clamp(0.0, 1.0) * total as f64;
        let want = (x as u64 + u64::from((x as u64 as f64) < x)).max(1);
        let mut acc = 0;
        for (b, n) in h.iter().enumerate() {
            acc += n;
            if acc >= want {
                return Some((b as u64 + 1) * self.cfg.slo_ns / 16);
            }
        }
        Some(self.cfg.slo_ns * 4)
    }

    /// Admitted fraction over all classes since boot (1.0 before any request).
    pub fn admitted_fraction(&self) -> f64 {
        let (a, d) = self
            .classes
            .iter()
            .fold((0u64, 0u64), |(a, d), s| (a + s.admitted, d + s.dropped));
        if a + d == 0 {
            1.0
        } else {
            a as f64 / (a + d) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sven() -> Sven {
        Sven::new(SvenConfig {
            slo_ns: 100,
            period_ns: 10,
            alpha: 1.0,
            ..SvenConfig::default()
        })
    }

    #[test]
    fn aiad_rises_on_violation_and_falls_back() {
        let mut s = sven();
        s.tick(0);
        for p in 1..=5 {
            for _ in 0..90 {
                s.record(0, 50);
            }
            for _ in 0..10 {
                s.record(0, 500);
            }
            s.tick(p * 10);
        }
        assert!((s.class(0).drop_rate - 0.05).abs() < 1e-9);
        for p in 6..=20 {
            s.record(0, 10);
            s.tick(p * 10);
        }
        assert_eq!(s.class(0).drop_rate, 0.0);
    }

    #[test]
    fn cap_and_no_drop_class() {
        let mut s = sven();
        s.tick(0);
        for p in 1..=200 {
            s.record(0, 1000);
            s.record(1, 1000);
            s.tick(p * 10);
        }
        assert!((s.class(0).drop_rate - 0.99).abs() < 1e-9);
        assert_eq!(s.class(1).drop_rate, 0.0);
        let mut rng = Rng::new(3);
        assert!((0..1000).all(|_| s.admit(1, &mut rng)));
        let admitted = (0..10_000).filter(|_| s.admit(0, &mut rng)).count();
        assert!((50..200).contains(&admitted), "{admitted}");
    }

    #[test]
    fn lost_requests_count_as_late_and_quantiles_read_the_histogram() {
        let mut s = sven();
        s.tick(0);
        for _ in 0..98 {
            s.record(0, 10);
        }
        s.record_lost(0);
        s.record_lost(0);
        s.tick(10);
        assert!(s.class(0).drop_rate > 0.0);
        assert_eq!(s.quantile_ns(0, 0.5), Some(12)); // bucket [6.25, 12.5)
        assert_eq!(s.quantile_ns(0, 1.0), Some(400));
        assert_eq!(s.quantile_ns(3, 0.5), None);
    }
}
