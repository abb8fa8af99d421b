//! Latency distributions: named series of samples, drawn as a CCDF (P(latency > x), log y
//! axis, so that the tail a µs-scale service is judged by is visible) and tabled as
//! percentile rows.
//!
//! The CSV ([`dist_csv`]) has one row per series and percentile of [`CSV_PERCENTILES`]:
//! `series,samples,percentile,latency_us`. A percentile is the sample of rank
//! round((n - 1) · p / 100) in sorted order ([`quantile`]), the rule the tools' tables use, so
//! the CSV's p50 and p99 are the table's.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use crate::font::{self, FAMILY};
use crate::{WriteError, color, csv, style};

/// One named set of latency samples, µs (any order).
#[derive(Debug, Clone, PartialEq)]
pub struct DistSeries {
    pub label: String,
    pub latencies_us: Vec<f64>,
}

impl DistSeries {
    /// A series of `latencies_us`.
    pub fn new(label: impl Into<String>, latencies_us: Vec<f64>) -> Self {
        DistSeries {
            label: label.into(),
            latencies_us,
        }
    }

    /// The finite samples, sorted.
    pub fn sorted(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .latencies_us
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// The percentiles of the CSV rows.
pub const CSV_PERCENTILES: [f64; 13] = [
    0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0,
];

/// The `q`-quantile (0..=1) of `sorted`: the sample of rank round((n - 1) · q); None if empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let i = (last as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted.get(i.min(last)).copied()
}

/// The CCDF of `sorted`: (latency, fraction of samples at or above it), thinned to about
/// `max_points` points, always ending with the largest sample at 1/n.
pub fn ccdf_points(sorted: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(max_points.max(2)).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (n - i) as f64 / n as f64))
        .collect();
    pts.push((sorted[n - 1], 1.0 / n as f64));
    pts
}

/// The percentile rows of `series` (see the module doc), with a header line.
pub fn dist_csv(series: &[DistSeries]) -> String {
    let mut s = String::from("series,samples,percentile,latency_us\n");
    for d in series {
        let sorted = d.sorted();
        for p in CSV_PERCENTILES {
            if let Some(v) = quantile(&sorted, p / 100.0) {
                s.push_str(&format!(
                    "{},{},{p},{v:.3}\n",
                    csv::field(&d.label),
                    sorted.len()
                ));
            }
        }
    }
    s
}

/// Draws the CCDFs of `series` into a PNG at `path` (800×500).
pub fn write_dist_png(path: &Path, title: &str, series: &[DistSeries]) -> Result<(), WriteError> {
    let err = |e: &dyn std::fmt::Display| WriteError::new(path, e);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|d| (d.label.clone(), ccdf_points(&d.sorted(), 2000)))
        .collect();
    draw_ccdf(&root, title, &curves, font::available()).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Above this ratio of the largest to the smallest latency the x axis is logarithmic (a
/// tail of outliers would otherwise squeeze the body of the distribution into a few pixels).
pub const LOG_X_RATIO: f64 = 30.0;

/// Draws CCDF curves ((label, [`ccdf_points`])) as one chart on `area`, as staircases, the x
/// axis logarithmic when the latencies span more than [`LOG_X_RATIO`]; `text`: whether a
/// font is registered ([`font::available`]). Empty curves are skipped.
pub fn draw_ccdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    curves: &[(String, Vec<(f64, f64)>)],
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let xs = || curves.iter().flat_map(|c| c.1.iter().map(|p| p.0));
    let x_max = xs().fold(1.0f64, f64::max) * 1.05;
    let x_min = xs().filter(|x| *x > 0.0).fold(x_max, f64::min);
    let y_min = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .fold(1.0f64, f64::min)
        .clamp(1e-7, 0.1);
    let mut b = ChartBuilder::on(area);
    b.margin(12);
    if text {
        b.caption(title, (FAMILY, 18))
            .x_label_area_size(36)
            .y_label_area_size(56);
    }
    let y = (y_min..1.0).log_scale();
    if x_max / x_min > LOG_X_RATIO {
        let mut chart = b.build_cartesian_2d((x_min * 0.9..x_max).log_scale(), y)?;
        style::draw_mesh(
            &mut chart,
            "latency (µs, log scale)",
            "P(latency > x)",
            text,
        )?;
        draw_curves(&mut chart, curves, text)
    } else {
        let mut chart = b.build_cartesian_2d(0.0..x_max, y)?;
        style::draw_mesh(&mut chart, "latency (µs)", "P(latency > x)", text)?;
        draw_curves(&mut chart, curves, text)
    }
}

/// The curves (as staircases: a CCDF holds its value up to the next sample) and the legend.
fn draw_curves<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, LogCoord<f64>>>,
    curves: &[(String, Vec<(f64, f64)>)],
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (i, (label, pts)) in curves.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let c = color(i);
        let steps = pts.iter().scan(None, |prev: &mut Option<f64>, &(x, y)| {
            let up = prev.replace(y).unwrap_or(y);
            Some([(x, up), (x, y)])
        });
        let line = LineSeries::new(steps.flatten(), c.stroke_width(2));
        let drawn = chart.draw_series(line)?;
        if text {
            drawn.label(label.clone()).legend(style::line_entry(c));
        }
    }
    if text {
        style::draw_legend(chart, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_the_rounded_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(51.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn ccdf_is_decreasing_and_ends_at_one_over_n() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let c = ccdf_points(&v, 100);
        assert!(c.len() <= 102, "{}", c.len());
        assert_eq!(c[0], (1.0, 1.0));
        assert_eq!(*c.last().unwrap(), (1000.0, 1e-3));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1));
        assert!(ccdf_points(&[], 10).is_empty());
    }

    #[test]
    fn csv_rows_per_series_and_percentile() {
        let a = DistSeries::new("a, quoted", vec![3.0, 1.0, 2.0, f64::NAN]);
        let empty = DistSeries::new("empty", vec![]);
        let text = dist_csv(&[a, empty]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "series,samples,percentile,latency_us");
        assert_eq!(lines.len(), 1 + CSV_PERCENTILES.len(), "{text}");
        assert_eq!(lines[1], "\"a, quoted\",3,0,1.000");
        assert_eq!(lines[6], "\"a, quoted\",3,50,2.000");
        assert_eq!(*lines.last().unwrap(), "\"a, quoted\",3,100,3.000");
    }
}
