//! The `qsim` command line: `run`, `sweep`, `max-load`, `figure`, `bench`. Bad input prints one
//! line and exits non-zero; [`main_with_args`] is what both the `qsim` binary and (later)
//! `ferrix qsim ...` call.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferrix_dist::{ArrivalSpec, Shape};

use crate::plot::{panel_from_results, plot_panels};
use crate::{Model, QsimError, SimConfig, bench, figures, maxload, output, simulate, sweep};

#[derive(Debug, Parser)]
#[command(
    name = "qsim",
    version,
    about = "Discrete-event simulator for the thesis's queueing models"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Simulate one model at one load and print every statistic as JSON.
    Run {
        #[command(flatten)]
        sim: SimArgs,
        /// Offered load, a fraction of n/S̄.
        #[arg(long)]
        load: f64,
    },
    /// Sweep load for one or more models; print a table, optionally write CSV/JSON/PNG.
    Sweep {
        #[command(flatten)]
        sim: SimArgs,
        /// Loads: START:STOP:STEP or a comma-separated list.
        #[arg(long, default_value = "0.1:0.9:0.1")]
        loads: String,
        #[command(flatten)]
        out: OutArgs,
        /// Upper end of the plot's y axis (default 3 × SLO).
        #[arg(long)]
        y_max: Option<f64>,
    },
    /// Highest load whose p99 meets the SLO (bisection), per model.
    MaxLoad {
        #[command(flatten)]
        sim: SimArgs,
        /// Stop when the load interval is narrower than this.
        #[arg(long, default_value_t = 0.002)]
        tol: f64,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Regenerate a thesis figure (3.1, 6.2, 6.12, 10.1) as PNG + CSV.
    Figure {
        /// Figure number.
        id: String,
        /// Output directory.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Measured requests per point.
        #[arg(long, default_value_t = 200_000)]
        requests: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Measure simulated requests per second for M/G/n/FCFS on one core.
    Bench {
        #[arg(long, default_value_t = 16)]
        workers: usize,
        #[arg(long, default_value = "exp")]
        dist: String,
        #[arg(long, default_value_t = 0.9)]
        load: f64,
        #[arg(long, default_value_t = 10_000_000)]
        requests: u64,
    },
}

#[derive(Debug, Args)]
struct SimArgs {
    /// Model spec (repeat for several), e.g. mg-n-fcfs, partitioned-fcfs, jbsq:n=2,delay=0.
    #[arg(long = "model", default_value = "mg-n-fcfs")]
    models: Vec<String>,
    /// Workers n.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Service distribution: det, exp, bimodal-1, bimodal-2, lognormal:sigma=1, file:PATH, ...
    #[arg(long, default_value = "exp")]
    dist: String,
    /// Mean service time S̄ (latencies are reported in the same unit).
    #[arg(long, default_value_t = 1.0)]
    mean: f64,
    /// Arrival process: poisson, det, trace:PATH.
    #[arg(long, default_value = "poisson")]
    arrivals: String,
    /// p99 SLO as a multiple of S̄.
    #[arg(long, default_value_t = 10.0)]
    slo: f64,
    /// Measured requests per run.
    #[arg(long, default_value_t = 500_000)]
    requests: u64,
    /// Warm-up requests per run (default: 5 % of --requests).
    #[arg(long)]
    warmup: Option<u64>,
    /// Batches for the confidence intervals.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct OutArgs {
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long)]
    json: Option<PathBuf>,
    /// PNG plot of p99 vs load.
    #[arg(long)]
    plot: Option<PathBuf>,
}

impl SimArgs {
    fn models(&self) -> Result<Vec<Model>, QsimError> {
        self.models.iter().map(|m| m.parse()).collect()
    }

    fn base(&self) -> Result<SimConfig, QsimError> {
        let service: Shape = self.dist.parse()?;
        let arrivals: ArrivalSpec = self.arrivals.parse()?;
        let model = self
            .models()?
            .into_iter()
            .next()
            .unwrap_or(Model::CentralFcfs);
        let cfg = SimConfig {
            mean: self.mean,
            arrivals,
            requests: self.requests,
            warmup: self.warmup.unwrap_or(self.requests / 20),
            batches: self.batches,
            seed: self.seed,
            slo: self.slo,
            ..SimConfig::new(model, self.workers, service, 0.5)
        };
        if !(self.slo > 0.0 && self.slo.is_finite()) {
            return Err(QsimError::BadOption(format!(
                "--slo must be > 0, got {}",
                self.slo
            )));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn threads(&self) -> usize {
        self.threads.unwrap_or_else(sweep::default_threads)
    }
}

/// Run the command line `args` (program name first); returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                print!("{e}");
                return 0;
            }
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "qsim: {} (see qsim --help)",
                first.trim_start_matches("error: ")
            );
            return 2;
        }
    };
    match dispatch(cli.cmd) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("qsim: {e}");
            1
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<(), QsimError> {
    match cmd {
        Cmd::Run { sim, load } => {
            let cfg = SimConfig {
                load,
                ..sim.base()?
            };
            let r = simulate(&cfg)?;
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        }
        Cmd::Sweep {
            sim,
            loads,
            out,
            y_max,
        } => {
            let base = sim.base()?;
            let loads = sweep::parse_loads(&loads)?;
            let results = sweep::sweep(&base, &sim.models()?, &loads, sim.threads(), true)?;
            print!("{}", output::table(&results));
            if let Some(p) = &out.csv {
                output::write_csv(p, &results)?;
            }
            if let Some(p) = &out.json {
                output::write_json(p, &results)?;
            }
            if let Some(p) = &out.plot {
                let title = format!("p99 vs load, n = {}, {}", base.workers, base.service);
                let panel = panel_from_results(
                    &format!("SLO p99 <= {} x mean service time", base.slo),
                    &results,
                    y_max.unwrap_or(3.0 * base.slo) * base.mean,
                    Some(base.slo * base.mean),
                );
                plot_panels(p, &title, &[panel], 1)?;
            }
        }
        Cmd::MaxLoad { sim, tol, json } => {
            if !(tol > 0.0 && tol < 0.5) {
                return Err(QsimError::BadOption(format!(
                    "--tol must be in (0, 0.5), got {tol}"
                )));
            }
            let base = sim.base()?;
            let jobs: Vec<SimConfig> = sim
                .models()?
                .into_iter()
                .map(|model| SimConfig {
                    model,
                    ..base.clone()
                })
                .collect();
            let found = std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .iter()
                    .map(|j| s.spawn(move || maxload::max_load(j, tol)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(QsimError::BadOption("search failed".into())))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })?;
            for m in &found {
                println!(
                    "{:<28} {:<10} n={:<3} SLO p99 <= {}·S̄: max load {:.1} % ({} runs)",
                    m.model,
                    m.dist,
                    m.workers,
                    m.slo,
                    100.0 * m.max_load,
                    m.probes
                );
            }
            if let Some(p) = &json {
                output::write_json(p, &found)?;
            }
        }
        Cmd::Figure {
            id,
            out,
            requests,
            seed,
            threads,
        } => {
            let base = SimConfig {
                requests,
                warmup: requests / 20,
                seed,
                ..SimConfig::new(Model::CentralFcfs, 16, Shape::Exponential, 0.5)
            };
            base.validate()?;
            let threads = threads.unwrap_or_else(sweep::default_threads);
            let (png, csv) = figures::render(&id, &out, &base, threads, true)?;
            println!("wrote {} and {}", png.display(), csv.display());
        }
        Cmd::Bench {
            workers,
            dist,
            load,
            requests,
        } => {
            let cfg = SimConfig {
                requests,
                warmup: 0,
                ..SimConfig::new(Model::CentralFcfs, workers, dist.parse()?, load)
            };
            let r = bench::run(&cfg)?;
            println!(
                "M/G/{workers}/FCFS {dist} load {load}: {:.1} M requests/s (simulation loop), {:.1} M requests/s (with statistics), {} requests, one core",
                r.core_per_sec / 1e6,
                r.full_per_sec / 1e6,
                r.requests
            );
        }
    }
    Ok(())
}
