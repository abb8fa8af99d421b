//! `ferrix demo`: the experiment ferrix is for, on embedded defaults and without root.
//!
//! It boots apps/synthetic's TCP server on 2 vCPUs under QEMU (ZygOS scheduling, user-mode
//! network), drives it open-loop with Lancet's agent (Poisson arrivals, exponential service
//! times of mean S̄ named in each request) over a sweep of loads, and prints the p99 at each
//! load next to the queueing model of the same system: M/G/2/FCFS (one central queue, what
//! ZygOS approaches) and 2×M/G/1/FCFS (two partitioned queues), both simulated by qsim with
//! the same service distribution. A PNG plot and a CSV are written beside the table.
//!
//! Under TCG the guest kernel needs on the order of 100 µs per request, so S̄ defaults to 2 ms
//! (the model's time unit is S̄, so the comparison is what matters, not the microseconds).

use crate::bench_guest::{GuestSpec, GuestVm};
use crate::error::CliError;
use crate::lancet_point::{GuestPoint, guest_point};
use crate::run::resolve_image;
use ferrix_dist::Shape;
use ferrix_latplot::{Panel, Series};
use qsim::{Model, SimConfig};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// The SLO the plot marks: p99 <= this many S̄ (thesis 6.5).
pub const SLO_FACTOR: f64 = 10.0;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub qemu: String,
    pub app: String,
    /// Mean service time, µs.
    pub service_us: f64,
    /// Loads, fractions of the 2/S̄ capacity.
    pub loads: Vec<f64>,
    /// Seconds of load per point.
    pub step_secs: f64,
    /// The PNG plot (None: none).
    pub png: Option<PathBuf>,
    /// The CSV table (None: none).
    pub csv: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            qemu: crate::qemu_run::qemu_binary(),
            app: "synthetic".into(),
            service_us: 2000.0,
            loads: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
            step_secs: 4.0,
            png: Some(PathBuf::from("ferrix-demo.png")),
            csv: Some(PathBuf::from("ferrix-demo.csv")),
        }
    }
}

/// One row of the result.
#[derive(Debug, Clone)]
pub struct DemoRow {
    pub guest: GuestPoint,
    /// M/G/2/FCFS p99 (µs) with its 95 % interval.
    pub central_p99_us: Interval,
    /// 2×M/G/1/FCFS p99 (µs).
    pub partitioned_p99_us: f64,
}

fn check(o: &DemoOptions) -> Result<(), CliError> {
    let bad = |m: String| Err(CliError::Usage(m));
    if o.loads.is_empty() || o.loads.iter().any(|l| !(*l > 0.0 && *l < 1.0)) {
        return bad("--loads: each load must be in (0, 1), e.g. 0.1,0.3,0.5".into());
    }
    if !(o.service_us.is_finite() && (100.0..=1e6).contains(&o.service_us)) {
        return bad(format!(
            "--service-us must be between 100 and 1000000 (got {}); under TCG the guest kernel needs ~100 µs per request",
            o.service_us
        ));
    }
    if !(o.step_secs.is_finite() && (0.5..=600.0).contains(&o.step_secs)) {
        return bad(format!(
            "--step-secs must be between 0.5 and 600 (got {})",
            o.step_secs
        ));
    }
    Ok(())
}

/// A p99 (µs) with its 95 % interval: (value, low, high).
type Interval = (f64, f64, f64);

/// The models' p99 (µs) at each load: (M/G/2/FCFS with CI, 2×M/G/1/FCFS).
fn model_p99(o: &DemoOptions) -> Result<Vec<(Interval, f64)>, CliError> {
    let mut base = SimConfig::new(Model::CentralFcfs, 2, Shape::Exponential, 0.5);
    base.mean = o.service_us;
    let models = [Model::CentralFcfs, Model::PartitionedFcfs];
    let res = qsim::sweep::sweep(&base, &models, &o.loads, 2, false)
        .map_err(|e| CliError::Bench(format!("qsim: {e}")))?;
    let n = o.loads.len();
    Ok((0..n)
        .map(|i| {
            let c = &res[i].p99;
            (
                (c.value, c.value - c.ci95, c.value + c.ci95),
                res[n + i].p99.value,
            )
        })
        .collect())
}

/// Runs the demo: progress on `progress` (a bar when stderr is a terminal), the table returned.
pub fn demo(o: &DemoOptions, progress: &mut dyn Write) -> Result<String, CliError> {
    check(o)?;
    let image = resolve_image(&o.app)?;
    let models = model_p99(o)?;
    let _ = writeln!(
        progress,
        "demo: booting {} (2 vCPUs, ZygOS, QEMU TCG); {} loads × {} s of Lancet open-loop load",
        o.app,
        o.loads.len(),
        o.step_secs
    );
    let vm = GuestVm::boot(&GuestSpec {
        image: &image,
        qemu: &o.qemu,
        cpus: 2,
        icount: false,
        tcp: true,
        guest_port: 9000,
        udp_port: None,
        args: vec![
            "ferrix.sched=zygos".into(),
            "tcp-port=9000".into(),
            "idle-exit-ms=20000".into(),
            "ferrix.idle-halt-us=200".into(),
        ],
        banner: "synthetic: serving TCP",
    })
    .map_err(CliError::Bench)?;
    let bar = ferrix_latplot::progress::bar(
        o.loads.len() as u64,
        "{bar:30} {pos}/{len} loads {elapsed} {msg}",
    );
    let mut rows = Vec::new();
    for (&load, &(central, partitioned)) in o.loads.iter().zip(&models) {
        bar.set_message(format!("load {load:.2}"));
        let p = guest_point(vm.port, o.service_us, load, o.step_secs);
        bar.inc(1);
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                bar.finish_and_clear();
                let _ = vm.finish();
                return Err(CliError::Bench(format!("load {load}: {e}")));
            }
        };
        if bar.is_hidden() {
            let _ = writeln!(
                progress,
                "demo: load {load:.2}: achieved {:.0}/s p99 {:.0} µs",
                p.achieved_rps, p.p99_us
            );
        }
        // Past saturation the queue only grows: stop once a point both falls behind and
        // misses the SLO fourfold (one short point alone may be the host's noise).
        let saturated = !p.kept_up() && p.p99_us > 4.0 * SLO_FACTOR * o.service_us;
        rows.push(DemoRow {
            guest: p,
            central_p99_us: central,
            partitioned_p99_us: partitioned,
        });
        if saturated {
            break; // higher loads only queue more
        }
    }
    bar.finish_and_clear();
    vm.finish().map_err(CliError::Bench)?;
    let table = render(o, &rows);
    if let Some(path) = &o.csv {
        ferrix_latplot::write_text(path, &csv(&rows))?;
    }
    if let Some(path) = &o.png {
        plot(o, &rows, path)?;
    }
    Ok(table)
}

fn render(o: &DemoOptions, rows: &[DemoRow]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "synthetic server, 2 vCPUs, ZygOS; Poisson arrivals, exponential service S̄ = {} µs; SLO p99 <= {} µs",
        o.service_us,
        SLO_FACTOR * o.service_us
    );
    let _ = writeln!(
        t,
        "{:>5} {:>9} {:>9} {:>10} {:>22} {:>12} {:>7}",
        "load", "offered/s", "achieved", "p99 µs", "M/G/2/FCFS p99 µs", "2×M/G/1 µs", "ratio"
    );
    for r in rows {
        let g = &r.guest;
        let (c, lo, hi) = r.central_p99_us;
        let _ = writeln!(
            t,
            "{:>5.2} {:>9.0} {:>9.0} {:>10.0} {:>8.0} [{:>5.0},{:>5.0}] {:>12.0} {:>7.2}{}",
            g.load,
            g.offered_rps,
            g.achieved_rps,
            g.p99_us,
            c,
            lo,
            hi,
            r.partitioned_p99_us,
            g.p99_us / c.max(1e-9),
            if g.kept_up() { "" } else { "  (saturated)" }
        );
    }
    let _ = writeln!(
        t,
        "ratio = measured p99 / M/G/2/FCFS p99 (1.0 would be a perfect single queue; 2×M/G/1 is the partitioned bound)"
    );
    for (path, what) in [(&o.png, "plot"), (&o.csv, "table")] {
        if let Some(p) = path {
            let _ = writeln!(t, "{what}: {}", p.display());
        }
    }
    t
}

fn csv(rows: &[DemoRow]) -> String {
    let mut s = String::from(
        "load,offered_rps,sent_rps,achieved_rps,p99_us,samples,mg2_p99_us,mg2_p99_lo_us,mg2_p99_hi_us,partitioned_p99_us\n",
    );
    for r in rows {
        let g = &r.guest;
        let (c, lo, hi) = r.central_p99_us;
        let _ = writeln!(
            s,
            "{},{:.1},{:.1},{:.1},{:.1},{},{:.1},{:.1},{:.1},{:.1}",
            g.load,
            g.offered_rps,
            g.sent_rps,
            g.achieved_rps,
            g.p99_us,
            g.samples,
            c,
            lo,
            hi,
            r.partitioned_p99_us
        );
    }
    s
}

fn plot(o: &DemoOptions, rows: &[DemoRow], path: &std::path::Path) -> Result<(), CliError> {
    // In units of S̄, as qsim's axes are labelled.
    let s = o.service_us;
    let series = |label: &str, f: &dyn Fn(&DemoRow) -> f64| Series {
        label: label.into(),
        points: rows.iter().map(|r| (r.guest.load, f(r) / s)).collect(),
    };
    let slo = SLO_FACTOR;
    let y_max = rows
        .iter()
        .map(|r| r.guest.p99_us.max(r.partitioned_p99_us) / s)
        .fold(slo * 1.5, f64::max)
        .min(slo * 4.0);
    let mut panel = Panel::new(
        &format!("p99 vs load, S̄ = {} µs exponential", o.service_us),
        "load",
        qsim::plot::Y_LABEL,
        y_max,
    );
    panel.slo = Some(slo);
    panel.series = vec![
        series("ferrix guest (Lancet)", &|r| r.guest.p99_us),
        series("M/G/2/FCFS (qsim)", &|r| r.central_p99_us.0),
        series("2×M/G/1/FCFS (qsim)", &|r| r.partitioned_p99_us),
    ];
    ferrix_latplot::write_load_png(path, "ferrix demo: synthetic server, 2 vCPUs", &[panel], 1)
        .map_err(CliError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_usage_errors() {
        for o in [
            DemoOptions {
                loads: vec![],
                ..Default::default()
            },
            DemoOptions {
                loads: vec![1.2],
                ..Default::default()
            },
            DemoOptions {
                service_us: 5.0,
                ..Default::default()
            },
            DemoOptions {
                step_secs: f64::NAN,
                ..Default::default()
            },
        ] {
            assert!(matches!(check(&o), Err(CliError::Usage(_))), "{o:?}");
        }
        assert!(check(&DemoOptions::default()).is_ok());
    }

    #[test]
    fn the_model_column_is_the_queueing_model() {
        // Light load: M/G/2/FCFS p99 for exponential service approaches ln(100)·S̄ (4.6 S̄),
        // and the partitioned system is no better.
        let o = DemoOptions {
            service_us: 1000.0,
            loads: vec![0.05, 0.6],
            ..Default::default()
        };
        let m = model_p99(&o).unwrap();
        assert!((m[0].0.0 / 1000.0 - 4.6).abs() < 0.4, "{m:?}");
        assert!(m[1].1 > m[1].0.0 * 1.2, "{m:?}");
    }
}
