//! The `lancet` command: coordinator (`run`), agent and synthetic test server. Errors print one
//! line and exit non-zero. The binary calls [`main_with_args`]; so does `ferrix lancet`.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use crate::bench::{self, BenchConfig};
use crate::cli::{AgentArgs, BenchArgs, Cli, Command, RunArgs, ServerArgs, require_latency_agent};
use crate::coordinator::{self, Pattern, Settings};
use crate::launch::{self, LISTEN_BANNER};
use crate::plot::{self, ModelCurve};
use crate::report::{self, RunReport};
use crate::server::SyntheticServer;

/// Runs the command line `args` (the first is the program name); returns the exit code.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let r = match cli.command {
        Command::Run(a) => run(&a),
        Command::Agent(a) => agent(&a),
        Command::Server(a) => server(&a),
        Command::Bench(a) => bench_cmd(&a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lancet: {e}");
            ExitCode::from(2)
        }
    }
}

fn agent(a: &AgentArgs) -> Result<ExitCode, String> {
    let l =
        TcpListener::bind(&a.listen).map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    println!("{LISTEN_BANNER}{addr}");
    let _ = std::io::stdout().flush();
    crate::agent::serve(l, a.once).map_err(|e| format!("agent: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn server(a: &ServerArgs) -> Result<ExitCode, String> {
    let s = SyntheticServer::start(&a.listen, a.transport, a.grow_us_per_s)
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    println!("lancet synthetic server on {} ({})", s.addr(), a.transport);
    let end = Instant::now() + Duration::from_secs_f64(a.duration_secs.clamp(0.0, 86_400.0));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_cmd(a: &BenchArgs) -> Result<ExitCode, String> {
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if !(ok(a.lo)
        && a.hi >= a.lo
        && ok(a.secs)
        && a.secs <= 600.0
        && a.alpha > 0.0
        && a.alpha < 1.0)
    {
        return Err("bench needs 0 < --lo <= --hi, 0 < --secs <= 600, 0 < --alpha < 1".into());
    }
    let cfg = BenchConfig {
        lo: a.lo,
        hi: a.hi,
        steps: a.steps.min(20),
        secs: a.secs,
        alpha: a.alpha,
        size: a.size.clamp(1, 65_000),
        batch: a.batch.clamp(1, 1024),
    };
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    let progress = |s: &bench::Step| {
        if !to_stdout {
            eprintln!(
                "  {:.0} rps: sent {:.0}, late {}, AD p {:.3}: {}",
                s.target_rps,
                s.sent_rps,
                s.late,
                s.ad_p_value,
                if s.passed { "pass" } else { "fail" }
            );
        }
    };
    let r = bench::run(&cfg, &progress)?;
    if !to_stdout {
        print!("{}", r.text());
    }
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())? + "\n";
        write_out(p, &text)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn settings(a: &RunArgs) -> Result<Settings, String> {
    if !(a.confidence > 0.0 && a.confidence < 1.0) {
        return Err(format!(
            "--confidence must be in (0, 1), got {}",
            a.confidence
        ));
    }
    if a.percentiles.iter().any(|p| !(*p > 0.0 && *p < 100.0)) {
        return Err("--percentiles must be in (0, 100)".into());
    }
    if !a
        .percentiles
        .iter()
        .any(|p| (p - a.ci_percentile).abs() < 1e-9)
    {
        return Err(format!(
            "--ci-percentile {} is not among --percentiles",
            a.ci_percentile
        ));
    }
    if a.samples == 0 || a.sampling == 0 {
        return Err("--samples and --sampling must be >= 1".into());
    }
    if !(a.latency_agent_rps.is_finite() && a.latency_agent_rps > 0.0) {
        return Err("--latency-agent-rps must be > 0".into());
    }
    let quick = a.quick;
    Ok(Settings {
        quick,
        percentiles: a.percentiles.clone(),
        confidence: a.confidence,
        ci_percentile: a.ci_percentile,
        ci_width_us: a.ci_width_us,
        ci_width_rel: a.ci_width_rel.max(0.0),
        load_tolerance: a.load_tolerance,
        ad_alpha: a.ad_alpha,
        samples: if quick {
            a.samples.min(2000)
        } else {
            a.samples
        },
        sampling: if quick { a.sampling.min(2) } else { a.sampling },
        more_samples: a.more_samples,
        max_retries: if quick { 0 } else { a.max_retries },
        max_lag: a.max_lag,
        warmup: Duration::from_millis(if quick {
            a.warmup_ms.min(200)
        } else {
            a.warmup_ms
        }),
        max_time: Duration::from_secs_f64(if quick {
            a.max_secs.clamp(1.0, 10.0)
        } else {
            a.max_secs.max(1.0)
        }),
        timestamps: a.timestamps,
        latency_agent_rps: a.latency_agent_rps,
        busy_poll_us: a.busy_poll_us,
    })
}

fn pattern(a: &RunArgs) -> Result<Pattern, String> {
    let positive = |r: f64| r.is_finite() && r > 0.0;
    match (&a.load, &a.sweep, a.max_at_slo) {
        (Some(r), None, None) if positive(*r) => Ok(Pattern::Fixed(*r)),
        (None, Some(rs), None) if !rs.is_empty() && rs.iter().all(|r| positive(*r)) => {
            Ok(Pattern::Sweep(rs.clone()))
        }
        (None, None, Some(slo)) if positive(slo) && positive(a.lo) && a.hi > a.lo => {
            Ok(Pattern::MaxAtSlo {
                lo: a.lo,
                hi: a.hi,
                slo_us: slo,
                steps: a.steps.max(1),
            })
        }
        (None, None, None) => Err("give one of --load, --sweep or --max-at-slo".into()),
        _ => Err("loads must be > 0 (and --hi > --lo); give only one load pattern".into()),
    }
}

fn write_out(path: &Path, text: &str) -> Result<(), String> {
    if path == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn run(a: &RunArgs) -> Result<ExitCode, String> {
    let s = settings(a)?;
    let pattern = pattern(a)?;
    let w = a.workload();
    w.validate().map_err(|e| e.to_string())?;
    let model = match &a.model {
        Some(spec) => Some(ModelCurve::new(
            spec,
            a.model_workers,
            &a.service,
            a.service_us,
            a.model_offset_us,
        )?),
        None => None,
    };
    let timeout = Duration::from_secs_f64(a.agent_timeout_secs.max(1.0));
    let (mut agents, _local) = match &a.agents_file {
        Some(f) => {
            let c = launch::connect_file(f, timeout).map_err(|e| e.to_string())?;
            let kinds: Vec<_> = c.iter().map(|a| a.kind).collect();
            require_latency_agent(&kinds)?;
            (c, None)
        }
        None => {
            let kinds = a.local_agent_kinds()?;
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let (c, l) = launch::spawn_local(&exe, &kinds, timeout).map_err(|e| e.to_string())?;
            (c, Some(l))
        }
    };
    // A spinner only on a terminal outside CI (ferrix-latplot's rule for every tool).
    let shown = ferrix_latplot::progress::enabled();
    let bar = if a.quiet || a.json.as_deref() == Some(Path::new("-")) || !shown {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                .map_err(|e| e.to_string())?,
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    };
    let progress = |m: String| bar.set_message(m);
    let exp = coordinator::run_pattern(&mut agents, &w, &pattern, &s, &progress)
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    coordinator::finish(&mut agents).map_err(|e| e.to_string())?;
    let names = agents.iter().map(|a| a.name.clone()).collect();
    if a.json.as_deref() != Some(Path::new("-")) {
        print!("{}", report::table(&exp));
    }
    if let Some(p) = &a.json {
        let r = RunReport {
            workload: &w,
            settings: &s,
            agents: names,
            experiment: &exp,
        };
        let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())? + "\n";
        write_out(p, &text)?;
    }
    if let Some(p) = &a.csv {
        write_out(p, &report::csv(&exp))?;
    }
    if let Some(p) = &a.samples_csv {
        write_out(p, &report::samples_csv(&exp))?;
    }
    if let Some(p) = &a.plot {
        let curve = match &model {
            Some(m) => {
                let max = exp
                    .points
                    .iter()
                    .map(|r| r.achieved_rps)
                    .fold(0.0, f64::max);
                Some((m.label.as_str(), m.curve(max * 1.1, 40)?))
            }
            None => None,
        };
        let curve = curve.as_ref().map(|(l, c)| (*l, c.as_slice()));
        plot::plot(p, &exp, a.ci_percentile, curve)?;
    }
    Ok(if exp.points.iter().all(|p| p.conclusive) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
