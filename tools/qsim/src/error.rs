//! qsim's error type: bad specs, bad options, output failures. Each renders as one line.

use std::path::PathBuf;

/// Everything that can go wrong in qsim short of a bug.
#[derive(Debug, thiserror::Error)]
pub enum QsimError {
    #[error(transparent)]
    Dist(#[from] ferrix_dist::DistError),
    #[error(
        "unknown model '{0}' (try: mg-n-fcfs, partitioned-fcfs, round-robin, mg-n-ps, partitioned-ps, jsq, pl:d=2, jbsq:n=2,delay=0, edf:factor=5, sjf, cscq, zygos:interrupts=1, sven)"
    )]
    UnknownModel(String),
    #[error("model '{model}': {why}")]
    BadModelParam { model: String, why: String },
    #[error("invalid option: {0}")]
    BadOption(String),
    #[error("bad load list '{0}' (expected START:STOP:STEP or comma-separated loads in (0, 1.5])")]
    BadLoads(String),
    #[error("unknown figure '{0}' (expected 3.1, 6.2, 6.12 or 10.1)")]
    UnknownFigure(String),
    #[error("cannot write {path}: {why}")]
    Output { path: PathBuf, why: String },
}
