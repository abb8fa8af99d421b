//! Service-time distributions: a [`Shape`] (what a spec string names) scaled to a mean becomes a
//! [`Dist`] that samples. The named shapes are the thesis's (6.2; numbers.md "Workload
//! vocabulary"): deterministic, exponential, bimodal-1 (P[S̄/2]=0.9, P[5.5·S̄]=0.1), bimodal-2
//! (P[S̄/2]=0.999, P[500.5·S̄]=0.001), plus Lancet's lognormal, Pareto, uniform and gamma and an
//! empirical distribution read from a file.

use std::fmt;
use std::sync::Arc;

use rand::Rng as _;
use rand_distr::{Distribution, Exp1, Gamma, LogNormal};

use crate::{DistError, Empirical, Rng};

/// A distribution family with its shape parameters, not yet scaled to a mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Always the mean.
    Deterministic,
    /// Exponential.
    Exponential,
    /// Two values: `lo`·mean with probability `p`, otherwise `hi`·mean; `hi` is chosen so the
    /// mean is exact (`p·lo + (1-p)·hi = 1`).
    Bimodal { p: f64, lo: f64, hi: f64 },
    /// Lognormal with log-space standard deviation `sigma`.
    Lognormal { sigma: f64 },
    /// Pareto (type I) with tail index `alpha` > 1.
    Pareto { alpha: f64 },
    /// Uniform on mean·[1-spread, 1+spread], 0 <= spread <= 1.
    Uniform { spread: f64 },
    /// Gamma with shape parameter `k`.
    Gamma { k: f64 },
    /// Values from a file, rescaled to the mean.
    Empirical(Arc<Empirical>),
}

impl Shape {
    /// bimodal-1 of the thesis: P[S̄/2] = 0.9, P[5.5·S̄] = 0.1.
    pub const BIMODAL_1: Shape = Shape::Bimodal {
        p: 0.9,
        lo: 0.5,
        hi: 5.5,
    };
    /// bimodal-2 of the thesis: P[S̄/2] = 0.999, P[500.5·S̄] = 0.001.
    pub const BIMODAL_2: Shape = Shape::Bimodal {
        p: 0.999,
        lo: 0.5,
        hi: 500.5,
    };

    /// Scale to `mean` (> 0, finite).
    pub fn with_mean(&self, mean: f64) -> Result<Dist, DistError> {
        if !(mean.is_finite() && mean > 0.0) {
            return Err(DistError::BadMean(mean));
        }
        let sampler = match self {
            Shape::Deterministic => Sampler::Det,
            Shape::Exponential => Sampler::Exp,
            Shape::Bimodal { p, lo, hi } => Sampler::Bimodal {
                p: *p,
                lo: lo * mean,
                hi: hi * mean,
            },
            Shape::Lognormal { sigma } => {
                let mu = mean.ln() - sigma * sigma / 2.0;
                Sampler::Lognormal(LogNormal::new(mu, *sigma).map_err(|_| bad("sigma", sigma))?)
            }
            Shape::Pareto { alpha } => Sampler::Pareto {
                scale: mean * (alpha - 1.0) / alpha,
                inv_alpha: 1.0 / alpha,
            },
            Shape::Uniform { spread } => Sampler::Uniform {
                lo: mean * (1.0 - spread),
                width: 2.0 * mean * spread,
            },
            Shape::Gamma { k } => {
                Sampler::Gamma(Gamma::new(*k, mean / k).map_err(|_| bad("k", k))?)
            }
            Shape::Empirical(e) => Sampler::Empirical(Arc::clone(e)),
        };
        Ok(Dist {
            shape: self.clone(),
            mean,
            sampler,
        })
    }

    /// Squared coefficient of variation (variance / mean²); infinite for Pareto with alpha <= 2.
    pub fn scv(&self) -> f64 {
        match self {
            Shape::Deterministic => 0.0,
            Shape::Exponential => 1.0,
            Shape::Bimodal { p, lo, hi } => p * lo * lo + (1.0 - p) * hi * hi - 1.0,
            Shape::Lognormal { sigma } => (sigma * sigma).exp_m1(),
            Shape::Pareto { alpha } if *alpha > 2.0 => 1.0 / (alpha * (alpha - 2.0)),
            Shape::Pareto { .. } => f64::INFINITY,
            Shape::Uniform { spread } => spread * spread / 3.0,
            Shape::Gamma { k } => 1.0 / k,
            Shape::Empirical(e) => e.cv() * e.cv(),
        }
    }
}

fn bad(param: &str, v: &f64) -> DistError {
    DistError::BadParam {
        param: param.to_owned(),
        value: v.to_string(),
        why: "out of range",
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Deterministic => write!(f, "det"),
            Shape::Exponential => write!(f, "exp"),
            s if *s == Shape::BIMODAL_1 => write!(f, "bimodal-1"),
            s if *s == Shape::BIMODAL_2 => write!(f, "bimodal-2"),
            Shape::Bimodal { p, lo, .. } => write!(f, "bimodal:p={p},lo={lo}"),
            Shape::Lognormal { sigma } => write!(f, "lognormal:sigma={sigma}"),
            Shape::Pareto { alpha } => write!(f, "pareto:alpha={alpha}"),
            Shape::Uniform { spread } => write!(f, "uniform:spread={spread}"),
            Shape::Gamma { k } => write!(f, "gamma:k={k}"),
            Shape::Empirical(e) => write!(f, "file:{}", e.path().display()),
        }
    }
}

/// The per-shape sampling state, with the mean folded in.
#[derive(Debug, Clone)]
enum Sampler {
    Det,
    Exp,
    Bimodal { p: f64, lo: f64, hi: f64 },
    Lognormal(LogNormal<f64>),
    Pareto { scale: f64, inv_alpha: f64 },
    Uniform { lo: f64, width: f64 },
    Gamma(Gamma<f64>),
    Empirical(Arc<Empirical>),
}

/// A distribution scaled to a mean, ready to sample.
#[derive(Debug, Clone)]
pub struct Dist {
    shape: Shape,
    mean: f64,
    sampler: Sampler,
}

impl Dist {
    /// The family and shape parameters.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The mean (S̄).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Standard deviation (infinite where the variance is).
    pub fn std_dev(&self) -> f64 {
        self.mean * self.shape.scv().sqrt()
    }

    /// One draw (>= 0).
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match &self.sampler {
            Sampler::Det => self.mean,
            Sampler::Exp => {
                let e: f64 = rng.sample(Exp1);
                e * self.mean
            }
            Sampler::Bimodal { p, lo, hi } => {
                if rng.random::<f64>() < *p {
                    *lo
                } else {
                    *hi
                }
            }
            Sampler::Lognormal(d) => d.sample(rng),
            Sampler::Pareto { scale, inv_alpha } => {
                // 1 - U is in (0, 1], so the power is finite.
                let u: f64 = 1.0 - rng.random::<f64>();
                scale * u.powf(-inv_alpha)
            }
            Sampler::Uniform { lo, width } => lo + width * rng.random::<f64>(),
            Sampler::Gamma(d) => d.sample(rng),
            Sampler::Empirical(e) => self.mean * e.sample_unit(rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(shape: &Shape, n: usize) -> (f64, f64) {
        let d = shape.with_mean(2.0).unwrap();
        let mut r = crate::rng(7);
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut r)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        (m, v)
    }

    #[test]
    fn means_and_variances_match_the_shape() {
        // Each shape scaled to mean 2 must have sample mean 2 and variance 4·scv (to within
        // sampling error; heavy tails get wider tolerances).
        let cases = [
            (Shape::Deterministic, 1e-12, 1e-12),
            (Shape::Exponential, 0.01, 0.05),
            (Shape::BIMODAL_1, 0.01, 0.05),
            (Shape::Lognormal { sigma: 0.5 }, 0.01, 0.05),
            (Shape::Pareto { alpha: 3.5 }, 0.01, 0.2),
            (Shape::Uniform { spread: 1.0 }, 0.01, 0.05),
            (Shape::Gamma { k: 2.0 }, 0.01, 0.05),
        ];
        for (shape, mtol, vtol) in cases {
            let (m, v) = moments(&shape, 400_000);
            let want_v = 4.0 * shape.scv();
            assert!((m - 2.0).abs() <= 2.0 * mtol, "{shape}: mean {m}");
            assert!(
                (v - want_v).abs() <= want_v.max(1e-9) * vtol + 1e-12,
                "{shape}: var {v} want {want_v}"
            );
        }
    }

    #[test]
    fn bimodal_2_values_and_mean() {
        let d = Shape::BIMODAL_2.with_mean(1.0).unwrap();
        let mut r = crate::rng(1);
        let mut long = 0;
        for _ in 0..1_000_000 {
            let s = d.sample(&mut r);
            assert!(s == 0.5 || s == 500.5);
            long += usize::from(s > 1.0);
        }
        // P[long] = 0.001: 1000 expected, sd ~ 32.
        assert!((850..1150).contains(&long), "{long}");
        assert!(
            (Shape::BIMODAL_2.scv() + 1.0 - (0.999 * 0.25 + 0.001 * 500.5 * 500.5)).abs() < 1e-9
        );
    }

    #[test]
    fn same_seed_same_stream() {
        let d = Shape::Gamma { k: 0.5 }.with_mean(3.0).unwrap();
        let a: Vec<f64> = {
            let mut r = crate::rng(42);
            (0..100).map(|_| d.sample(&mut r)).collect()
        };
        let mut r = crate::rng(42);
        assert!(a.iter().all(|x| *x == d.sample(&mut r)));
    }

    #[test]
    fn bad_mean_is_an_error() {
        assert!(Shape::Exponential.with_mean(0.0).is_err());
        assert!(Shape::Exponential.with_mean(f64::NAN).is_err());
    }
}
