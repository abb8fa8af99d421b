//! The thesis figures qsim regenerates, each as one PNG (panels per distribution) plus one CSV:
//! 3.1 (16×M/D/1 vs M/D/16), 6.2 (FCFS/PS, centralized/partitioned, four distributions),
//! 6.12 (application-aware policies on the bimodals) and 10.1 (load-balancing policies).

use std::path::{Path, PathBuf};

use ferrix_dist::Shape;

use crate::plot::{Panel, panel_from_results, plot_panels};
use crate::{Model, QsimError, SimConfig, output, sweep};

/// What one figure simulates.
#[derive(Debug, Clone)]
pub struct FigureSpec {
    pub id: &'static str,
    pub title: &'static str,
    /// (panel title, service distribution)
    pub panels: Vec<(&'static str, Shape)>,
    pub models: Vec<Model>,
    pub loads: Vec<f64>,
    pub y_max: f64,
    pub cols: usize,
}

fn models(specs: &[&str]) -> Vec<Model> {
    specs.iter().filter_map(|s| s.parse().ok()).collect()
}

fn loads(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    sweep::parse_loads(&format!("{lo}:{hi}:{step}")).unwrap_or_default()
}

/// The figure `id` (3.1, 6.2, 6.12, 10.1).
pub fn spec(id: &str) -> Result<FigureSpec, QsimError> {
    let det = ("deterministic", Shape::Deterministic);
    let exp = ("exponential", Shape::Exponential);
    let b1 = ("bimodal-1", Shape::BIMODAL_1);
    let b2 = ("bimodal-2", Shape::BIMODAL_2);
    Ok(match id {
        "3.1" => FigureSpec {
            id: "3.1",
            title: "Fig 3.1: 16×M/D/1/FCFS vs M/D/16/FCFS",
            panels: vec![det],
            models: models(&["partitioned-fcfs", "mg-n-fcfs"]),
            loads: loads(0.05, 0.95, 0.05),
            y_max: 10.0,
            cols: 1,
        },
        "6.2" => FigureSpec {
            id: "6.2",
            title: "Fig 6.2: p99 latency, n = 16, S = 1",
            panels: vec![det, exp, b1, b2],
            models: models(&["mg-n-fcfs", "partitioned-fcfs", "mg-n-ps", "partitioned-ps"]),
            loads: loads(0.05, 0.95, 0.05),
            y_max: 20.0,
            cols: 2,
        },
        "6.12" => FigureSpec {
            id: "6.12",
            title: "Fig 6.12: application-aware policies, n = 16",
            panels: vec![b1, b2],
            models: models(&["mg-n-fcfs", "edf:factor=5", "sjf", "cscq", "mg-n-ps"]),
            loads: loads(0.1, 0.95, 0.05),
            y_max: 15.0,
            cols: 2,
        },
        "10.1" => FigureSpec {
            id: "10.1",
            title: "Fig 10.1: load balancing, k = 16, S = 1",
            panels: vec![det, exp, b1],
            models: models(&["partitioned-fcfs", "pl:d=2", "jsq", "jbsq:n=2", "mg-n-fcfs"]),
            loads: loads(0.05, 0.95, 0.05),
            y_max: 20.0,
            cols: 3,
        },
        other => return Err(QsimError::UnknownFigure(other.to_owned())),
    })
}

/// Simulate figure `id` and write `fig-ID.png` and `fig-ID.csv` into `out`. `base` supplies
/// requests, seed and batches; model, distribution and load come from the figure.
pub fn render(
    id: &str,
    out: &Path,
    base: &SimConfig,
    threads: usize,
    progress: bool,
) -> Result<(PathBuf, PathBuf), QsimError> {
    let fig = spec(id)?;
    std::fs::create_dir_all(out).map_err(|e| QsimError::Output {
        path: out.to_owned(),
        why: e.to_string(),
    })?;
    let mut jobs = Vec::new();
    for (_, shape) in &fig.panels {
        for m in &fig.models {
            for &load in &fig.loads {
                jobs.push(SimConfig {
                    model: m.clone(),
                    service: shape.clone(),
                    workers: 16,
                    load,
                    ..base.clone()
                });
            }
        }
    }
    let results = sweep::run_all(&jobs, threads, progress)?;
    let per_panel = fig.models.len() * fig.loads.len();
    let panels: Vec<Panel> = fig
        .panels
        .iter()
        .zip(results.chunks(per_panel))
        .map(|((title, _), rs)| panel_from_results(title, rs, fig.y_max, None))
        .collect();
    let png = out.join(format!("fig-{}.png", fig.id));
    let csv = out.join(format!("fig-{}.csv", fig.id));
    output::write_csv(&csv, &results)?;
    plot_panels(&png, fig.title, &panels, fig.cols)?;
    Ok((png, csv))
}
