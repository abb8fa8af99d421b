//! ferrix-sched-bench: the host half of `ferrix bench sched`.
//!
//! Guest timing under TCG or nested KVM is slowed and distorted, so the policy comparison of
//! thesis 6.6 is also run here, on the host: the real [`ferrix_sched`] scheduler (shuffle queues,
//! flow state machine, remote-call queues, idle-loop decisions, IPI decisions and rate limiter)
//! drives one host thread per simulated core; service times are busy-spun on the real clock;
//! arrivals are a precomputed Poisson open loop over flows homed on cores as RSS would. See
//! `README.md` for the model and its limits.
//!
//! ```no_run
//! use ferrix_sched_bench::{HostBenchOptions, Policy, run, run_point};
//!
//! // The whole bench (about a minute and a half on 2 cores), tables on stdout.
//! let report = run(&HostBenchOptions::default(), &mut std::io::stdout())?;
//! println!("ordering at S̄ = 10 µs: {:?}", report.means[0].ordering);
//!
//! // One point: zygos at 70 % load, S̄ = 10 µs.
//! let p = run_point(Policy::Zygos, 0.7, 10.0, &HostBenchOptions::default())?;
//! println!("p99 {:.1} µs, steals {:.1} %", p.p99_us, 100.0 * p.steal_fraction);
//! # Ok::<(), ferrix_sched_bench::Error>(())
//! ```
#![forbid(unsafe_code)]

mod machine;
pub mod options;
pub mod point;
pub mod report;
pub mod thesis;
mod workload;

pub use ferrix_sched::Policy;
pub use options::{HostBenchOptions, Steering};
pub use point::{PointResult, measure_point, run_point, run_point_retrying};
pub use report::{
    Bracket, HostReport, MeanReport, ModelCurves, ModelMaxLoads, OrderingCheck, PolicyReport,
    model_curves, model_max_loads, run,
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option no run can use.
    #[error("bad option: {0}")]
    BadOption(String),
    /// A distribution rejected its parameters.
    #[error("distribution: {0}")]
    Dist(#[from] ferrix_dist::DistError),
    /// The queueing model failed.
    #[error("queueing model: {0}")]
    Model(#[from] qsim::QsimError),
    /// Writing the report failed.
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
    /// Serialising the report failed.
    #[error("serialising the report: {0}")]
    Json(#[from] serde_json::Error),
    /// A simulated core's thread panicked: a scheduler invariant broke (a bug).
    #[error("a simulated core panicked (scheduler invariant broken)")]
    WorkerPanicked,
}
