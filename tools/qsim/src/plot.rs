//! PNG plots of p99 latency vs load, several models per panel, several panels per image: the
//! drawing is `ferrix-latplot`'s (its font lookup: `FERRIX_FONT` or `QSIM_FONT`, then the
//! usual paths; with no font the plot is drawn without text rather than failing); this module
//! turns results into panels.

use std::path::Path;

pub use ferrix_latplot::{Panel, Series};

use crate::{QsimError, RunResult};

/// The y axis label of qsim's panels.
pub const Y_LABEL: &str = "p99 latency (× mean service time)";

/// A panel from results, one series per distinct label, in first-seen order.
pub fn panel_from_results(
    title: &str,
    results: &[RunResult],
    y_max: f64,
    slo: Option<f64>,
) -> Panel {
    let mut panel = Panel::new(title, "load", Y_LABEL, y_max);
    panel.slo = slo;
    for r in results {
        let label = r
            .label
            .replace("n×", &format!("{}×", r.workers))
            .replace("/n/", &format!("/{}/", r.workers));
        match panel.series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push((r.load, r.p99.value)),
            None => panel.series.push(Series {
                label,
                points: vec![(r.load, r.p99.value)],
            }),
        }
    }
    panel
}

/// Draw `panels` in a grid of `cols` columns into a PNG at `path`.
pub fn plot_panels(
    path: &Path,
    title: &str,
    panels: &[Panel],
    cols: usize,
) -> Result<(), QsimError> {
    ferrix_latplot::write_load_png(path, title, panels, cols).map_err(|e| QsimError::Output {
        path: e.path,
        why: e.why,
    })
}
