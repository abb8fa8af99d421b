//! Errors from parsing distribution specs and loading empirical / trace files.

use std::path::PathBuf;

/// Why a distribution spec or data file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error(
        "unknown distribution '{0}' (expected det, exp, bimodal-1, bimodal-2, lognormal, pareto, uniform, gamma or file:PATH)"
    )]
    UnknownShape(String),
    #[error("unknown arrival process '{0}' (expected poisson, det or trace:PATH)")]
    UnknownArrival(String),
    #[error("distribution '{shape}' has no parameter '{param}'")]
    UnknownParam { shape: String, param: String },
    #[error("bad value '{value}' for parameter '{param}': {why}")]
    BadParam {
        param: String,
        value: String,
        why: &'static str,
    },
    #[error("mean must be finite and > 0, got {0}")]
    BadMean(f64),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: '{text}' is not a non-negative number")]
    BadSample {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{0}: no samples (need at least one positive value)")]
    Empty(PathBuf),
}
