//! The throughput under a p99 SLO: the highest offered load whose p99 latency stays within
//! the SLO, found by bisection between a load that meets it and one that does not (the
//! same seed at every load: the same arrivals, scaled).

use super::measure::Outcome;

/// What a search found.
#[derive(Clone, Debug)]
pub struct Found {
    /// The highest load that met the SLO (`None`: not even the lowest tried).
    pub best: Option<Outcome>,
    /// The lowest load that failed it.
    pub fail: Option<Outcome>,
    pub runs: usize,
}

impl Found {
    /// The achieved throughput at the best load (0 if none).
    pub fn throughput(&self) -> f64 {
        self.best.as_ref().map_or(0.0, |o| o.achieved)
    }
}

/// Bisects the offered load in `[lo, hi]` for `steps` rounds (`hi` is raised by half while
/// it still meets the SLO); `run(load)` runs one load and `meets` judges it.
pub fn max_under_slo(
    lo: f64,
    hi: f64,
    steps: usize,
    meets: impl Fn(&Outcome) -> bool,
    mut run: impl FnMut(f64) -> Outcome,
) -> Found {
    let (mut lo, mut hi) = (lo, hi);
    let mut f = Found {
        best: None,
        fail: None,
        runs: 0,
    };
    let mut raised = 0;
    loop {
        let o = run(hi);
        f.runs += 1;
        if !meets(&o) {
            f.fail = Some(o);
            break;
        }
        f.best = Some(o);
        lo = hi;
        hi *= 1.5;
        raised += 1;
        if raised == 4 {
            return f;
        }
    }
    if f.best.is_none() {
        let o = run(lo);
        f.runs += 1;
        if !meets(&o) {
            f.fail = Some(o);
            return f;
        }
        f.best = Some(o);
    }
    for _ in 0..steps {
        let mid = (lo + hi) / 2.0;
        let o = run(mid);
        f.runs += 1;
        if meets(&o) {
            lo = mid;
            f.best = Some(o);
        } else {
            hi = mid;
            f.fail = Some(o);
        }
    }
    f
}
