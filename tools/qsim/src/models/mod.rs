//! The queueing models. Each is a function that pulls requests from a [`Source`] in arrival
//! order and reports every completion (or drop) to a [`Recorder`]; [`simulate`] picks one.
//!
//! Most models need no general event list: with FCFS at each worker a request's departure is
//! known the moment it is placed (Kiefer-Wolfowitz style), which is what makes qsim fast.
//! Models where placement depends on later events (JBSQ feedback, CSCQ, ZygOS stealing, PS)
//! keep a small heap of pending events.

mod cscq;
pub(crate) mod fcfs;
mod jbsq;
mod jsq;
mod priority;
mod ps;
mod sven;
mod time;
mod zygos;

use crate::config::Source;
use crate::recorder::Recorder;
use crate::{Model, QsimError, RunResult, SimConfig};

pub use cscq::fast_workers;

/// Run one simulation.
pub fn simulate(cfg: &SimConfig) -> Result<RunResult, QsimError> {
    cfg.validate()?;
    let mut src = Source::new(cfg)?;
    let mut rec = Recorder::new(cfg);
    let n = cfg.workers;
    match &cfg.model {
        Model::CentralFcfs => fcfs::central(&mut src, &mut rec, n),
        Model::PartitionedFcfs => fcfs::partitioned(&mut src, &mut rec, n, fcfs::Assign::Random),
        Model::RoundRobin => fcfs::partitioned(&mut src, &mut rec, n, fcfs::Assign::RoundRobin),
        Model::CentralPs => ps::central(&mut src, &mut rec, n),
        Model::PartitionedPs => ps::partitioned(&mut src, &mut rec, n),
        Model::Jsq => jsq::shortest(&mut src, &mut rec, n, n),
        Model::PowerOfD { d } => jsq::shortest(&mut src, &mut rec, n, (*d).min(n)),
        Model::Jbsq { depth, delay } => jbsq::run(&mut src, &mut rec, n, *depth, *delay),
        Model::Edf { factor } => {
            let f = *factor;
            priority::central(&mut src, &mut rec, n, move |a, s| a + f * s)
        }
        Model::Sjf => priority::central(&mut src, &mut rec, n, |_, s| s),
        Model::Cscq { fast, threshold } => {
            let thr = threshold * cfg.mean;
            let k = fast.unwrap_or_else(|| fast_workers(&cfg.service, *threshold, n));
            cscq::run(&mut src, &mut rec, n, k, thr)
        }
        Model::Zygos(p) => zygos::run(&mut src, &mut rec, n, p),
        Model::Sven(p) => sven::run(&mut src, &mut rec, n, p, cfg.slo * cfg.mean),
    }
    Ok(rec.finish(cfg))
}

/// Index and value of the smallest element (first on ties); `xs` is non-empty.
#[inline]
pub(crate) fn argmin(xs: &[f64]) -> (usize, f64) {
    let mut best = (0, xs[0]);
    for (i, &x) in xs.iter().enumerate().skip(1) {
        if x < best.1 {
            best = (i, x);
        }
    }
    best
}
