//! HovercRaft performance simulation (thesis 12.7): throughput under a 500 µs p99 SLO for
//! VanillaRaft, HovercRaft and HovercRaft++ at 3 to 9 nodes (S = 1 µs), and read-only load
//! balancing on 3 nodes (75 % reads, bimodal S̄ = 10 µs), in virtual time over the real
//! ferrix-raft replicas. `cargo run --release -p ferrix-raft --example hover_bench [--csv FILE]`

#[path = "../tests/perfsim/mod.rs"]
mod perfsim;

use std::process::ExitCode;

use perfsim::experiments::{self, Scale};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut csv: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--csv" => match args.next() {
                Some(f) => csv = Some(f),
                None => {
                    eprintln!("hover_bench: --csv needs a file name");
                    return ExitCode::from(2);
                }
            },
            "--one" => {
                let v: Vec<String> = args.by_ref().take(4).collect();
                return one(&v);
            }
            _ => {
                eprintln!("hover_bench: unknown argument {a:?} (usage: hover_bench [--csv FILE])");
                return ExitCode::from(2);
            }
        }
    }
    let scale = Scale::full();
    println!("(1) throughput under a 500 µs p99 SLO, S = 1 µs, 24 B requests, 8 B replies");
    let mut rows = experiments::scaling(&scale, &experiments::SCALING);
    print!("{}", experiments::scaling_table(&rows));
    println!();
    println!("(2) 3 nodes, 75 % read-only, bimodal S (90 % short, 10 % 10x, mean 10 µs)");
    let ro = experiments::read_only(&scale);
    print!("{}", experiments::read_only_table(&ro));
    rows.extend(ro);
    println!();
    println!("(3) 3 nodes, S = 1 µs, request size (figure 12.7; checks the per-byte cost)");
    let rs = experiments::request_size(&scale, &[24, 64, 512]);
    print!("{}", experiments::request_size_table(&rs));
    rows.extend(rs);
    println!();
    println!("(4) S = 1 µs, 6 KB replies, reply queues of 128 (figure 12.9)");
    let big = experiments::big_replies(&scale);
    print!("{}", experiments::big_replies_table(&big));
    rows.extend(big);
    println!();
    println!(
        "(5) latency at low load, 3 nodes, S = 1 µs (follower repliers learn the commit late)"
    );
    print!(
        "{}",
        experiments::low_load(&[5_000.0, 20_000.0, 100_000.0], 100 * perfsim::clock::MS, 1)
    );
    if let Some(f) = csv
        && let Err(e) = std::fs::write(&f, experiments::csv(&rows))
    {
        eprintln!("hover_bench: cannot write {f}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `--one SYSTEM N RATE RO`: one run (SYSTEM vanilla, hover, plus, plus-random, unrep; RO the
/// read-only fraction, 0 for the S = 1 µs baseline, else the bimodal workload).
fn one(v: &[String]) -> ExitCode {
    use perfsim::cluster::{System, run};
    use perfsim::workload::Workload;
    let [sys, n, rate, ro] = v else {
        eprintln!("hover_bench: --one SYSTEM N RATE RO");
        return ExitCode::from(2);
    };
    let system = match sys.as_str() {
        "vanilla" => System::VANILLA,
        "hover" => System::HOVER,
        "plus" => System::PLUS,
        "plus-random" => System::plus(ferrix_raft::ReplierPolicy::Random),
        "unrep" => System::Unreplicated,
        _ => {
            eprintln!("hover_bench: bad system {sys:?}");
            return ExitCode::from(2);
        }
    };
    let (Ok(n), Ok(rate), Ok(ro)) = (n.parse::<u8>(), rate.parse::<f64>(), ro.parse::<f64>())
    else {
        eprintln!("hover_bench: bad number");
        return ExitCode::from(2);
    };
    let (w, window) = if ro > 0.0 {
        (experiments::read_only_workload(ro), Scale::full().window2)
    } else {
        (Workload::baseline(rate), Scale::full().window1)
    };
    let mut s = experiments::setup(system, n, w, window, 1);
    s.workload.rate = rate;
    s.slo = u64::MAX;
    let t = std::time::Instant::now();
    let o = run(&s);
    println!("{}{o:?}\nwall {:?}", o.notes, t.elapsed());
    ExitCode::SUCCESS
}
