//! ferrix-latplot: what every host command that measures latency writes beside its table.
//!
//! * [`dist`]: the latency distribution of one or more named series, as a CCDF PNG
//!   (P(latency > x) on a log axis, so the tail is visible) and a CSV of percentile rows.
//! * [`load`]: p99 (or any latency figure) vs load of one or more series, in one or more
//!   panels, as a PNG and a CSV.
//! * [`font`]: the TrueType font found at run time for the plots' text.
//! * [`progress`]: an indicatif bar shown only on a terminal outside CI, and a writer that
//!   keeps progress lines readable under it.
//! * [`inspect`]: reads the PNGs and CSVs back, for the tools' tests.
//!
//! Used by lancet, qsim, r2p2-client and the `ferrix` command (`demo`, `bench`).
#![forbid(unsafe_code)]

pub mod csv;
pub mod dist;
pub mod font;
pub mod inspect;
pub mod load;
pub mod progress;
pub mod style;

use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

pub use dist::{DistSeries, dist_csv, write_dist_png};
pub use load::{Panel, Series, load_csv, write_load_png};

/// A plot or table that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {why}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub why: String,
}

impl WriteError {
    /// The error for `path`, from anything printable.
    pub fn new(path: &Path, why: impl std::fmt::Display) -> Self {
        WriteError {
            path: path.to_owned(),
            why: why.to_string(),
        }
    }
}

/// Writes `text` to `path` (a CSV, usually), with the path in the error.
pub fn write_text(path: &Path, text: &str) -> Result<(), WriteError> {
    std::fs::write(path, text).map_err(|e| WriteError::new(path, e))
}

/// The series colours, in order (matplotlib's tab10).
pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}
