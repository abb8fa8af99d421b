//! The `ferrix` command as a library: build app images, run them under QEMU or the ferrix
//! shim, benchmark their boot. The binary (`main.rs`) is a thin wrapper over [`cli`]; the
//! integration tests in `tests/` call [`run`] and [`build`] directly.
#![forbid(unsafe_code)]

pub mod bench;
mod bench_guest;
pub mod bench_kv;
mod bench_kv_icount;
pub mod bench_plots;
pub mod bench_r2p2;
pub mod bench_report;
pub mod bench_sched;
mod bench_sched_host;
pub mod bench_udp;
pub mod bootstats;
pub mod build;
pub mod cli;
pub mod demo;
pub mod deploy;
pub mod deploy_config;
mod deploy_local;
pub mod error;
pub mod lancet_point;
pub mod netspec;
pub mod options;
pub mod profile;
pub mod qemu;
pub mod qemu_run;
pub mod run;
pub mod shim;
pub mod size;
pub mod stats_live;
pub mod workspace;

pub use build::build;
pub use error::CliError;
pub use run::{Accel, RunOptions, RunResult, Vmm, run};
pub use workspace::workspace_root;
