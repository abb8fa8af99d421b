//! qsim: a fast discrete-event simulator for the queueing models of the thesis ferrix builds on
//! (chapter 3's method; models of 6.2, 6.7.2, 8.3, 10.3, 11.3). It runs open-loop queueing models
//! (Poisson or other arrivals, any `ferrix-dist` service distribution, n workers, many policies),
//! reports latency percentiles with confidence intervals, sweeps load, searches the max load at
//! an SLO, writes CSV/JSON and draws PNG plots, and regenerates the thesis figures.
//!
//! The `qsim` binary is a thin wrapper over [`main_with_args`], which the `ferrix` command can
//! also call to offer `ferrix qsim ...`.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod config;
pub mod error;
pub mod figures;
pub mod maxload;
pub mod model;
pub mod models;
pub mod output;
pub mod plot;
pub mod recorder;
pub mod result;
pub mod stats;
pub mod sweep;
pub mod theory;

pub use cli::main_with_args;
pub use config::SimConfig;
pub use error::QsimError;
pub use model::{Model, SvenParams, ZygosParams};
pub use models::simulate;
pub use result::RunResult;
pub use stats::Estimate;
