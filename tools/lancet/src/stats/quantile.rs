//! Confidence intervals for percentiles from order statistics (thesis 4.3, formulas 4.1/4.2):
//! for iid samples the number below the true p-quantile is Binomial(n, p), so two order
//! statistics bracket it with a chosen confidence. [`order_statistic_ci`] uses the exact
//! binomial quantiles (SciPy's `quantile_test(...).confidence_interval`); [`thesis_ci`] is the
//! normal approximation the thesis prints.

use super::special;

/// A percentile estimate with its confidence interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuantileCi {
    /// The quantile in (0, 1), e.g. 0.99.
    pub p: f64,
    /// Nearest-rank estimate: the ⌈n·p⌉-th smallest sample.
    pub estimate: f64,
    /// Lower and upper bounds (sample values); `None` when n is too small for the confidence.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl QuantileCi {
    /// high - low, or infinity when a bound is missing.
    pub fn width(&self) -> f64 {
        match (self.low, self.high) {
            (Some(l), Some(h)) => h - l,
            _ => f64::INFINITY,
        }
    }

    /// True when the two intervals share at least one value.
    pub fn overlaps(&self, other: &QuantileCi) -> bool {
        match (self.low, self.high, other.low, other.high) {
            (Some(a), Some(b), Some(c), Some(d)) => a <= d && c <= b,
            _ => false,
        }
    }
}

/// Nearest-rank estimate of quantile `p` from ascending `sorted`.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let r = ((n as f64 * p).ceil() as usize).clamp(1, n);
    sorted[r - 1]
}

/// Smallest k with P[Y <= k] >= q for Y ~ Binomial(n, p) (SciPy's `binom.ppf`).
fn binom_ppf(q: f64, n: u64, p: f64) -> i64 {
    let (mut lo, mut hi) = (-1i64, n as i64);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if special::binom_cdf(mid, n, p) >= q {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Exact order-statistic interval for quantile `p` at confidence `conf` from ascending
/// `sorted` (indices as in SciPy: low = ppf(α/2) - 1, high = isf(α/2), 0-based).
pub fn order_statistic_ci(sorted: &[f64], p: f64, conf: f64) -> QuantileCi {
    let n = sorted.len();
    let a = (1.0 - conf) / 2.0;
    let low_idx = binom_ppf(a, n as u64, p) - 1;
    // isf(a): smallest k with sf(k) <= a, i.e. cdf(k) >= 1 - a.
    let high_idx = binom_ppf(1.0 - a, n as u64, p);
    QuantileCi {
        p,
        estimate: nearest_rank(sorted, p),
        low: usize::try_from(low_idx).ok().map(|i| sorted[i]),
        high: usize::try_from(high_idx)
            .ok()
            .filter(|i| *i < n)
            .map(|i| sorted[i]),
    }
}

/// The thesis's normal approximation: ranks j = ⌊np - η√(np(1-p))⌋ and
/// k = ⌈np + η√(np(1-p))⌉ + 1 (1-based), η = Φ⁻¹((1+γ)/2).
pub fn thesis_ci(sorted: &[f64], p: f64, conf: f64) -> QuantileCi {
    let n = sorted.len() as f64;
    let eta = special::norm_ppf((1.0 + conf) / 2.0);
    let half = eta * (n * p * (1.0 - p)).sqrt();
    let j = (n * p - half).floor();
    let k = (n * p + half).ceil() + 1.0;
    let at = |r: f64| (r >= 1.0 && r <= n).then(|| sorted[r as usize - 1]);
    QuantileCi {
        p,
        estimate: nearest_rank(sorted, p),
        low: at(j),
        high: at(k),
    }
}
