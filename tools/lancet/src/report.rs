//! Output: a human table (percentiles ± CI, throughput, checks), JSON and CSV.

use std::fmt::Write as _;

use serde::Serialize;

use crate::agent::options::AgentKind;
use crate::coordinator::{Experiment, LoadResult, Settings};
use crate::workload::Workload;

/// Everything a run produced, as written to JSON.
#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub workload: &'a Workload,
    pub settings: &'a Settings,
    pub agents: Vec<String>,
    pub experiment: &'a Experiment,
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// The human-readable report.
pub fn table(e: &Experiment) -> String {
    let mut s = String::new();
    for r in &e.points {
        point(&mut s, r);
    }
    if let Some(m) = e.max_load_at_slo {
        let _ = writeln!(s, "max load meeting the SLO: {m:.0} rps");
    } else if e.points.len() > 1 && e.points.iter().all(|p| !p.conclusive) {
        let _ = writeln!(s, "no load point was conclusive");
    }
    s
}

fn point(s: &mut String, r: &LoadResult) {
    let verdict = if r.conclusive {
        "conclusive"
    } else if r.quick {
        "QUICK LOOK, NOT CERTIFIED (--quick: checks below ran once; failures listed)"
    } else {
        "INCONCLUSIVE"
    };
    let _ = writeln!(
        s,
        "load {:.0} rps (sent {:.0}, answered {:.0} rps): {verdict}; {} samples at 1:{} per agent",
        r.target_rps, r.achieved_rps, r.received_rps, r.samples, r.sampling
    );
    if !r.percentiles.is_empty() {
        let _ = writeln!(
            s,
            "  {:>7}  {:>12}  {:>12}  {:>12}",
            "pct", "latency µs", "CI low", "CI high"
        );
        for p in &r.percentiles {
            let _ = writeln!(
                s,
                "  {:>7}  {:>12.1}  {:>12}  {:>12}",
                format!("p{}", p.p),
                p.estimate_us,
                opt(p.low_us),
                opt(p.high_us)
            );
        }
    }
    for c in &r.checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        let _ = writeln!(s, "  [{mark}] {:<13} {}", c.name, c.detail);
    }
    for why in &r.reasons {
        let _ = writeln!(s, "  reason: {why}");
    }
    let mixed = r.agents.iter().any(|a| a.kind != AgentKind::Symmetric);
    if r.agents.len() > 1 || mixed {
        for a in &r.agents {
            let samples = if a.kind.measures_latency() {
                format!("{} samples", a.samples)
            } else {
                "no latency samples".into()
            };
            let _ = writeln!(
                s,
                "  agent {} ({}): asked {:.0} rps, sent {:.0} rps, {samples}",
                a.name, a.kind, a.target_rps, a.sent_rps
            );
        }
    }
    for a in &r.agents {
        if let Some(b) = &a.busy_poll {
            let _ = writeln!(s, "  busy poll: {}: {b}", a.name);
        }
    }
    if !r.timestamps.is_empty() {
        let _ = writeln!(s, "  timestamps: {}", r.timestamps);
    }
}

/// Summary CSV: one row per (load, percentile).
pub fn csv(e: &Experiment) -> String {
    let mut s = String::from(
        "target_rps,achieved_rps,conclusive,percentile,latency_us,ci_low_us,ci_high_us\n",
    );
    for r in &e.points {
        for p in &r.percentiles {
            let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{}",
                r.target_rps,
                r.achieved_rps,
                r.conclusive,
                p.p,
                p.estimate_us,
                f(p.low_us),
                f(p.high_us)
            );
        }
    }
    s
}

/// Raw samples CSV: target load, agent, send time (s), latency (µs).
pub fn samples_csv(e: &Experiment) -> String {
    let mut s = String::from("target_rps,agent,send_s,latency_us\n");
    for r in &e.points {
        for (a, t, l) in &r.raw {
            let _ = writeln!(s, "{},{a},{t},{l}", r.target_rps);
        }
    }
    s
}
