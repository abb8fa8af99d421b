//! Summaries and output formats of `ferrix bench`: median/min/max, a text table, JSON.
//!
//! Pure code. JSON is written by hand (a handful of fields; no serde dependency for it).

use std::fmt::Write as _;

/// One measured quantity of one configuration, with every run's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Machine-friendly name (`wall_ms_to_exit`).
    pub id: &'static str,
    /// Human label for the table (`wall ms to exit`).
    pub label: &'static str,
    /// One value per run.
    pub values: Vec<f64>,
}

/// The result of one VMM configuration: its metrics, or why it could not be measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Configuration name (`qemu-tcg-microvm`, `qemu-icount`, `shim`).
    pub config: String,
    /// The metrics, or the reason this configuration is missing.
    pub outcome: Result<Vec<Metric>, String>,
}

/// One line of a bench that reports text per configuration (`udp-echo`, `r2p2`, `kv`): the
/// configuration and its result, or why it could not be measured.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRow {
    pub config: &'static str,
    pub outcome: Result<String, String>,
}

/// What a closed-loop latency bench (`udp-echo`, `r2p2`) returns: its table rows, and the
/// latency samples (µs) of the rows measured in this process, for `--png` / `--csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyRows {
    pub rows: Vec<TextRow>,
    pub series: Vec<ferrix_latplot::DistSeries>,
}

/// Median, minimum and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Summarizes `values`; `None` for an empty sample.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The human-readable table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:<22} {:>14} {:>14} {:>14} {:>5}",
        "config", "metric", "median", "min", "max", "runs"
    );
    for row in rows {
        match &row.outcome {
            Err(why) => {
                let _ = writeln!(s, "{:<18} unavailable: {why}", row.config);
            }
            Ok(metrics) => {
                for m in metrics {
                    if let Some(sum) = summarize(&m.values) {
                        let _ = writeln!(
                            s,
                            "{:<18} {:<22} {:>14} {:>14} {:>14} {:>5}",
                            row.config,
                            m.label,
                            fmt_num(sum.median),
                            fmt_num(sum.min),
                            fmt_num(sum.max),
                            m.values.len()
                        );
                    }
                }
            }
        }
    }
    s
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (non-finite values, which a measurement never yields, become null).
fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

/// The results as one JSON document.
pub fn json(app: &str, runs: u32, rows: &[Row]) -> String {
    let mut configs = Vec::new();
    for row in rows {
        let body = match &row.outcome {
            Err(why) => format!("\"ok\":false,\"error\":{}", json_str(why)),
            Ok(metrics) => {
                let ms: Vec<String> = metrics
                    .iter()
                    .filter_map(|m| {
                        let sum = summarize(&m.values)?;
                        let vals: Vec<String> = m.values.iter().map(|v| json_num(*v)).collect();
                        Some(format!(
                            "{{\"id\":{},\"label\":{},\"median\":{},\"min\":{},\"max\":{},\"values\":[{}]}}",
                            json_str(m.id),
                            json_str(m.label),
                            json_num(sum.median),
                            json_num(sum.min),
                            json_num(sum.max),
                            vals.join(",")
                        ))
                    })
                    .collect();
                format!("\"ok\":true,\"metrics\":[{}]", ms.join(","))
            }
        };
        configs.push(format!("{{\"config\":{},{body}}}", json_str(&row.config)));
    }
    format!(
        "{{\"bench\":\"boot\",\"app\":{},\"runs\":{runs},\"configs\":[{}]}}\n",
        json_str(app),
        configs.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                config: "qemu-icount".into(),
                outcome: Ok(vec![Metric {
                    id: "insns_to_entry",
                    label: "insns to app entry",
                    values: vec![30.0, 10.0, 20.0],
                }]),
            },
            Row {
                config: "shim".into(),
                outcome: Err("no /dev/kvm \"here\"".into()),
            },
        ]
    }

    #[test]
    fn summaries() {
        assert_eq!(summarize(&[]), None);
        let s = summarize(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn table_shows_metrics_and_reasons() {
        let t = table(&rows());
        assert!(t.contains("insns to app entry"), "{t}");
        assert!(t.lines().any(|l| l.starts_with("qemu-icount")
            && l.split_whitespace().collect::<Vec<_>>()[5..] == ["20", "10", "30", "3"]));
        assert!(
            t.contains("shim               unavailable: no /dev/kvm"),
            "{t}"
        );
    }

    #[test]
    fn json_document() {
        let j = json("hello", 3, &rows());
        assert_eq!(
            j,
            "{\"bench\":\"boot\",\"app\":\"hello\",\"runs\":3,\"configs\":[\
             {\"config\":\"qemu-icount\",\"ok\":true,\"metrics\":[{\"id\":\"insns_to_entry\",\
             \"label\":\"insns to app entry\",\"median\":20,\"min\":10,\"max\":30,\
             \"values\":[30,10,20]}]},\
             {\"config\":\"shim\",\"ok\":false,\"error\":\"no /dev/kvm \\\"here\\\"\"}]}\n"
        );
    }
}
