//! Runs the host half of `ferrix bench sched` and prints its tables.
//!
//! ```text
//! cargo run --release -p ferrix-sched-bench --example host_sched            # the default bench
//! cargo run --release -p ferrix-sched-bench --example host_sched -- quick   # a smoke run
//! cargo run --release -p ferrix-sched-bench --example host_sched -- --csv points.csv --json report.json
//! cargo run --release -p ferrix-sched-bench --example host_sched -- point zygos 0.7 10
//! ```
use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use ferrix_sched_bench::{Error, HostBenchOptions, Policy, run, run_point};

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("host_sched: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = HostBenchOptions::default();
    let (mut csv, mut json) = (None, None);
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| Error::BadOption(format!("{} needs a value", args[i])))
        };
        match args[i].as_str() {
            "quick" => opts = HostBenchOptions::quick(),
            "--csv" => {
                csv = Some(value(i)?);
                i += 1;
            }
            "--json" => {
                json = Some(value(i)?);
                i += 1;
            }
            "point" => {
                let [policy, load, mean] = [1, 2, 3].map(|k| args.get(i + k).cloned());
                let bad = || Error::BadOption("usage: point POLICY LOAD MEAN_US".into());
                let policy: Policy = policy
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|e| Error::BadOption(format!("{e}")))?;
                let load: f64 = load.ok_or_else(bad)?.parse().map_err(|_| bad())?;
                let mean: f64 = mean.ok_or_else(bad)?.parse().map_err(|_| bad())?;
                let p = run_point(policy, load, mean, &opts)?;
                println!("{}", serde_json::to_string_pretty(&p)?);
                return Ok(());
            }
            other => return Err(Error::BadOption(format!("unknown argument {other}"))),
        }
        i += 1;
    }
    let report = run(&opts, &mut std::io::stdout())?;
    if let Some(path) = csv {
        report.write_csv(&mut BufWriter::new(File::create(path)?))?;
    }
    if let Some(path) = json {
        report.write_json(&mut BufWriter::new(File::create(path)?))?;
    }
    Ok(())
}
