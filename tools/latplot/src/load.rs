//! Latency vs load: one or more panels, each of one or more named series of (load, latency)
//! points, an optional horizontal SLO line, drawn in a grid (560×420 a panel) into one PNG.
//!
//! The CSV ([`load_csv`]) has one row per point: `panel,series,LOAD,VALUE`, the last two
//! headers named by the caller (e.g. `load` and `p99_us`).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::font::{self, FAMILY};
use crate::{WriteError, color, csv, style};

/// One curve: a legend label and (load, latency) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One chart of several curves.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Upper end of the y axis (curves are clipped there).
    pub y_max: f64,
    /// Horizontal SLO line, if any.
    pub slo: Option<f64>,
}

impl Panel {
    /// A panel titled `title` with axis labels `x_label`, `y_label`, no series yet, its y axis
    /// up to `y_max`.
    pub fn new(title: &str, x_label: &str, y_label: &str, y_max: f64) -> Self {
        Panel {
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            series: Vec::new(),
            y_max,
            slo: None,
        }
    }

    /// The y range that shows every finite point (at least `floor`, at most `cap`), plus 10 %.
    pub fn fit_y(&mut self, floor: f64, cap: f64) {
        let top = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold(floor, f64::max);
        self.y_max = top.min(cap) * 1.1;
    }
}

/// Every point of `panels` as CSV rows `panel,series,x_name,y_name`, with a header line.
pub fn load_csv(panels: &[Panel], x_name: &str, y_name: &str) -> String {
    let mut s = format!(
        "panel,series,{},{}\n",
        csv::field(x_name),
        csv::field(y_name)
    );
    for p in panels {
        for c in &p.series {
            for (x, y) in &c.points {
                s.push_str(&format!(
                    "{},{},{x},{y:.3}\n",
                    csv::field(&p.title),
                    csv::field(&c.label)
                ));
            }
        }
    }
    s
}

/// Draws `panels` in a grid of `cols` columns under `title` into a PNG at `path`.
pub fn write_load_png(
    path: &Path,
    title: &str,
    panels: &[Panel],
    cols: usize,
) -> Result<(), WriteError> {
    let err = |e: &dyn std::fmt::Display| WriteError::new(path, e);
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (560u32, 420u32);
    let root =
        BitMapBackend::new(path, (pw * cols as u32, ph * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let text = font::available();
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

/// Draws one panel on `area`; `text`: whether a font is registered ([`font::available`]).
pub fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let x_max = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .fold(1.0f64, f64::max);
    let y_max = if panel.y_max > 0.0 && panel.y_max.is_finite() {
        panel.y_max
    } else {
        1.0
    };
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(&panel.title, (FAMILY, 18))
            .x_label_area_size(36)
            .y_label_area_size(48);
    }
    let mut chart = builder.build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    style::draw_mesh(&mut chart, &panel.x_label, &panel.y_label, text)?;
    if let Some(slo) = panel.slo {
        chart.draw_series(LineSeries::new(
            [(0.0, slo), (x_max, slo)],
            ShapeStyle::from(&BLACK.mix(0.4)).stroke_width(1),
        ))?;
    }
    for (i, s) in panel.series.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| (x, y.min(y_max)))
            .collect();
        let drawn = chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
        if text {
            drawn.label(s.label.clone()).legend(style::line_entry(c));
        }
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.filled())))?;
    }
    if text {
        style::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_row_per_point() {
        let mut p = Panel::new("S = 10 µs", "load", "p99 (× S)", 1.0);
        p.series.push(Series {
            label: "zygos".into(),
            points: vec![(0.1, 1.5), (0.5, 3.25)],
        });
        p.series.push(Series {
            label: "partitioned".into(),
            points: vec![(0.1, 2.0)],
        });
        let t = load_csv(&[p.clone()], "load", "p99_over_s");
        assert_eq!(
            t,
            "panel,series,load,p99_over_s\nS = 10 µs,zygos,0.1,1.500\nS = 10 µs,zygos,0.5,3.250\nS = 10 µs,partitioned,0.1,2.000\n"
        );
        p.fit_y(1.0, 100.0);
        assert!((p.y_max - 3.25 * 1.1).abs() < 1e-9, "{}", p.y_max);
        p.fit_y(1.0, 2.0);
        assert!((p.y_max - 2.2).abs() < 1e-9, "{}", p.y_max);
    }
}
