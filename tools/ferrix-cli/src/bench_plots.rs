//! `--png FILE` and `--csv FILE` of the benches that measure latency (`udp-echo`, `r2p2`,
//! `sched`), the flags `ferrix demo` has too: the plot and the table beside the printed one.
//!
//! * Closed-loop benches (`udp-echo`, `r2p2`): the latency distribution of every row measured
//!   in this process, one curve each (a CCDF, P(latency > x) on a log axis), and the CSV of
//!   their percentile rows `series,samples,percentile,latency_us` (`ferrix_latplot::dist`).
//! * Load sweeps (`sched`): p99 in units of S̄ vs load, one panel per part and S̄, one curve
//!   per policy (and the M/G/2/FCFS model), the SLO line at 10·S̄, and the CSV of every point
//!   `panel,series,load,p99_over_mean_service` (`ferrix_latplot::load`).

use crate::error::CliError;
use ferrix_latplot::{DistSeries, Panel};
use std::path::PathBuf;

/// Where a bench writes its plot and its table (either may be absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlotFiles {
    pub png: Option<PathBuf>,
    pub csv: Option<PathBuf>,
}

impl PlotFiles {
    /// Whether anything is to be written.
    pub fn any(&self) -> bool {
        self.png.is_some() || self.csv.is_some()
    }

    /// Writes the distributions of `series` (series without samples left out); returns the
    /// lines that name the files, for the end of the table.
    pub fn distributions(&self, title: &str, series: &[DistSeries]) -> Result<String, CliError> {
        let kept: Vec<DistSeries> = series
            .iter()
            .filter(|s| !s.latencies_us.is_empty())
            .cloned()
            .collect();
        if let Some(p) = &self.csv {
            ferrix_latplot::write_text(p, &ferrix_latplot::dist_csv(&kept))?;
        }
        if let Some(p) = &self.png {
            ferrix_latplot::write_dist_png(p, title, &kept)?;
        }
        Ok(self.written())
    }

    /// Writes `panels` (p99 / S̄ vs load) in `cols` columns; returns the lines naming the files.
    pub fn loads(&self, title: &str, panels: &[Panel], cols: usize) -> Result<String, CliError> {
        if let Some(p) = &self.csv {
            let text = ferrix_latplot::load_csv(panels, "load", "p99_over_mean_service");
            ferrix_latplot::write_text(p, &text)?;
        }
        if let Some(p) = &self.png {
            ferrix_latplot::write_load_png(p, title, panels, cols)?;
        }
        Ok(self.written())
    }

    /// `plot: FILE` / `table: FILE` lines, as `ferrix demo` prints them.
    fn written(&self) -> String {
        [(&self.png, "plot"), (&self.csv, "table")]
            .iter()
            .filter_map(|(p, what)| p.as_ref().map(|p| format!("{what}: {}\n", p.display())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_it_wrote_and_leaves_out_empty_series() {
        let dir = std::env::temp_dir().join(format!("ferrix-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = PlotFiles {
            png: None,
            csv: Some(dir.join("t.csv")),
        };
        let series = [
            DistSeries::new("a", vec![1.0, 2.0]),
            DistSeries::new("b", vec![]),
        ];
        let lines = files.distributions("t", &series).unwrap();
        assert_eq!(lines, format!("table: {}\n", dir.join("t.csv").display()));
        let text = std::fs::read_to_string(dir.join("t.csv")).unwrap();
        let rows = ferrix_latplot::inspect::dist_rows(&text).unwrap();
        assert!(rows.iter().all(|r| r.series == "a"), "{text}");
        let bad = PlotFiles {
            png: Some("/nonexistent-dir/p.png".into()),
            csv: None,
        };
        let e = bad.distributions("t", &series).unwrap_err();
        assert!(matches!(e, CliError::Output(_)), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_OUTPUT);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
