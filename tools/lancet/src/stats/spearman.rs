//! Spearman rank autocorrelation of a latency series ordered by send time (thesis 4.4.3,
//! "Unbiased Result Processing"): a significant correlation at lag k means samples close in
//! time depend on each other (queued back to back), so the sampling rate must drop.
//!
//! The coefficient and its two-sided p-value match SciPy's `spearmanr` (average ranks for ties,
//! Student-t with n-2 degrees of freedom).

use super::{StatsError, special};

/// Spearman correlation at one lag.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LagCorrelation {
    pub lag: usize,
    pub rho: f64,
    pub p_value: f64,
}

/// Ranks 1..=n with ties given their average rank.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|a, b| xs[*a].total_cmp(&xs[*b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            r[*k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0)
}

/// Spearman's rho between two equally long series and its two-sided p-value. A constant
/// series has no rank correlation: rho 0, p 1.
pub fn spearman(a: &[f64], b: &[f64]) -> Result<(f64, f64), StatsError> {
    if a.len() != b.len() || a.len() < 3 {
        return Err(StatsError::TooFew {
            need: 3,
            got: a.len().min(b.len()),
        });
    }
    let rho = pearson(&ranks(a), &ranks(b));
    let df = (a.len() - 2) as f64;
    if rho.abs() >= 1.0 {
        return Ok((rho, 0.0));
    }
    let t = rho * (df / ((1.0 - rho) * (1.0 + rho))).sqrt();
    Ok((rho, (2.0 * special::t_sf(t.abs(), df)).min(1.0)))
}

/// Spearman correlation of `xs[..n-k]` with `xs[k..]` for k = 1..=max_lag.
pub fn autocorrelation(xs: &[f64], max_lag: usize) -> Result<Vec<LagCorrelation>, StatsError> {
    (1..=max_lag)
        .map(|lag| {
            if xs.len() < lag + 3 {
                return Err(StatsError::TooFew {
                    need: lag + 3,
                    got: xs.len(),
                });
            }
            let (rho, p_value) = spearman(&xs[..xs.len() - lag], &xs[lag..])?;
            Ok(LagCorrelation { lag, rho, p_value })
        })
        .collect()
}

/// Outcome of the iid check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IidCheck {
    /// No significant correlation at lag 1.
    pub iid: bool,
    /// The smallest lag whose correlation is not significant (the factor to divide the
    /// sampling rate by); `None` if every lag up to the maximum is significant.
    pub first_insignificant_lag: Option<usize>,
    pub lags: Vec<LagCorrelation>,
}

/// Check independence: correlations at lags 1..=max_lag tested at level `alpha`.
pub fn iid_check(xs: &[f64], max_lag: usize, alpha: f64) -> Result<IidCheck, StatsError> {
    let lags = autocorrelation(xs, max_lag)?;
    let first = lags.iter().find(|l| l.p_value >= alpha).map(|l| l.lag);
    Ok(IidCheck {
        iid: first == Some(1),
        first_insignificant_lag: first,
        lags,
    })
}
