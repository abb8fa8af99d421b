//! PNG plots of p99 latency vs load, several models per panel, several panels per image
//! (plotters, bitmap backend). Text needs a TrueType font, looked up at run time (`QSIM_FONT`,
//! then the usual DejaVu/Liberation paths, then any `.ttf` under /usr/share/fonts); with none,
//! the plot is drawn without text rather than failing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::{QsimError, RunResult};

/// One curve: a legend label and (load, p99) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One chart of several curves.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    /// Upper end of the y axis (curves are clipped there).
    pub y_max: f64,
    /// Horizontal SLO line, if any.
    pub slo: Option<f64>,
}

impl Panel {
    /// A panel from results, one series per distinct label, in first-seen order.
    pub fn from_results(title: &str, results: &[RunResult], y_max: f64, slo: Option<f64>) -> Self {
        let mut series: Vec<Series> = Vec::new();
        for r in results {
            let label = r
                .label
                .replace("n×", &format!("{}×", r.workers))
                .replace("/n/", &format!("/{}/", r.workers));
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push((r.load, r.p99.value)),
                None => series.push(Series {
                    label,
                    points: vec![(r.load, r.p99.value)],
                }),
            }
        }
        Self {
            title: title.to_owned(),
            series,
            y_max,
            slo,
        }
    }
}

const FAMILY: &str = "qsim-sans";

/// Register a font once; true if text can be drawn.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let Some(path) = find_font() else {
            return false;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            return false;
        };
        // plotters wants 'static font bytes; one font per process, leaked on purpose.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok()
    })
}

fn find_font() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("QSIM_FONT") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let known = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ];
    if let Some(p) = known.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(p);
    }
    find_ttf(Path::new("/usr/share/fonts"), 4)
}

fn find_ttf(dir: &Path, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in &entries {
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")) {
            return Some(p.clone());
        }
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_ttf(p, depth - 1))
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draw `panels` in a grid of `cols` columns into a PNG at `path`.
pub fn plot_panels(
    path: &Path,
    title: &str,
    panels: &[Panel],
    cols: usize,
) -> Result<(), QsimError> {
    let err = |e: &dyn std::fmt::Display| QsimError::Output {
        path: path.to_owned(),
        why: e.to_string(),
    };
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (560u32, 420u32);
    let root =
        BitMapBackend::new(path, (pw * cols as u32, ph * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let text = font_available();
    let body = if text {
        root.titled(title, (FAMILY, 24)).map_err(|e| err(&e))?
    } else {
        root.margin(40, 0, 0, 0)
    };
    for (area, panel) in body.split_evenly((rows, cols)).iter().zip(panels) {
        draw_panel(area, panel, text).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let x_max = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(&panel.title, (FAMILY, 18))
            .x_label_area_size(36)
            .y_label_area_size(48);
    }
    let mut chart = builder.build_cartesian_2d(0.0..x_max, 0.0..panel.y_max)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE.mix(0.0));
    if text {
        mesh.x_desc("load")
            .y_desc("p99 latency (× mean service time)")
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    if let Some(slo) = panel.slo {
        chart.draw_series(LineSeries::new(
            [(0.0, slo), (x_max, slo)],
            ShapeStyle::from(&BLACK.mix(0.4)).stroke_width(1),
        ))?;
    }
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| (x, y.min(panel.y_max)))
            .collect();
        let drawn = chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        if text {
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))?;
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font((FAMILY, 13))
            .draw()?;
    }
    Ok(())
}
