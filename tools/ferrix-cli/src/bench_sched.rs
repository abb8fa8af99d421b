//! `ferrix bench sched`: the thesis's ZygOS experiment (section 6.5) scaled to this machine.
//!
//! Three parts, each reported with the thesis's figures beside it:
//! 1. **Guest**: apps/synthetic's TCP mode on 2 vCPUs under QEMU, once per policy
//!    (`ferrix.sched=`), loaded by Lancet's open-loop agent (Poisson arrivals, exponential
//!    service times of mean S̄, 8-byte requests naming the time) through QEMU's user network.
//!    A sweep of loads (fractions of the 2/S̄ capacity) gives p99 vs load and the max load whose
//!    p99 <= 10·S̄, next to the M/G/2/FCFS model's (qsim). QEMU's user network has one queue
//!    pair, so every connection is homed on core 0 (the imbalance ZygOS fixes). Under TCG the
//!    guest kernel needs on the order of 100 µs per request while the service spins keep real
//!    time, so the guest's S̄ is milliseconds (`--guest-service-us`, default 2000); idle vCPUs
//!    halt (`ferrix.idle-halt-us=200`) so that the load generator and QEMU's network thread get
//!    the host's two cores when the guest has nothing to do.
//! 2. **Host**: the same scheduler code on host threads with simulated service times
//!    (`ferrix-sched-bench`), where the policy comparison at S̄ = 10 and 50 µs is meaningful.
//! 3. **Instructions**: the scheduler's own cost per event (local and stolen paths) counted by
//!    callgrind on the host (`sched/examples/event_instructions.rs`), and the guest kernel's
//!    instructions per event (scheduler + TCP + driver) under QEMU `-icount`.

use crate::bench_guest::{GuestSpec, GuestVm};
use crate::error::CliError;
pub use crate::lancet_point::GuestPoint;
use crate::lancet_point::guest_point;
use crate::run::resolve_image;
use ferrix_latplot::progress::Steps;
use ferrix_latplot::{Panel, Series};
use ferrix_sched::Policy;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The SLO: p99 <= this many mean service times (thesis 6.5).
pub const SLO_FACTOR: f64 = 10.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct SchedBenchOptions {
    pub qemu: String,
    pub app: String,
    /// Mean service times (µs) of the host-threads part.
    pub service_us: Vec<f64>,
    /// Mean service times (µs) of the guest part: under TCG the guest kernel's work per request
    /// takes on the order of 100 µs, so S̄ must be far above that for the policies to matter.
    pub guest_service_us: Vec<f64>,
    /// Guest loads, fractions of the 2/S̄ capacity.
    pub loads: Vec<f64>,
    /// Seconds of load per guest point (after 0.5 s of warm-up).
    pub step_secs: f64,
    /// Policies to compare.
    pub policies: Vec<Policy>,
    pub guest: bool,
    pub host: bool,
    pub instructions: bool,
}

impl Default for SchedBenchOptions {
    fn default() -> Self {
        SchedBenchOptions {
            qemu: crate::qemu_run::qemu_binary(),
            app: "synthetic".into(),
            service_us: vec![10.0, 50.0],
            guest_service_us: vec![2000.0],
            loads: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            step_secs: 2.0,
            policies: Policy::ALL.to_vec(),
            guest: true,
            host: true,
            instructions: true,
        }
    }
}

/// The highest load among `points` that kept up and met p99 <= SLO (0 if none).
pub fn max_load_at_slo(points: &[GuestPoint], slo_us: f64) -> f64 {
    points
        .iter()
        .filter(|p| p.kept_up() && p.samples > 0 && p.p99_us <= slo_us)
        .map(|p| p.load)
        .fold(0.0, f64::max)
}

/// A guest counter from its `ferrix-sched:` lines, summed over cores.
pub fn sched_total(console: &str, name: &str) -> u64 {
    console
        .lines()
        .filter(|l| l.starts_with("ferrix-sched: core "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.by_ref().find(|x| *x == name)?;
            w.next()?.parse::<u64>().ok()
        })
        .sum()
}

/// One policy's guest run: the points per S̄ and the guest's counters.
#[derive(Debug, Clone)]
pub struct GuestRun {
    pub policy: Policy,
    pub curves: Vec<(f64, Vec<GuestPoint>)>,
    pub events: u64,
    pub steals: u64,
    pub ipis: u64,
}

fn guest_run(
    o: &SchedBenchOptions,
    image: &Path,
    policy: Policy,
    steps: &mut Steps<'_>,
) -> Result<GuestRun, String> {
    let vm = GuestVm::boot(&GuestSpec {
        image,
        qemu: &o.qemu,
        cpus: 2,
        icount: false,
        tcp: true,
        guest_port: 9000,
        udp_port: None,
        args: vec![
            format!("ferrix.sched={policy}"),
            "tcp-port=9000".into(),
            "idle-exit-ms=10000".into(),
            // Idle vCPUs give the host CPU back: the load generator and QEMU's network thread
            // share this machine's cores with them.
            "ferrix.idle-halt-us=200".into(),
        ],
        banner: "synthetic: serving TCP",
    })?;
    let mut curves = Vec::new();
    for &s in &o.guest_service_us {
        let mut points = Vec::new();
        for (i, &load) in o.loads.iter().enumerate() {
            steps.step(&format!("bench: guest {policy} S={s} us load {load:.2}"));
            let p = guest_point(vm.port, s, load, o.step_secs)?;
            let _ = writeln!(
                steps,
                "bench: guest {policy} S={s} us load {load:.2}: offered {:.0}/s sent {:.0}/s achieved {:.0}/s p99 {:.0} us",
                p.offered_rps, p.sent_rps, p.achieved_rps, p.p99_us
            );
            let stop = !p.kept_up() || p.p99_us > 4.0 * SLO_FACTOR * s;
            points.push(p);
            if stop {
                // Saturated: higher loads only take longer.
                steps.skip((o.loads.len() - i - 1) as u64);
                break;
            }
        }
        curves.push((s, points));
    }
    let console = vm.finish()?;
    Ok(GuestRun {
        policy,
        curves,
        events: sched_total(&console, "events"),
        steals: sched_total(&console, "steals"),
        ipis: sched_total(&console, "ipis_sent"),
    })
}

/// Guest kernel instructions per event (scheduler + TCP + driver) under `-icount`: 2,000
/// request/reply round trips of service time 0 on one connection. One vCPU: icount's clock
/// counts every vCPU's instructions, so a second core's would be charged to the first.
fn guest_icount(o: &SchedBenchOptions, image: &Path) -> Result<(f64, u64), String> {
    let vm = GuestVm::boot(&GuestSpec {
        image,
        qemu: &o.qemu,
        cpus: 1,
        icount: true,
        tcp: true,
        guest_port: 9000,
        udp_port: None,
        args: vec![
            "ferrix.sched=zygos".into(),
            "tcp-port=9000".into(),
            "idle-exit-ms=500".into(),
        ],
        banner: "synthetic: serving TCP",
    })?;
    let r = (|| -> std::io::Result<()> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", vm.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 8];
        for _ in 0..2000 {
            s.write_all(&0u64.to_le_bytes())?;
            s.read_exact(&mut buf)?;
        }
        Ok(())
    })();
    let console = vm.finish()?;
    r.map_err(|e| format!("icount client: {e}"))?;
    let events = sched_total(&console, "events");
    let kernel = sched_total(&console, "busy_ns").saturating_sub(sched_total(&console, "app_ns"));
    if events == 0 {
        return Err(format!("no events counted:\n{console}"));
    }
    Ok((kernel as f64 / events as f64, events))
}

/// Scheduler-only instructions per event on the host (callgrind): (local, stolen).
fn host_instructions() -> Result<(f64, f64), String> {
    let root = crate::workspace::workspace_root().map_err(|e| e.to_string())?;
    let st = Command::new("cargo")
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "ferrix-sched",
            "--example",
            "event_instructions",
        ])
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err("building sched/examples/event_instructions failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let exe = target.join("release/examples/event_instructions");
    let count = |n: u64, path: &str| -> Result<f64, String> {
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args([n.to_string().as_str(), path])
            .output()
            .map_err(|e| format!("valgrind: {e} (install valgrind for instruction counts)"))?;
        let text = String::from_utf8_lossy(&out.stderr);
        text.lines()
            .find_map(|l| l.split("Collected :").nth(1)?.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no callgrind total in:\n{text}"))
    };
    let per = |path: &str| -> Result<f64, String> {
        Ok((count(20_000, path)? - count(10_000, path)?) / 10_000.0)
    };
    Ok((per("local")?, per("stolen")?))
}

/// Steps of the progress bar: every guest point, the host part, the instruction counts.
fn step_count(o: &SchedBenchOptions) -> u64 {
    let guest = if o.guest {
        o.policies.len() * o.guest_service_us.len() * o.loads.len()
    } else {
        0
    };
    let instructions = usize::from(o.instructions) * (1 + usize::from(o.guest));
    (guest + usize::from(o.host) + instructions) as u64
}

/// Runs the benchmark; progress to `progress` (and a bar, on a terminal); returns the report
/// text and the p99-vs-load panels of the guest and host parts ([`panels`]).
pub fn bench_sched(
    o: &SchedBenchOptions,
    progress: &mut dyn Write,
) -> Result<(String, Vec<Panel>), CliError> {
    let mut steps = Steps::new(step_count(o), progress);
    let mut panels = Vec::new();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "ZygOS policies, SLO p99 <= {SLO_FACTOR}·S̄, exponential service, Poisson arrivals, 2 cores"
    );
    let models = ferrix_sched_bench::model_max_loads(&ferrix_sched_bench::HostBenchOptions {
        cores: 2,
        slo_factor: SLO_FACTOR,
        ..Default::default()
    })
    .map_err(|e| CliError::Bench(format!("qsim: {e}")))?;
    let model = models.central_fcfs;
    let t = ferrix_sched_bench::thesis::REFERENCE;
    let _ = writeln!(
        report,
        "M/G/2/FCFS model max load @ SLO: {model:.3} (qsim). Thesis ({} hyperthreads, M/G/{}/FCFS): ZygOS reaches {:.0} % at S̄ = 10 µs, {:.0} % at 25 µs; steal rate ≈ {:.0} % of events without IPIs.",
        t.cores,
        t.cores,
        t.zygos_fraction_10us * 100.0,
        t.zygos_fraction_25us * 100.0,
        t.steal_rate_no_ipi * 100.0
    );
    if o.guest {
        let image = resolve_image(&o.app)?;
        let mut runs = Vec::new();
        let per_policy = (o.guest_service_us.len() * o.loads.len()) as u64;
        for &policy in &o.policies {
            let _ = writeln!(steps, "bench: guest under {policy}");
            let until = steps.done() + per_policy;
            match guest_run(o, &image, policy, &mut steps) {
                Ok(r) => runs.push(r),
                Err(e) => {
                    let _ = writeln!(report, "guest {policy}: failed: {e}");
                }
            }
            steps.skip(0);
            steps.skip(until.saturating_sub(steps.done()));
        }
        panels.extend(guest_panels(&o.guest_service_us, &runs));
        let _ = writeln!(
            report,
            "\nGuest (QEMU TCG, 2 vCPUs, one queue pair: all connections homed on core 0):"
        );
        for &s in &o.guest_service_us {
            let _ = writeln!(report, "  S̄ = {s} µs:");
            let mut best = Vec::new();
            for r in &runs {
                let Some((_, pts)) = r.curves.iter().find(|(m, _)| *m == s) else {
                    continue;
                };
                let ml = max_load_at_slo(pts, SLO_FACTOR * s);
                best.push((r.policy, ml));
                let curve: Vec<String> = pts
                    .iter()
                    .map(|p| format!("{:.2}:{:.0}", p.load, p.p99_us))
                    .collect();
                let _ = writeln!(
                    report,
                    "    {:<12} max load {ml:.2} = {:.2} of the model; p99 µs by load {}",
                    r.policy.name(),
                    ml / model,
                    curve.join(" ")
                );
            }
            report.push_str(&ordering_line(&best));
        }
        for r in &runs {
            let steal_pct = 100.0 * r.steals as f64 / r.events.max(1) as f64;
            let _ = writeln!(
                report,
                "  {:<12} events {} steals {} ({steal_pct:.0} % of events) IPIs {}",
                r.policy.name(),
                r.events,
                r.steals,
                r.ipis
            );
        }
    }
    if o.host {
        steps.step("bench: host threads (ferrix-sched-bench)");
        let (text, host) = crate::bench_sched_host::host_section(o, &mut steps)?;
        report.push_str(&text);
        panels.extend(host_panels(&host));
    }
    if o.instructions {
        let _ = writeln!(report, "\nInstructions per event:");
        steps.step("bench: scheduler instructions per event (callgrind)");
        match host_instructions() {
            Ok((local, stolen)) => {
                let _ = writeln!(
                    report,
                    "  scheduler only (host, callgrind): local path {local:.0}, stolen path {stolen:.0} (notify, idle decision, claim, completion, remote run)"
                );
            }
            Err(e) => {
                let _ = writeln!(report, "  scheduler only (host): not measured: {e}");
            }
        }
        if o.guest {
            let image = resolve_image(&o.app)?;
            steps.step("bench: guest instructions per event (-icount)");
            match guest_icount(o, &image) {
                Ok((per, events)) => {
                    let _ = writeln!(
                        report,
                        "  guest kernel (QEMU -icount, 1 vCPU, local path): {per:.0} per event over {events} events (scheduler + TCP + driver, not the app)"
                    );
                }
                Err(e) => {
                    let _ = writeln!(report, "  guest kernel: not measured: {e}");
                }
            }
        }
    }
    Ok((report, panels))
}

/// A p99 / S̄ vs load panel titled `title`, its curves from `series`, the SLO line at
/// [`SLO_FACTOR`].
fn panel(title: String, series: Vec<Series>) -> Panel {
    let mut p = Panel::new(&title, "load (fraction of 2/S̄)", qsim::plot::Y_LABEL, 1.0);
    p.series = series;
    p.slo = Some(SLO_FACTOR);
    p.fit_y(1.5 * SLO_FACTOR, 4.0 * SLO_FACTOR);
    p
}

/// The guest part's panels: one per S̄, a curve per policy that ran.
pub fn guest_panels(service_us: &[f64], runs: &[GuestRun]) -> Vec<Panel> {
    service_us
        .iter()
        .map(|&s| {
            let series = runs
                .iter()
                .filter_map(|r| {
                    let (_, pts) = r.curves.iter().find(|(m, _)| *m == s)?;
                    Some(Series {
                        label: format!("{} (guest)", r.policy.name()),
                        points: pts.iter().map(|p| (p.load, p.p99_us / s)).collect(),
                    })
                })
                .collect();
            panel(format!("guest (QEMU TCG): S̄ = {s} µs"), series)
        })
        .collect()
}

/// The host part's panels: one per S̄, a curve per policy (its sweep) and the M/G/2/FCFS model.
pub fn host_panels(r: &ferrix_sched_bench::HostReport) -> Vec<Panel> {
    r.means
        .iter()
        .map(|m| {
            let mut series: Vec<Series> = m
                .policies
                .iter()
                .map(|p| Series {
                    label: format!("{} (host threads)", p.policy.name()),
                    points: p
                        .sweep
                        .iter()
                        .map(|s| (s.load, s.p99_us / m.mean_us))
                        .collect(),
                })
                .collect();
            series.push(Series {
                label: format!("M/G/{}/FCFS (qsim)", r.cores),
                points: r
                    .model_p99
                    .loads
                    .iter()
                    .copied()
                    .zip(r.model_p99.central_fcfs.iter().copied())
                    .collect(),
            });
            panel(format!("host threads: S̄ = {} µs", m.mean_us), series)
        })
        .collect()
}

/// "zygos > zygos-noipi > partitioned: held / did not hold", with the ratios to partitioned.
pub fn ordering_line(best: &[(Policy, f64)]) -> String {
    let get = |p: Policy| best.iter().find(|b| b.0 == p).map(|b| b.1);
    match (
        get(Policy::Zygos),
        get(Policy::ZygosNoIpi),
        get(Policy::Partitioned),
    ) {
        (Some(z), Some(n), Some(p)) => {
            let held = z >= n && n >= p && z > p;
            let ratio = |x: f64| {
                if p > 0.0 {
                    format!("{:.2}x", x / p)
                } else {
                    "n/a".into()
                }
            };
            format!(
                "    ordering zygos >= zygos-noipi >= partitioned (zygos > partitioned): {}; zygos/partitioned {}, zygos-noipi/partitioned {}\n",
                if held { "held" } else { "did NOT hold" },
                ratio(z),
                ratio(n)
            )
        }
        _ => "    ordering: not all policies measured\n".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(load: f64, p99_us: f64, kept: bool) -> GuestPoint {
        GuestPoint {
            load,
            offered_rps: 1000.0,
            sent_rps: 1000.0,
            achieved_rps: if kept { 1000.0 } else { 500.0 },
            p99_us,
            samples: 100,
        }
    }

    #[test]
    fn max_load_needs_slo_and_throughput() {
        let pts = [
            pt(0.1, 50.0, true),
            pt(0.2, 90.0, true),
            pt(0.3, 200.0, true),
        ];
        assert_eq!(max_load_at_slo(&pts, 100.0), 0.2);
        assert_eq!(max_load_at_slo(&[pt(0.5, 10.0, false)], 100.0), 0.0);
        assert_eq!(max_load_at_slo(&[], 100.0), 0.0);
    }

    #[test]
    fn ordering_is_checked() {
        let best = [
            (Policy::Zygos, 0.6),
            (Policy::ZygosNoIpi, 0.5),
            (Policy::Partitioned, 0.3),
        ];
        let l = ordering_line(&best);
        assert!(l.contains("held") && l.contains("2.00x"), "{l}");
        let worse = [
            (Policy::Zygos, 0.2),
            (Policy::ZygosNoIpi, 0.5),
            (Policy::Partitioned, 0.3),
        ];
        assert!(ordering_line(&worse).contains("did NOT hold"));
    }

    #[test]
    fn panels_plot_and_table_both_parts() {
        use ferrix_latplot::inspect;
        let run = |policy, p99s: [f64; 2]| GuestRun {
            policy,
            curves: vec![(2000.0, vec![pt(0.1, p99s[0], true), pt(0.3, p99s[1], true)])],
            events: 0,
            steals: 0,
            ipis: 0,
        };
        let runs = [
            run(Policy::Zygos, [5000.0, 9000.0]),
            run(Policy::Partitioned, [6000.0, 30000.0]),
        ];
        let mut opts = ferrix_sched_bench::HostBenchOptions::quick();
        opts.policies = vec![Policy::Zygos, Policy::Partitioned];
        let host = ferrix_sched_bench::run(&opts, &mut Vec::new()).unwrap();
        let mut panels = guest_panels(&[2000.0], &runs);
        panels.extend(host_panels(&host));
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].series[0].points, vec![(0.1, 2.5), (0.3, 4.5)]);
        assert_eq!(panels[0].series[1].label, "partitioned (guest)");
        assert!(
            (panels[0].y_max - 15.0 * 1.1).abs() < 1e-9,
            "{}",
            panels[0].y_max
        );
        let h = &panels[1];
        assert_eq!(h.series.len(), 3, "two policies and the model");
        for (s, p) in h.series.iter().zip(&host.means[0].policies) {
            assert_eq!(s.points.len(), p.sweep.len());
        }
        assert_eq!(h.series[2].points.len(), host.model_p99.loads.len());

        let dir = std::env::temp_dir().join(format!("ferrix-sched-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = crate::bench_plots::PlotFiles {
            png: Some(dir.join("s.png")),
            csv: Some(dir.join("s.csv")),
        };
        files.loads("sched", &panels, 2).unwrap();
        let text = std::fs::read_to_string(dir.join("s.csv")).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("panel,series,load,p99_over_mean_service")
        );
        let points: usize = panels
            .iter()
            .flat_map(|p| &p.series)
            .map(|s| s.points.len())
            .sum();
        assert_eq!(lines.clone().count(), points, "{text}");
        assert!(
            lines
                .clone()
                .any(|l| l == "guest (QEMU TCG): S̄ = 2000 µs,zygos (guest),0.3,4.500")
        );
        assert!(lines.all(|l| l.split(',').count() == 4));
        let png = inspect::png(&dir.join("s.png")).unwrap();
        assert_eq!((png.width, png.height), (1120, 460));
        assert!(png.ink() > 0.005, "ink {}", png.ink());
        for i in 0..3 {
            assert!(png.has(ferrix_latplot::color(i)), "series colour {i}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn steps_cover_every_part() {
        let o = SchedBenchOptions::default();
        assert_eq!(step_count(&o), 3 * 8 + 1 + 2);
        let host_only = SchedBenchOptions {
            guest: false,
            instructions: false,
            ..SchedBenchOptions::default()
        };
        assert_eq!(step_count(&host_only), 1);
    }

    #[test]
    fn counters_sum_over_cores() {
        let c = "ferrix-sched: core 0 policy zygos: events 10 local 4 steals 0 ipis_sent 1\n\
                 ferrix-sched: core 1 policy zygos: events 5 local 0 steals 5 ipis_sent 2\nx";
        assert_eq!(sched_total(c, "events"), 15);
        assert_eq!(sched_total(c, "steals"), 5);
        assert_eq!(sched_total(c, "ipis_sent"), 3);
    }
}
