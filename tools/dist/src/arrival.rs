//! Inter-arrival processes: Poisson (the thesis's open-loop default), deterministic (evenly
//! spaced), or a trace file of gaps replayed in order and rescaled to the target rate.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rand::Rng as _;
use rand_distr::Exp1;

use crate::parse::split_spec;
use crate::{DistError, Empirical, Rng};

/// Which arrival process; [`ArrivalSpec::with_rate`] fixes the rate.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalSpec {
    /// Exponential gaps (`poisson`).
    Poisson,
    /// Constant gaps (`det`).
    Deterministic,
    /// Gaps from a file, in file order, cycled, rescaled to mean 1/rate (`trace:PATH`).
    Trace(Arc<Empirical>),
}

impl ArrivalSpec {
    /// A process with `rate` arrivals per time unit.
    pub fn with_rate(&self, rate: f64) -> Result<ArrivalProcess, DistError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(DistError::BadMean(1.0 / rate));
        }
        Ok(ArrivalProcess {
            spec: self.clone(),
            mean_gap: 1.0 / rate,
            next: 0,
        })
    }
}

impl FromStr for ArrivalSpec {
    type Err = DistError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("trace:") {
            return Ok(ArrivalSpec::Trace(Arc::new(Empirical::from_file(
                Path::new(path),
            )?)));
        }
        match split_spec(spec).0 {
            "poisson" | "m" | "exp" => Ok(ArrivalSpec::Poisson),
            "det" | "d" | "fixed" => Ok(ArrivalSpec::Deterministic),
            _ => Err(DistError::UnknownArrival(spec.to_owned())),
        }
    }
}

impl fmt::Display for ArrivalSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArrivalSpec::Poisson => write!(f, "poisson"),
            ArrivalSpec::Deterministic => write!(f, "det"),
            ArrivalSpec::Trace(e) => write!(f, "trace:{}", e.path().display()),
        }
    }
}

/// A running arrival process: call [`ArrivalProcess::next_gap`] for each inter-arrival time.
#[derive(Debug, Clone)]
pub struct ArrivalProcess {
    spec: ArrivalSpec,
    mean_gap: f64,
    next: usize,
}

impl ArrivalProcess {
    /// Mean gap (1/rate).
    pub fn mean_gap(&self) -> f64 {
        self.mean_gap
    }

    /// The time from the previous arrival to the next.
    #[inline]
    pub fn next_gap(&mut self, rng: &mut Rng) -> f64 {
        match &self.spec {
            ArrivalSpec::Poisson => {
                let e: f64 = rng.sample(Exp1);
                e * self.mean_gap
            }
            ArrivalSpec::Deterministic => self.mean_gap,
            ArrivalSpec::Trace(e) => {
                let v = e.unit_values();
                let g = v[self.next % v.len()];
                self.next = (self.next + 1) % v.len();
                g * self.mean_gap
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_rate_and_det_gaps() {
        let mut r = crate::rng(3);
        let mut p = ArrivalSpec::Poisson.with_rate(4.0).unwrap();
        let n = 200_000;
        let total: f64 = (0..n).map(|_| p.next_gap(&mut r)).sum();
        assert!((total / n as f64 - 0.25).abs() < 0.0025);
        let mut d = ArrivalSpec::Deterministic.with_rate(2.0).unwrap();
        assert_eq!(d.next_gap(&mut r), 0.5);
    }

    #[test]
    fn trace_replays_in_order_rescaled() {
        let e = Empirical::from_text(Path::new("t"), "1\n3\n").unwrap();
        let mut t = ArrivalSpec::Trace(Arc::new(e)).with_rate(0.5).unwrap();
        let mut r = crate::rng(0);
        let gaps: Vec<f64> = (0..4).map(|_| t.next_gap(&mut r)).collect();
        assert_eq!(gaps, [1.0, 3.0, 1.0, 3.0]);
    }

    #[test]
    fn parse() {
        assert_eq!(
            "poisson".parse::<ArrivalSpec>().unwrap(),
            ArrivalSpec::Poisson
        );
        assert_eq!(
            "det".parse::<ArrivalSpec>().unwrap(),
            ArrivalSpec::Deterministic
        );
        assert!(
            "bursty"
                .parse::<ArrivalSpec>()
                .unwrap_err()
                .to_string()
                .contains("bursty")
        );
        assert!(ArrivalSpec::Poisson.with_rate(0.0).is_err());
    }
}
