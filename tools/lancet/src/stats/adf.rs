//! Augmented Dickey-Fuller test of the latency series ordered by send time (thesis 4.4.3,
//! "Result Stationarity"). H0: the series has a unit root (is not stationary); a small p-value
//! means stationary.
//!
//! Matches statsmodels' `adfuller(x, regression="c", autolag="AIC")`: regression
//! Δy_t = α + γ·y_{t-1} + Σ_{i=1..p} δ_i·Δy_{t-i}; p chosen by AIC among 0..=maxlag on a common
//! sample (maxlag = ⌈12·(n/100)^¼⌉ capped at n/2 - 2), then refitted on all usable rows; the
//! statistic is γ's t-value; p-value from MacKinnon (1994) and critical values from MacKinnon
//! (2010), constant-only, one variable.

// Small dense matrices: index loops read like the algebra.
#![allow(clippy::needless_range_loop)]

use super::{StatsError, special};

/// ADF test result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdfResult {
    pub statistic: f64,
    pub p_value: f64,
    pub used_lag: usize,
    pub nobs: usize,
    /// Critical values at 1 %, 5 %, 10 %.
    pub critical: [f64; 3],
}

impl AdfResult {
    /// Stationary at significance `alpha` (the unit-root hypothesis is rejected).
    pub fn stationary(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// Normal equations for the regressors [1, y_{t-1}, Δy_{t-1}, ..., Δy_{t-lags}].
struct Normal {
    xtx: Vec<Vec<f64>>,
    xty: Vec<f64>,
    yty: f64,
    nobs: usize,
}

fn row(x: &[f64], dx: &[f64], t: usize, lags: usize, out: &mut Vec<f64>) {
    out.clear();
    out.push(1.0);
    out.push(x[t]);
    for i in 1..=lags {
        out.push(dx[t - i]);
    }
}

fn normal_equations(x: &[f64], dx: &[f64], lags: usize) -> Normal {
    let k = 2 + lags;
    let mut xtx = vec![vec![0.0; k]; k];
    let mut xty = vec![0.0; k];
    let mut yty = 0.0;
    let mut r = Vec::with_capacity(k);
    for t in lags..dx.len() {
        row(x, dx, t, lags, &mut r);
        let y = dx[t];
        yty += y * y;
        for i in 0..k {
            xty[i] += r[i] * y;
            for j in 0..=i {
                xtx[i][j] += r[i] * r[j];
            }
        }
    }
    for i in 0..k {
        for j in 0..i {
            xtx[j][i] = xtx[i][j];
        }
    }
    Normal {
        xtx,
        xty,
        yty,
        nobs: dx.len() - lags,
    }
}

/// Cholesky factor of the leading k×k block, or None if not positive definite.
fn cholesky(a: &[Vec<f64>], k: usize) -> Option<Vec<Vec<f64>>> {
    let mut l = vec![vec![0.0; k]; k];
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|m| l[i][m] * l[j][m]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

fn solve(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let k = l.len();
    let mut z = vec![0.0; k];
    for i in 0..k {
        z[i] = (b[i] - (0..i).map(|m| l[i][m] * z[m]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        x[i] = (z[i] - (i + 1..k).map(|m| l[m][i] * x[m]).sum::<f64>()) / l[i][i];
    }
    x
}

/// Run the test with automatic (AIC) lag selection.
pub fn adf(x: &[f64]) -> Result<AdfResult, StatsError> {
    let n = x.len();
    if n < 12 {
        return Err(StatsError::TooFew { need: 12, got: n });
    }
    let maxlag = ((12.0 * (n as f64 / 100.0).powf(0.25)).ceil() as usize).min(n / 2 - 2);
    let dx: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    // Autolag on the common sample of the largest lag.
    let ne = normal_equations(x, &dx, maxlag);
    let nobs = ne.nobs as f64;
    let mut best: Option<(f64, usize)> = None;
    for p in 0..=maxlag {
        let k = 2 + p;
        let Some(l) = cholesky(&ne.xtx, k) else {
            continue;
        };
        let b = solve(&l, &ne.xty[..k]);
        let ssr = (ne.yty - b.iter().zip(&ne.xty).map(|(b, y)| b * y).sum::<f64>()).max(1e-300);
        let aic =
            nobs * ((2.0 * std::f64::consts::PI).ln() + (ssr / nobs).ln() + 1.0) + 2.0 * k as f64;
        if best.is_none_or(|(a, _)| aic < a) {
            best = Some((aic, p));
        }
    }
    let Some((_, lag)) = best else {
        return Err(StatsError::Degenerate(
            "ADF regression is singular (constant series?)",
        ));
    };
    // Refit with the chosen lag on every usable row.
    let ne = normal_equations(x, &dx, lag);
    let k = 2 + lag;
    let l = cholesky(&ne.xtx, k).ok_or(StatsError::Degenerate(
        "ADF regression is singular (constant series?)",
    ))?;
    let b = solve(&l, &ne.xty);
    let mut ssr = 0.0;
    let mut r = Vec::with_capacity(k);
    for t in lag..dx.len() {
        row(x, &dx, t, lag, &mut r);
        let e = dx[t] - r.iter().zip(&b).map(|(a, b)| a * b).sum::<f64>();
        ssr += e * e;
    }
    let sigma2 = ssr / (ne.nobs - k) as f64;
    let mut unit = vec![0.0; k];
    unit[1] = 1.0;
    let inv11 = solve(&l, &unit)[1];
    let statistic = b[1] / (sigma2 * inv11).sqrt();
    Ok(AdfResult {
        statistic,
        p_value: mackinnon_p(statistic),
        used_lag: lag,
        nobs: ne.nobs,
        critical: mackinnon_crit(ne.nobs),
    })
}

/// MacKinnon (1994) approximate p-value, constant only, N = 1 (statsmodels `mackinnonp`).
pub fn mackinnon_p(t: f64) -> f64 {
    const TAU_MAX: f64 = 2.74;
    const TAU_MIN: f64 = -18.83;
    const TAU_STAR: f64 = -1.61;
    const SMALL: [f64; 3] = [2.1659, 1.4412, 0.038269];
    const LARGE: [f64; 4] = [1.7339, 0.93202, -0.12745, -0.010368];
    if t > TAU_MAX {
        return 1.0;
    }
    if t < TAU_MIN {
        return 0.0;
    }
    let coef: &[f64] = if t <= TAU_STAR { &SMALL } else { &LARGE };
    let z = coef.iter().rev().fold(0.0, |acc, c| acc * t + c);
    special::norm_cdf(z)
}

/// MacKinnon (2010) critical values (1 %, 5 %, 10 %), constant only, N = 1.
pub fn mackinnon_crit(nobs: usize) -> [f64; 3] {
    const TAU: [[f64; 4]; 3] = [
        [-3.43035, -6.5393, -16.786, -79.433],
        [-2.86154, -2.8903, -4.234, -40.04],
        [-2.56677, -1.5384, -2.809, 0.0],
    ];
    let u = 1.0 / nobs as f64;
    TAU.map(|c| c[0] + c[1] * u + c[2] * u * u + c[3] * u * u * u)
}
