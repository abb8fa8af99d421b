//! Small statistics: estimates with confidence intervals from batch means, Student-t quantiles,
//! order-statistic percentiles.

use serde::Serialize;

/// A point estimate and the half-width of its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    /// Half-width of the 95 % confidence interval (batch means, Student t).
    pub ci95: f64,
}

impl Estimate {
    /// Does `x` lie within `k` half-widths (plus `slack`) of the estimate?
    pub fn contains(&self, x: f64, k: f64, slack: f64) -> bool {
        (self.value - x).abs() <= k * self.ci95 + slack
    }

    /// From a pooled point estimate and per-batch values.
    pub fn from_batches(value: f64, batches: &[f64]) -> Self {
        let b = batches.len();
        if b < 2 {
            return Self {
                value,
                ci95: f64::INFINITY,
            };
        }
        let m = batches.iter().sum::<f64>() / b as f64;
        let var = batches.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (b - 1) as f64;
        Self {
            value,
            ci95: t_quantile(0.975, b - 1) * (var / b as f64).sqrt(),
        }
    }
}

/// Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student-t quantile with `df` degrees of freedom (Cornish-Fisher expansion around the normal
/// quantile; within 0.5 % of the tables for df >= 5 at the 97.5 % point).
pub fn t_quantile(p: f64, df: usize) -> f64 {
    let z = normal_quantile(p);
    let n = df.max(1) as f64;
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    let z7 = z5 * z * z;
    z + (z3 + z) / (4.0 * n)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * n * n)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * n * n * n)
}

/// The `q`-quantile (0 < q < 1) of `xs` by order statistic (nearest rank); reorders `xs`.
/// NaN for an empty slice.
pub fn quantile_in_place(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1;
    let (_, v, _) = xs.select_nth_unstable_by(rank, f64::total_cmp);
    *v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!((normal_quantile(0.01) + 2.326348).abs() < 1e-5);
        // t tables: df 19 -> 2.093, df 9 -> 2.262, df 4 -> 2.776.
        assert!((t_quantile(0.975, 19) - 2.093).abs() < 0.002);
        assert!((t_quantile(0.975, 9) - 2.262).abs() < 0.005);
        assert!((t_quantile(0.975, 4) - 2.776).abs() < 0.03);
    }

    #[test]
    fn nearest_rank_quantile() {
        let mut xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_in_place(&mut xs, 0.99), 99.0);
        assert_eq!(quantile_in_place(&mut xs, 0.5), 50.0);
        assert!(quantile_in_place(&mut [], 0.5).is_nan());
    }

    #[test]
    fn batch_ci() {
        let e = Estimate::from_batches(2.0, &[1.0, 3.0, 1.0, 3.0]);
        // sd = 1.1547, /sqrt(4) = 0.577, t(3) ~ 3.18
        assert!(e.ci95 > 1.6 && e.ci95 < 2.0, "{e:?}");
        assert!(e.contains(3.0, 1.0, 0.0));
    }
}
