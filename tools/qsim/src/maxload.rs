//! "Max load @ SLO" (thesis 6.3.1): the highest load, as a fraction of saturation n/S̄, whose
//! p99 latency meets the SLO, found by bisection. All probes use the same seed, so the request
//! stream only stretches in time between probes and the p99 moves (almost) monotonically.

use serde::Serialize;

use crate::{QsimError, SimConfig, simulate};

/// Result of a max-load search.
#[derive(Debug, Clone, Serialize)]
pub struct MaxLoad {
    pub model: String,
    pub dist: String,
    pub workers: usize,
    /// SLO on the p99 latency, in units of S̄.
    pub slo: f64,
    /// Highest load found that meets the SLO (0 if even `lo` misses it).
    pub max_load: f64,
    /// Simulations run.
    pub probes: usize,
}

/// Bisect the load in [0.01, 1.0] to `tol` for `base.model`, SLO `base.slo`.
pub fn max_load(base: &SimConfig, tol: f64) -> Result<MaxLoad, QsimError> {
    let meets = |load: f64| -> Result<bool, QsimError> {
        let r = simulate(&SimConfig {
            load,
            ..base.clone()
        })?;
        Ok(r.p99.value <= base.slo * base.mean)
    };
    let (mut lo, mut hi) = (0.01, 1.0);
    let mut probes = 1;
    let found = if !meets(lo)? {
        0.0
    } else {
        probes += 1;
        if meets(hi - 1e-3)? {
            hi - 1e-3
        } else {
            while hi - lo > tol {
                let mid = 0.5 * (lo + hi);
                probes += 1;
                if meets(mid)? {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            lo
        }
    };
    Ok(MaxLoad {
        model: base.model.to_string(),
        dist: base.service.to_string(),
        workers: base.workers,
        slo: base.slo,
        max_load: found,
        probes,
    })
}
