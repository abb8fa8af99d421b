//! The PNG writers, decoded: size, ink, and each series' colour present (and only those drawn).

use ferrix_latplot::inspect::{self, check_series, dist_rows};
use ferrix_latplot::{DistSeries, Panel, Series, color, dist_csv, write_dist_png, write_load_png};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("latplot-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Latencies 1..=n µs times `scale`, shuffled by a stride.
fn samples(n: u32, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|i| f64::from((i * 7919) % n + 1) * scale)
        .collect()
}

#[test]
fn dist_png_draws_every_series() {
    let d = dir("dist");
    let two = [
        DistSeries::new("fast", samples(1000, 1.0)),
        DistSeries::new("slow", samples(500, 3.0)),
    ];
    let path = d.join("two.png");
    write_dist_png(&path, "latency CCDF", &two).unwrap();
    let s = inspect::png(&path).unwrap();
    assert_eq!((s.width, s.height), (800, 500));
    assert!(s.colours.len() > 4, "{} colours", s.colours.len());
    assert!(s.ink() > 0.005 && s.ink() < 0.5, "ink {}", s.ink());
    assert!(s.has(color(0)) && s.has(color(1)), "both series drawn");

    let path = d.join("one.png");
    write_dist_png(&path, "latency CCDF", &two[..1]).unwrap();
    let one = inspect::png(&path).unwrap();
    assert!(
        one.has(color(0)) && !one.has(color(1)),
        "only the first series"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dist_png_of_a_narrow_distribution() {
    // 100..=150 µs: a linear x axis (the wide one above is logarithmic).
    let d = dir("narrow");
    let path = d.join("narrow.png");
    let s: Vec<f64> = samples(51, 1.0).iter().map(|x| x + 99.0).collect();
    write_dist_png(&path, "narrow", &[DistSeries::new("n", s)]).unwrap();
    let png = inspect::png(&path).unwrap();
    assert_eq!((png.width, png.height), (800, 500));
    assert!(png.has(color(0)) && png.ink() > 0.005, "ink {}", png.ink());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dist_csv_matches_the_samples() {
    let series = [
        DistSeries::new("fast", samples(1000, 1.0)),
        DistSeries::new("slow", samples(500, 3.0)),
    ];
    let rows = dist_rows(&dist_csv(&series)).unwrap();
    assert_eq!(check_series(&rows, "fast"), Ok(1000));
    assert_eq!(check_series(&rows, "slow"), Ok(500));
    let p = |s: &str, pct: f64| {
        rows.iter()
            .find(|r| r.series == s && r.percentile == pct)
            .unwrap()
            .latency_us
    };
    assert_eq!(p("fast", 50.0), 501.0);
    assert_eq!(p("fast", 99.0), 990.0);
    assert_eq!(p("slow", 100.0), 1500.0);
    assert!(check_series(&rows, "missing").is_err());
}

#[test]
fn load_png_draws_panels_and_series() {
    let d = dir("load");
    let mut a = Panel::new("S = 10 µs", "load", "p99 / S", 10.0);
    a.slo = Some(5.0);
    for (i, label) in ["zygos", "partitioned", "model"].iter().enumerate() {
        a.series.push(Series {
            label: (*label).into(),
            points: (1..=8)
                .map(|k| {
                    let l = f64::from(k) / 10.0;
                    (l, (1.0 + i as f64) / (1.0 - l))
                })
                .collect(),
        });
    }
    let mut b = a.clone();
    b.title = "S = 50 µs".into();
    b.series.truncate(1);
    let path = d.join("load.png");
    write_load_png(&path, "p99 vs load", &[a, b], 2).unwrap();
    let s = inspect::png(&path).unwrap();
    assert_eq!((s.width, s.height), (1120, 460));
    assert!(s.colours.len() > 4, "{} colours", s.colours.len());
    assert!(s.ink() > 0.005, "ink {}", s.ink());
    for i in 0..3 {
        assert!(s.has(color(i)), "series {i}");
    }
    assert!(!s.has(color(3)));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let path = std::path::Path::new("/nonexistent-dir/x.png");
    let e = write_dist_png(path, "t", &[DistSeries::new("a", vec![1.0])]).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/x.png"), "{e}");
    let e = ferrix_latplot::write_text(std::path::Path::new("/nonexistent-dir/x.csv"), "x")
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot write /nonexistent-dir/x.csv"),
        "{e}"
    );
}
