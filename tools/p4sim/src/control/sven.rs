//! The control plane of `p4/sven.p4`: jbsq.p4's entries ([`super::jbsq`]), the latency
//! histogram's range table, and SVEN's control loop (thesis listing 11.1), which runs here,
//! outside the switch, as in the thesis: every period it reads the per-class under/over-SLO
//! counters, updates each class's estimate and drop rate, and writes the `drop_thr` register.
//!
//! The loop's arithmetic is `ferrix_router::sven::Sven::step_all`'s, operation for
//! operation (the same f64 results), so that with the same draws the switch refuses the same
//! REQ0s as the Rust router. The data plane compares a 53-bit random draw with
//! ceil(drop_rate * 2^53): below it refuses, which is `Rng::chance(drop_rate)` on the same
//! draw exactly (`(bits >> 11) * 2^-53 < p`).

use super::jbsq::{JbsqConfig, JbsqError};
use super::{ControlFile, RegisterValue, TableEntry};
use crate::error::ControlError;
use crate::switch::Switch;
use std::collections::BTreeMap;

/// Classes (policy nibbles).
pub const CLASSES: usize = 16;
/// Histogram buckets per class (the program's `BUCKETS`): SLO/16 wide, the last open.
pub const BUCKETS: usize = 64;
/// Indices of the `stats` counter beyond jbsq.p4's ([`super::jbsq::COUNTERS`]).
pub const COUNTERS: [(&str, usize); 4] = [
    ("refused_sven", 15),
    ("sven_matched", 16),
    ("feedback_unmatched", 17),
    ("ts_evicted", 18),
];
/// Timestamps are microseconds (v1model's `ingress_global_timestamp`).
const NS_PER_TICK: u64 = 1000;
/// Largest timestamp difference (48 bits).
const MAX_TICKS: u64 = (1 << 48) - 1;

/// SVEN's knobs (`ferrix_router::SvenConfig`'s, the same defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SvenParams {
    pub slo_ns: u64,
    pub percentile: f64,
    pub period_ns: u64,
    pub step: f64,
    pub cap: f64,
    pub alpha: f64,
    /// Classes never dropped (bit mask over policy nibbles; default FIXED_ROUTE).
    pub no_drop: u16,
}

impl Default for SvenParams {
    fn default() -> Self {
        SvenParams {
            slo_ns: 300_000,
            percentile: 0.99,
            period_ns: 20_000_000,
            step: 0.01,
            cap: 0.99,
            alpha: 0.5,
            no_drop: 1 << 1,
        }
    }
}

/// One class's control state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassControl {
    pub drop_rate: f64,
    /// Smoothed fraction under the SLO (None before a period with measurements).
    pub estimate: Option<f64>,
    /// The under/over counters at the last period.
    seen: (u64, u64),
}

/// SVEN's control plane for one switch.
#[derive(Clone, Debug)]
pub struct SvenControl {
    pub params: SvenParams,
    pub classes: [ClassControl; CLASSES],
    /// Periods run.
    pub periods: u64,
}

/// The drop_thr value for a drop rate: ceil(p * 2^53), 0 for p <= 0.
pub fn threshold(p: f64) -> u64 {
    if p > 0.0 {
        (p.min(1.0) * (1u64 << 53) as f64).ceil() as u64
    } else {
        0
    }
}

/// The histogram's latency ranges in timestamp ticks (us): (lo, hi, bucket, late), bucket
/// `floor(latency_ns * 16 / slo)` capped at 63 and late `latency_ns > slo`, as
/// `Sven::record` for `latency_ns = 1000 * ticks`; empty ranges left out.
pub fn latency_ranges(slo_ns: u64) -> Vec<(u64, u64, usize, bool)> {
    let slo = u128::from(slo_ns.max(1));
    let tick = u128::from(NS_PER_TICK);
    // The first tick count whose bucket is at least b: ceil(b * slo / (16 * tick)).
    let first = |b: u128| (b * slo).div_ceil(16 * tick);
    // Ticks at or under the SLO: 1000 * t <= slo.
    let under_max = slo / tick;
    let mut out = vec![];
    for b in 0..BUCKETS as u128 {
        let lo = first(b);
        let hi = if b + 1 == BUCKETS as u128 {
            u128::from(MAX_TICKS)
        } else {
            first(b + 1).saturating_sub(1)
        };
        if first(b + 1) == lo && b + 1 < BUCKETS as u128 || lo > u128::from(MAX_TICKS) {
            continue;
        }
        let hi = hi.min(u128::from(MAX_TICKS));
        if lo <= under_max {
            out.push((lo as u64, hi.min(under_max) as u64, b as usize, false));
        }
        if hi > under_max {
            out.push((lo.max(under_max + 1) as u64, hi as u64, b as usize, true));
        }
    }
    out
}

impl SvenControl {
    /// SVEN with `params` (an SLO or period of 0 taken as 1 ns, as `Sven::new`).
    pub fn new(mut params: SvenParams) -> SvenControl {
        params.slo_ns = params.slo_ns.max(1);
        params.period_ns = params.period_ns.max(1);
        SvenControl {
            params,
            classes: [ClassControl::default(); CLASSES],
            periods: 0,
        }
    }

    /// The control file: jbsq.p4's entries for `jbsq`, the latency table, drop rates 0.
    pub fn control_file(&self, jbsq: &JbsqConfig) -> Result<ControlFile, JbsqError> {
        let mut cf = jbsq.control_file()?;
        for (lo, hi, b, late) in latency_ranges(self.params.slo_ns) {
            let mut params = BTreeMap::new();
            params.insert("bucket".to_string(), b.to_string());
            params.insert("late".to_string(), u8::from(late).to_string());
            cf.table_entries.push(TableEntry {
                table: "RouterIngress.latency_bucket".into(),
                matches: vec![format!("{lo}..{hi}")],
                action: "RouterIngress.record".into(),
                params,
                priority: 1,
            });
        }
        cf.registers.extend(self.thresholds().registers);
        Ok(cf)
    }

    /// The drop_thr writes of the current rates (a control file of register values only).
    pub fn thresholds(&self) -> ControlFile {
        ControlFile {
            registers: self
                .classes
                .iter()
                .enumerate()
                .map(|(c, s)| RegisterValue {
                    register: "RouterIngress.drop_thr".into(),
                    index: c,
                    value: threshold(s.drop_rate).to_string(),
                })
                .collect(),
            ..ControlFile::default()
        }
    }

    /// One control period: read the counters, update every class, write drop_thr. Returns
    /// the writes it made (for a P4Runtime client).
    pub fn period(&mut self, sw: &mut Switch) -> Result<ControlFile, ControlError> {
        self.periods += 1;
        let p = self.params;
        for (c, s) in self.classes.iter_mut().enumerate() {
            let now = (
                sw.counter_read("RouterIngress.under", c)?.0,
                sw.counter_read("RouterIngress.over", c)?.0,
            );
            let under = now.0.wrapping_sub(s.seen.0);
            let over = now.1.wrapping_sub(s.seen.1);
            s.seen = now;
            let n = under + over;
            let frac = if n == 0 { 1.0 } else { under as f64 / n as f64 };
            let est = match s.estimate {
                Some(e) if n > 0 => p.alpha * frac + (1.0 - p.alpha) * e,
                _ => frac,
            };
            if n > 0 {
                s.estimate = Some(est);
            }
            if p.no_drop & (1 << c) != 0 {
                continue;
            }
            s.drop_rate = if est < p.percentile {
                (s.drop_rate + p.step).min(p.cap)
            } else {
                (s.drop_rate - p.step).max(0.0)
            };
        }
        let writes = self.thresholds();
        writes.install(sw)?;
        Ok(writes)
    }
}

/// The SVEN program's source (p4/sven.p4).
pub const SOURCE: &str = include_str!("../../../../p4/sven.p4");

/// A switch running p4/sven.p4 with `jbsq` and `ctl`'s entries installed.
pub fn switch(jbsq: &JbsqConfig, ctl: &SvenControl, seed: u64) -> Result<Switch, String> {
    let mut sw = Switch::load(SOURCE, seed).map_err(|e| format!("sven.p4:{e}"))?;
    let cf = ctl.control_file(jbsq).map_err(|e| e.to_string())?;
    cf.install(&mut sw).map_err(|e| e.to_string())?;
    Ok(sw)
}

/// A `stats` counter by name: jbsq.p4's and SVEN's (packets).
pub fn stat(sw: &Switch, name: &str) -> u64 {
    match COUNTERS.iter().find(|(n, _)| *n == name) {
        Some(&(_, i)) => sw
            .counter_read("RouterIngress.stats", i)
            .map_or(0, |(p, _)| p),
        None => super::jbsq::stat(sw, name),
    }
}

/// Class `c`'s (admitted, refused) REQ0 counts and its histogram.
pub fn class_counts(sw: &Switch, c: usize) -> (u64, u64, Vec<u64>) {
    let get = |name: &str, i: usize| sw.counter_read(name, i).map_or(u64::MAX, |(p, _)| p);
    (
        get("RouterIngress.admitted", c),
        get("RouterIngress.refused", c),
        (0..BUCKETS)
            .map(|b| get("RouterIngress.histogram", c * BUCKETS + b))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tick count falls in exactly one range, with Sven::record's bucket and side.
    #[test]
    fn ranges_cover_every_latency_once() {
        for slo in [1u64, 999, 1000, 7_500, 10_000, 16_000, 300_000] {
            let r = latency_ranges(slo);
            for t in (0..5000u64).chain([MAX_TICKS - 1, MAX_TICKS]) {
                let hits: Vec<_> = r.iter().filter(|x| x.0 <= t && t <= x.1).collect();
                assert_eq!(hits.len(), 1, "slo {slo} t {t}: {hits:?}");
                let ns = u128::from(t) * 1000;
                let b = (ns * 16 / u128::from(slo)).min(63) as usize;
                assert_eq!(
                    (hits[0].2, hits[0].3),
                    (b, ns > u128::from(slo)),
                    "slo {slo} t {t}"
                );
            }
        }
    }

    #[test]
    fn thresholds_are_chance_on_53_bits() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(-1.0), 0);
        assert_eq!(threshold(0.5), 1 << 52);
        assert_eq!(threshold(1.0), 1 << 53);
        for p in [0.01, 0.07, 0.33, 0.99] {
            let t = threshold(p);
            // u < t exactly when u * 2^-53 < p (Rng::chance).
            let below = |u: u64| (u as f64) * (1.0 / (1u64 << 53) as f64) < p;
            assert!(below(t - 1) && !below(t), "{p}");
        }
    }
}
