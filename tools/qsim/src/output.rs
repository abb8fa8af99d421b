//! Writing results: CSV (one row per run) and JSON (an array of runs).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::{QsimError, RunResult};

fn io_err(path: &Path, e: impl std::fmt::Display) -> QsimError {
    QsimError::Output {
        path: path.to_owned(),
        why: e.to_string(),
    }
}

/// Write `results` as CSV to `path`.
pub fn write_csv(path: &Path, results: &[RunResult]) -> Result<(), QsimError> {
    let mut f = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    let mut text = String::from(RunResult::CSV_HEADER);
    text.push('\n');
    for r in results {
        text.push_str(&r.csv_row());
        text.push('\n');
    }
    f.write_all(text.as_bytes()).map_err(|e| io_err(path, e))
}

/// Write any serialisable value as pretty JSON to `path`.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), QsimError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| io_err(path, e))?;
    std::fs::write(path, text + "\n").map_err(|e| io_err(path, e))
}

/// A fixed-width table of the main columns, for the terminal.
pub fn table(results: &[RunResult]) -> String {
    let mut s = format!(
        "{:<22} {:<10} {:>6} {:>9} {:>16} {:>9} {:>18} {:>7} {:>6}\n",
        "model", "dist", "load", "mean", "p99 (±95%)", "p99.9", "util", "steal", "SLO"
    );
    for r in results {
        s.push_str(&format!(
            "{:<22} {:<10} {:>6.3} {:>9.3} {:>9.3} ±{:<6.3} {:>9.3} {:>8.3} ±{:<8.4} {:>7.3} {:>6}\n",
            r.label,
            r.dist,
            r.load,
            r.mean.value,
            r.p99.value,
            r.p99.ci95,
            r.p999.value,
            r.utilisation.value,
            r.utilisation.ci95,
            r.steal_rate,
            if r.meets_slo { "ok" } else { "miss" }
        ));
    }
    s
}
