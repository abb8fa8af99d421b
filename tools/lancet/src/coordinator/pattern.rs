//! Load patterns over the per-load methodology: a fixed load, a step sweep, and the search for
//! the highest load whose tail latency meets an SLO ("max load @ SLO", numbers.md).

use serde::Serialize;

use super::{LoadResult, Settings, measure_load};
use crate::control::{AgentClient, AgentError};
use crate::workload::Workload;

/// Load pattern over one or more target loads.
#[derive(Debug, Clone)]
pub enum Pattern {
    Fixed(f64),
    Sweep(Vec<f64>),
    /// Highest load whose p`percentile` meets `slo_us`, searched between `lo` and `hi` in
    /// `steps` bisections.
    MaxAtSlo {
        lo: f64,
        hi: f64,
        slo_us: f64,
        steps: usize,
    },
}

/// Results over a pattern (and, for max@SLO, the answer).
#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub points: Vec<LoadResult>,
    pub max_load_at_slo: Option<f64>,
}

/// Run a pattern.
pub fn run_pattern(
    agents: &mut [AgentClient],
    w: &Workload,
    pattern: &Pattern,
    s: &Settings,
    progress: &dyn Fn(String),
) -> Result<Experiment, AgentError> {
    let mut points = Vec::new();
    let mut max_ok = None;
    match pattern {
        Pattern::Fixed(r) => points.push(measure_load(agents, w, *r, s, progress)?),
        Pattern::Sweep(rs) => {
            for r in rs {
                points.push(measure_load(agents, w, *r, s, progress)?);
            }
        }
        Pattern::MaxAtSlo {
            lo,
            hi,
            slo_us,
            steps,
        } => {
            max_ok = bisect(*lo, *hi, *steps, |mid| {
                let r = measure_load(agents, w, mid, s, progress)?;
                let tail = r
                    .percentiles
                    .iter()
                    .find(|p| (p.p - s.ci_percentile).abs() < 1e-9)
                    .map(|p| p.estimate_us);
                let ok = r.conclusive && tail.is_some_and(|t| t <= *slo_us);
                points.push(r);
                Ok(ok)
            })?;
        }
    }
    Ok(Experiment {
        points,
        max_load_at_slo: max_ok,
    })
}

/// Bisection for the highest load in (lo, hi) that `meets` the SLO, probing `steps` midpoints;
/// `None` if no probe met it. An inconclusive point counts as a miss.
pub fn bisect<E>(
    mut lo: f64,
    mut hi: f64,
    steps: usize,
    mut meets: impl FnMut(f64) -> Result<bool, E>,
) -> Result<Option<f64>, E> {
    let mut best = None;
    for _ in 0..steps {
        let mid = (lo + hi) / 2.0;
        if meets(mid)? {
            lo = mid;
            best = Some(mid);
        } else {
            hi = mid;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisect_finds_the_knee() {
        let mut probes = Vec::new();
        let r: Result<_, ()> = bisect(0.0, 1000.0, 6, |x| {
            probes.push(x);
            Ok(x <= 600.0)
        });
        let best = r.unwrap().unwrap();
        assert!(best <= 600.0 && best > 600.0 - 1000.0 / 64.0, "{best}");
        assert_eq!(probes.len(), 6);
        let none: Result<_, ()> = bisect(0.0, 1000.0, 3, |_| Ok(false));
        assert_eq!(none.unwrap(), None);
    }
}
