//! PNG plots of a run (plotters, bitmap backend): the latency CCDF at each load (left panel, log
//! y axis: P(latency > x)) and p99 (or the `--ci-percentile`) vs achieved load with its
//! confidence interval (right panel), optionally with a qsim model curve on the same axes.
//!
//! The CCDF panel, the font lookup (`FERRIX_FONT` or `LANCET_FONT`, then the usual paths; no
//! font: no text) and the chart style are `ferrix-latplot`'s.
//!
//! The model curve: qsim simulates the given model with `workers` workers, the workload's
//! service-time shape scaled to 1, at utilisation ρ = rate · service mean / workers; its p99
//! (in units of the mean service time) is scaled back to µs and shifted by a fixed offset (the
//! network and stack latency the model does not know about).

use std::path::Path;

use ferrix_dist::Shape;
use ferrix_latplot::dist::ccdf_points;
use ferrix_latplot::font::{self, FAMILY};
use ferrix_latplot::style;
use plotters::prelude::*;

use crate::coordinator::{Experiment, LoadResult};

/// A qsim model to draw next to the measurements.
#[derive(Debug, Clone)]
pub struct ModelCurve {
    /// qsim model spec (e.g. `mg-n-fcfs`).
    pub model: qsim::Model,
    /// Its label in the legend.
    pub label: String,
    pub workers: usize,
    /// Service-time shape (scaled to `service_us`).
    pub service: Shape,
    pub service_us: f64,
    /// Added to every model latency (µs).
    pub offset_us: f64,
}

impl ModelCurve {
    /// Parse a qsim model spec; the service shape is a `ferrix-dist` spec.
    pub fn new(
        spec: &str,
        workers: usize,
        service: &str,
        service_us: f64,
        offset_us: f64,
    ) -> Result<Self, String> {
        let model: qsim::Model = spec
            .parse()
            .map_err(|e| format!("bad --model '{spec}': {e}"))?;
        let service: Shape = service
            .parse()
            .map_err(|e| format!("bad service shape '{service}': {e}"))?;
        if workers == 0 || !(service_us > 0.0 && service_us.is_finite()) {
            return Err("the model needs workers >= 1 and a service time > 0".into());
        }
        Ok(ModelCurve {
            label: format!("{} (qsim, {workers} workers)", model.label()),
            model,
            workers,
            service,
            service_us,
            offset_us,
        })
    }

    /// Utilisation at `rps`.
    pub fn rho(&self, rps: f64) -> f64 {
        rps * self.service_us * 1e-6 / self.workers as f64
    }

    /// The model's p99 latency in µs at `rps` (None at or beyond saturation).
    pub fn p99_us(&self, rps: f64) -> Result<Option<f64>, String> {
        let rho = self.rho(rps);
        if !(rho > 0.0 && rho < 0.97) {
            return Ok(None);
        }
        let mut cfg =
            qsim::SimConfig::new(self.model.clone(), self.workers, self.service.clone(), rho);
        cfg.requests = 100_000;
        cfg.warmup = 10_000;
        let r = qsim::simulate(&cfg).map_err(|e| format!("qsim: {e}"))?;
        Ok(Some(r.p99.value * self.service_us + self.offset_us))
    }

    /// (rps, p99 µs) at `n` loads evenly spaced up to `max_rps`.
    pub fn curve(&self, max_rps: f64, n: usize) -> Result<Vec<(f64, f64)>, String> {
        let mut pts = Vec::new();
        for i in 1..=n {
            let rps = max_rps * i as f64 / n as f64;
            if let Some(p) = self.p99_us(rps)? {
                pts.push((rps, p));
            }
        }
        Ok(pts)
    }
}

/// The CCDF of one load's samples: (latency µs, fraction of samples at or above it), thinned
/// to about `max_points` ([`ferrix_latplot::dist::ccdf_points`]).
pub fn ccdf(r: &LoadResult, max_points: usize) -> Vec<(f64, f64)> {
    let mut lat: Vec<f64> = r
        .raw
        .iter()
        .map(|s| s.2)
        .filter(|x| x.is_finite())
        .collect();
    lat.sort_by(f64::total_cmp);
    ccdf_points(&lat, max_points)
}

/// Draw `exp` into a PNG at `path`: CCDF per load, and percentile `pct` vs load with the model
/// curve (already computed, (rps, µs)) when given.
pub fn plot(
    path: &Path,
    exp: &Experiment,
    pct: f64,
    model: Option<(&str, &[(f64, f64)])>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let text = font::available();
    let (left, right) = root.split_horizontally(600);
    draw_ccdf(&left, exp, text).map_err(|e| err(&e))?;
    draw_vs_load(&right, exp, pct, model, text).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

fn draw_ccdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    exp: &Experiment,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = exp
        .points
        .iter()
        .map(|r| (format!("{:.0} rps", r.achieved_rps), ccdf(r, 2000)))
        .filter(|c| !c.1.is_empty())
        .collect();
    ferrix_latplot::dist::draw_ccdf(area, "latency CCDF", &curves, text)
}

fn draw_vs_load<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    exp: &Experiment,
    pct: f64,
    model: Option<(&str, &[(f64, f64)])>,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // (rps, estimate, low, high) of the chosen percentile at each load, by load.
    let mut pts: Vec<(f64, f64, f64, f64)> = exp
        .points
        .iter()
        .filter_map(|r| {
            let p = r.percentiles.iter().find(|p| (p.p - pct).abs() < 1e-9)?;
            let (lo, hi) = (
                p.low_us.unwrap_or(p.estimate_us),
                p.high_us.unwrap_or(p.estimate_us),
            );
            Some((r.achieved_rps, p.estimate_us, lo, hi))
        })
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let model_pts = model.map(|m| m.1).unwrap_or(&[]);
    let x_max = pts
        .iter()
        .map(|p| p.0)
        .chain(model_pts.iter().map(|p| p.0))
        .fold(1.0f64, f64::max)
        * 1.05;
    // The measurements set the y range; the model is clipped to twice their maximum.
    let model_max = model_pts.iter().map(|p| p.1).fold(1.0f64, f64::max);
    let y_max = if pts.is_empty() {
        model_max
    } else {
        let measured_max = pts.iter().map(|p| p.3.max(p.1)).fold(1.0f64, f64::max);
        model_max.clamp(measured_max, 2.0 * measured_max)
    } * 1.1;
    let mut b = ChartBuilder::on(area);
    b.margin(12);
    if text {
        b.caption(format!("p{pct} latency vs load"), (FAMILY, 18))
            .x_label_area_size(36)
            .y_label_area_size(56);
    }
    let mut chart = b.build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    let y_desc = format!("p{pct} latency (µs)");
    style::draw_mesh(&mut chart, "achieved load (requests/s)", &y_desc, text)?;
    let color = ferrix_latplot::color(0);
    let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
    let drawn = chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?;
    if text {
        drawn
            .label("measured (95 % CI)")
            .legend(style::line_entry(color));
    }
    chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    chart.draw_series(pts.iter().map(|p| {
        PathElement::new(
            [(p.0, p.2.min(y_max)), (p.0, p.3.min(y_max))],
            color.stroke_width(1),
        )
    }))?;
    if let Some((label, m)) = model {
        let mcolor = ferrix_latplot::color(3);
        let clipped: Vec<(f64, f64)> = m
            .iter()
            .filter(|p| p.1.is_finite() && p.1 <= y_max)
            .copied()
            .collect();
        let drawn = chart.draw_series(LineSeries::new(clipped, mcolor.stroke_width(2)))?;
        if text {
            drawn
                .label(label.to_owned())
                .legend(style::line_entry(mcolor));
        }
    }
    if text {
        style::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::Percentile;

    fn point(rps: f64, lat: &[f64]) -> LoadResult {
        LoadResult {
            target_rps: rps,
            achieved_rps: rps,
            received_rps: rps,
            conclusive: true,
            quick: false,
            reasons: Vec::new(),
            checks: Vec::new(),
            percentiles: vec![Percentile {
                p: 99.0,
                estimate_us: lat[lat.len() * 99 / 100],
                low_us: Some(lat[lat.len() * 98 / 100]),
                high_us: Some(lat[lat.len() - 1]),
            }],
            samples: lat.len(),
            sampling: 1,
            timestamps: String::new(),
            timestamps_used: Vec::new(),
            stamps: Default::default(),
            agents: Vec::new(),
            raw: lat
                .iter()
                .enumerate()
                .map(|(i, l)| (0, i as f64, *l))
                .collect(),
        }
    }

    #[test]
    fn ccdf_sorts_the_raw_samples_and_skips_lost_ones() {
        let mut r = point(1.0, &[1.0; 4]);
        r.raw = [30.0, f64::NAN, 10.0, 20.0, f64::INFINITY]
            .iter()
            .map(|&l| (0, 0.0, l))
            .collect();
        let c = ccdf(&r, 100);
        assert_eq!(c.first(), Some(&(10.0, 1.0)));
        assert_eq!(c.last(), Some(&(30.0, 1.0 / 3.0)));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1));
    }

    #[test]
    fn model_curve_matches_md1_at_low_load_and_grows() {
        // M/D/1 with 10 µs service and a 5 µs offset: at ρ = 0.01 almost nobody waits.
        let m = ModelCurve::new("mg-n-fcfs", 1, "det", 10.0, 5.0).unwrap();
        assert!((m.rho(1000.0) - 0.01).abs() < 1e-12);
        let low = m.p99_us(1000.0).unwrap().unwrap();
        assert!((low - 15.0).abs() < 1.0, "{low}");
        let high = m.p99_us(80_000.0).unwrap().unwrap();
        assert!(high > 2.0 * low, "{high}");
        assert_eq!(m.p99_us(100_000.0).unwrap(), None, "saturated");
        assert!(ModelCurve::new("no-such-model", 1, "det", 10.0, 0.0).is_err());
    }

    #[test]
    fn plot_writes_a_png() {
        let lat = |scale: f64| -> Vec<f64> { (1..=500).map(|i| scale * f64::from(i)).collect() };
        let exp = Experiment {
            points: vec![point(1000.0, &lat(0.1)), point(5000.0, &lat(0.3))],
            max_load_at_slo: None,
        };
        let m = ModelCurve::new("mg-n-fcfs", 1, "exp", 20.0, 10.0).unwrap();
        let curve = m.curve(6000.0, 6).unwrap();
        assert_eq!(curve.len(), 6);
        let dir = std::env::temp_dir().join(format!("lancet-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.png");
        plot(&path, &exp, 99.0, Some((&m.label, &curve))).unwrap();
        let png = ferrix_latplot::inspect::png(&path).unwrap();
        assert_eq!((png.width, png.height), (1200, 480));
        assert!(png.ink() > 0.005, "ink {}", png.ink());
        // Two CCDF curves and the measured p99 line, the model curve in its own colour.
        for i in [0, 1, 3] {
            assert!(png.has(ferrix_latplot::color(i)), "colour {i}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
