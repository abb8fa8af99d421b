//! Command-line parsing (clap) and dispatch; turns every outcome into an exit code.
//!
//! Errors are printed as one line, `ferrix: ...`, on stderr: ours, and clap's too (its
//! multi-line usage errors are cut to their first line). `--help` and `--version` print as
//! usual. Exit codes: the guest's, 124 on timeout, otherwise [`CliError::exit_code`].

use crate::bench::{BenchOptions, bench_boot};
use crate::bench_plots::PlotFiles;
use crate::bench_report;
use crate::error::{CliError, EXIT_USAGE};
use crate::netspec::{NetSpec, parse_mac};
use crate::qemu_run::qemu_binary;
use crate::run::{Accel, RunOptions, Vmm, run};
use crate::size::parse_size;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Build, run and benchmark ferrix images.
#[derive(Debug, Parser)]
#[command(name = "ferrix", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build an app into a guest image and print the image's path.
    Build {
        /// App name (a crate under apps/) or path to a crate directory.
        app: String,
        /// Build without optimizations.
        #[arg(long)]
        debug: bool,
    },
    /// Boot an image (building the app first if needed); exits with the guest's code.
    Run(RunArgs),
    /// The queueing simulator (same as the `qsim` command): `ferrix qsim sweep ...`,
    /// `ferrix qsim figure 6.2`, `ferrix qsim --help`.
    #[command(disable_help_flag = true)]
    Qsim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The experiment: boot the synthetic server (2 vCPUs, ZygOS, QEMU, no root), load it
    /// open-loop with Lancet over a sweep of loads, and print p99 vs load next to the
    /// M/G/2/FCFS and 2×M/G/1 models (qsim), with a PNG plot and a CSV.
    Demo {
        /// Loads (fractions of the 2/S̄ capacity), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "0.1,0.2,0.3,0.4,0.5,0.6,0.7"
        )]
        loads: Vec<f64>,
        /// Mean service time, µs (exponential; under TCG the guest kernel needs ~100 µs per
        /// request, so keep it in milliseconds).
        #[arg(long, default_value_t = 2000.0)]
        service_us: f64,
        /// Seconds of load per point.
        #[arg(long, default_value_t = 4.0)]
        step_secs: f64,
        /// The plot (PNG).
        #[arg(long, default_value = "ferrix-demo.png")]
        png: PathBuf,
        /// The table (CSV).
        #[arg(long, default_value = "ferrix-demo.csv")]
        csv: PathBuf,
        /// App name, crate directory or image to boot.
        #[arg(long, default_value = "synthetic")]
        app: String,
    },
    /// Run an experiment on a testbed: boot the VMs of TESTBED.toml (routers, servers,
    /// replicas) on its hosts over OpenSSH, or with --local all in a network namespace here,
    /// start its Lancet agents, run the coordinator and collect the consoles and Lancet's
    /// report into a results directory (tools/ferrix-cli/README.md, "deploy").
    Deploy {
        /// The testbed file (TOML).
        testbed: PathBuf,
        /// Build the topology on this machine, in a network namespace (needs root).
        #[arg(long)]
        local: bool,
        /// Print what would run; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// The results directory's parent (default: the testbed's `results`).
        #[arg(long, value_name = "DIR")]
        results: Option<PathBuf>,
        /// At most this many ssh/scp commands at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
        /// The ssh program.
        #[arg(long, default_value = "ssh")]
        ssh: String,
        /// The scp program.
        #[arg(long, default_value = "scp")]
        scp: String,
    },
    /// The Lancet load generator (same as the `lancet` command): `ferrix lancet run ...`,
    /// `ferrix lancet agent`, `ferrix lancet --help`.
    #[command(disable_help_flag = true)]
    Lancet {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Image file, app name, or path to a crate directory.
    target: String,
    /// The VMM to boot under.
    #[arg(long, value_enum, default_value = "qemu")]
    vmm: Vmm,
    /// Number of vCPUs (1..=64).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    cpus: u32,
    /// Guest RAM: 64M, 1G, 512K or bytes (16M..=3G).
    #[arg(long, default_value = "128M")]
    mem: String,
    /// Stop the VM after this many seconds (0: never).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    timeout: u64,
    /// QEMU accelerator.
    #[arg(long, value_enum, default_value = "tcg")]
    accel: Accel,
    /// QEMU machine profile: microvm, q35, microvm-icount, or a file (see qemu/README.md).
    #[arg(long, value_name = "NAME|FILE")]
    profile: Option<String>,
    /// Give the VM a virtio-net NIC on this network: user[:udp:HOST:GUEST,...] (QEMU slirp,
    /// host ports on 127.0.0.1), tap:NAME, stream-listen:PATH / stream-connect:PATH (QEMU
    /// two-VM link), switch:DIR (shim inter-VM switch).
    #[arg(long, value_name = "SPEC")]
    net: Option<String>,
    /// The NIC's MAC address (aa:bb:cc:dd:ee:ff).
    #[arg(long)]
    mac: Option<String>,
    /// The NIC's device under the shim: virtio (virtio-net) or ixgbe (an emulated Intel
    /// 82599 on PCI, driven by the guest's ixgbe driver).
    #[arg(long, value_enum, default_value = "virtio", requires = "net")]
    nic: ferrix_shim::net::NicModel,
    /// Write every frame the VM sends or receives to FILE (pcap).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Print per-core network statistics when the guest exits.
    #[arg(long)]
    stats: bool,
    /// Redraw a table of per-core live counters while the VM runs (only when stdout is a
    /// terminal); the guest pushes a record every --stats-ms.
    #[arg(long)]
    stats_live: bool,
    /// Write the guest's live counters to FILE, one JSON object per record.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Interval of live statistics records, ms (with --stats-live / --stats-json).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    stats_ms: u32,
    /// Give the VM a virtio-blk disk backed by this raw image file (QEMU microvm).
    #[arg(long, value_name = "FILE")]
    disk: Option<PathBuf>,
    /// QEMU: let the NIC offer RSS, so the guest programs Toeplitz hashing (off by default:
    /// QEMU's software RSS can stall a TAP queue when a redirect target ring is full).
    #[arg(long)]
    rss: bool,
    /// Sample the guest's instruction pointers N times a second and print the hottest
    /// functions at exit (use --profile microvm-icount to sample by instructions; at most
    /// 1,000,000).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(ferrix_abi::MAX_PROFILE_HZ)))]
    profile_hz: Option<u32>,
    /// Extra kernel command-line arguments.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// `--png` / `--csv` of a latency bench (see `bench_plots.rs`).
#[derive(Debug, clap::Args)]
struct PlotArgs {
    /// Also draw the latencies into this PNG.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// Also write the latencies to this CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

impl From<PlotArgs> for PlotFiles {
    fn from(a: PlotArgs) -> Self {
        PlotFiles {
            png: a.png,
            csv: a.csv,
        }
    }
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// UDP echo: requests/s and p50/p99 latency of apps/udp-echo under QEMU next to a Linux
    /// echo server in the same run, and guest instructions per echoed frame (QEMU -icount).
    UdpEcho {
        /// Measured requests per configuration.
        #[arg(long, default_value_t = 2000)]
        requests: u32,
        /// App name, crate directory or image to boot.
        #[arg(long, default_value = "udp-echo")]
        app: String,
        /// Also measure through a TAP device in a network namespace of the bench's own (needs
        /// root and iproute2): the Linux client talks to the guest, and to a Linux echo server
        /// in the same namespace, over the TAP link.
        #[arg(long)]
        tap: bool,
        /// Latency distributions of the rows measured here (`linux`, `ferrix-qemu`): `--png`
        /// (CCDF) and `--csv` (percentile rows).
        #[command(flatten)]
        plot: PlotArgs,
    },
    /// R2P2 echo: Linux-to-Linux R2P2 round trips/s next to plain UDP echo in the same run,
    /// and guest instructions per R2P2 echo at apps/synthetic (QEMU -icount).
    R2p2 {
        /// Measured requests per configuration.
        #[arg(long, default_value_t = 2000)]
        requests: u32,
        /// Request (and echo) size, bytes (above 1464 a request takes REQ0 + ACK + the rest).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// App name, crate directory or image to boot.
        #[arg(long, default_value = "synthetic")]
        app: String,
        /// Latency distributions of the Linux rows (median rounds): `--png` (CCDF) and `--csv`
        /// (percentile rows).
        #[command(flatten)]
        plot: PlotArgs,
    },
    /// Key-value store: redis-benchmark and memcaslap against apps/kv under QEMU and against
    /// Linux redis-server and memcached in the same run (ratios), and guest instructions per
    /// GET and per SET (QEMU -icount) next to UDP echo's per frame.
    Kv {
        /// Requests per throughput load (redis-benchmark -n, memcaslap -x) [default: 20000,
        /// 5000 with --quick].
        #[arg(short = 'n', long)]
        requests: Option<u32>,
        /// GETs and SETs per protocol in the instruction count [default: 1000, 200 with
        /// --quick].
        #[arg(long)]
        icount_ops: Option<u32>,
        /// A smoke run: small defaults for --requests and --icount-ops.
        #[arg(long)]
        quick: bool,
        /// Only the instruction counts (no throughput rounds, no Linux servers needed).
        #[arg(long)]
        icount_only: bool,
        /// App name, crate directory or image of the key-value store.
        #[arg(long, default_value = "kv")]
        app: String,
        /// The UDP echo app measured as the yardstick.
        #[arg(long, default_value = "udp-echo")]
        echo_app: String,
    },
    /// The ZygOS experiment (thesis 6.5) on 2 cores: p99 vs load and max load @ SLO
    /// (p99 <= 10·S̄) of the three policies (zygos, zygos-noipi, partitioned) as a fraction of
    /// the M/G/2/FCFS model, in the guest (QEMU, Lancet load) and with the scheduler on host
    /// threads; plus instructions per event.
    Sched {
        /// Mean service times in µs (exponential) of the host-threads part, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10,50")]
        service_us: Vec<f64>,
        /// Mean service times in µs of the guest part (under TCG the guest kernel needs about
        /// 100 µs per request, so S̄ must be far above it), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "2000")]
        guest_service_us: Vec<f64>,
        /// Guest loads (fractions of the 2/S̄ capacity), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8"
        )]
        loads: Vec<f64>,
        /// Seconds of load per guest point.
        #[arg(long, default_value_t = 2.0)]
        step_secs: f64,
        /// Policies to compare, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "zygos,zygos-noipi,partitioned"
        )]
        policies: Vec<ferrix_sched::Policy>,
        /// Skip the guest part.
        #[arg(long)]
        no_guest: bool,
        /// Skip the host-threads part.
        #[arg(long)]
        no_host: bool,
        /// Skip the instruction counts.
        #[arg(long)]
        no_instructions: bool,
        /// App name, crate directory or image to boot.
        #[arg(long, default_value = "synthetic")]
        app: String,
        /// p99 / S̄ vs load of the guest and host sweeps: `--png` (a panel per part and S̄) and
        /// `--csv` (every point).
        #[command(flatten)]
        plot: PlotArgs,
    },
    /// (internal) The closed-loop UDP client, run inside the bench's namespace.
    #[command(hide = true)]
    UdpClient {
        dst: String,
        requests: u32,
        warmup: u32,
    },
    /// (internal) A Linux UDP echo server, run inside the bench's namespace.
    #[command(hide = true)]
    UdpServer { bind: String, count: u32 },
    /// Boot time under each VMM (QEMU TCG wall time, QEMU icount instructions, shim).
    Boot {
        /// Boots per configuration.
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// App name, crate directory or image to boot.
        #[arg(long, default_value = "hello")]
        app: String,
        /// Also write the results as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Per-boot timeout in seconds (0: never).
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        timeout: u64,
    },
}

/// One line of a benchmark's table: the configuration and its result or why it is missing.
fn print_row(config: &str, outcome: Result<String, String>) {
    let line = outcome.unwrap_or_else(|e| format!("unavailable: {e}"));
    let _ = writeln!(std::io::stdout(), "{config:<17} {line}");
}

/// Prints a latency bench's rows, then writes its `--png` / `--csv` and names them.
fn print_latency_rows(
    out: bench_report::LatencyRows,
    title: &str,
    files: &PlotFiles,
) -> Result<i32, CliError> {
    for r in out.rows {
        print_row(r.config, r.outcome);
    }
    let _ = write!(
        std::io::stdout(),
        "{}",
        files.distributions(title, &out.series)?
    );
    Ok(0)
}

fn timeout_of(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Runs the command line of this process; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
                _ => {
                    eprintln!("ferrix: {} (see `ferrix --help`)", clap_one_line(&e));
                    return EXIT_USAGE;
                }
            }
        }
    };
    match dispatch(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferrix: {e}");
            e.exit_code()
        }
    }
}

/// The first line of a clap error, without its `error: ` prefix.
fn clap_one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    line.trim_start_matches("error: ").trim().to_string()
}

fn dispatch(cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Build { app, debug } => {
            let image = crate::build::build(&app, !debug)?;
            // A closed stdout (`ferrix build hello | true`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{}", image.display());
            Ok(0)
        }
        Cmd::Demo {
            loads,
            service_us,
            step_secs,
            png,
            csv,
            app,
        } => {
            let opts = crate::demo::DemoOptions {
                qemu: qemu_binary(),
                app,
                service_us,
                loads,
                step_secs,
                png: Some(png),
                csv: Some(csv),
            };
            let table = crate::demo::demo(&opts, &mut std::io::stderr())?;
            let _ = write!(std::io::stdout(), "{table}");
            Ok(0)
        }
        Cmd::Deploy {
            testbed,
            local,
            dry_run,
            results,
            parallel,
            ssh,
            scp,
        } => {
            let remote = crate::deploy::Remote { ssh, scp, parallel };
            crate::deploy::deploy(
                &testbed,
                local,
                dry_run,
                results.as_deref(),
                &remote,
                &mut std::io::stdout(),
            )
            .map_err(CliError::Deploy)
        }
        Cmd::Lancet { args } => {
            let code = lancet::command::main_with_args(
                std::iter::once("ferrix lancet".to_string()).chain(args),
            );
            Ok(if code == std::process::ExitCode::SUCCESS {
                0
            } else {
                1
            })
        }
        Cmd::Qsim { args } => Ok(qsim::main_with_args(
            std::iter::once("ferrix qsim".to_string()).chain(args),
        )),
        Cmd::Run(a) => {
            let mem_bytes =
                parse_size(&a.mem).map_err(|m| CliError::Usage(format!("--mem: {m}")))?;
            let opts = RunOptions {
                target: a.target,
                vmm: a.vmm,
                cpus: a.cpus,
                mem_bytes,
                timeout: timeout_of(a.timeout),
                accel: a.accel,
                profile: a.profile,
                args: a.args,
                net: a
                    .net
                    .as_deref()
                    .map(NetSpec::parse)
                    .transpose()
                    .map_err(CliError::Usage)?,
                mac: a
                    .mac
                    .as_deref()
                    .map(parse_mac)
                    .transpose()
                    .map_err(CliError::Usage)?,
                nic: a.nic,
                pcap: a.pcap,
                stats: a.stats,
                rss: a.rss,
                stats_live: a.stats_live,
                stats_json: a.stats_json,
                stats_ms: a.stats_ms,
                disk: a.disk,
            };
            let res = match a.profile_hz {
                None => run(&opts, Box::new(std::io::stdout()))?,
                Some(hz) => {
                    let mut opts = opts;
                    opts.args.push(format!("ferrix.profile={hz}"));
                    let image = crate::run::resolve_image(&opts.target)?;
                    opts.target = image.to_string_lossy().into_owned();
                    let tee = crate::profile::Tee::new(Box::new(std::io::stdout()));
                    let res = run(&opts, Box::new(tee.clone()))?;
                    match crate::profile::Symbols::from_elf(&image) {
                        Ok(syms) => {
                            let (total, rows) = crate::profile::by_function(&tee.text(), &syms);
                            eprint!("{}", crate::profile::table(total, &rows));
                        }
                        Err(e) => eprintln!("ferrix: cannot read symbols: {e}"),
                    }
                    res
                }
            };
            if res.timed_out {
                eprintln!("ferrix: timeout after {} s: VM stopped", a.timeout);
            }
            Ok(res.exit_code)
        }
        Cmd::Bench {
            what:
                BenchCmd::UdpClient {
                    dst,
                    requests,
                    warmup,
                },
        } => {
            let s = crate::bench_udp::closed_loop(&dst, requests, warmup).map_err(|source| {
                CliError::Io {
                    what: format!("UDP client to {dst}"),
                    source,
                }
            })?;
            let _ = writeln!(std::io::stdout(), "{}", crate::bench_udp::encode_loop(&s));
            Ok(0)
        }
        Cmd::Bench {
            what: BenchCmd::UdpServer { bind, count },
        } => {
            crate::bench_udp::serve_echo(&bind, count).map_err(|source| CliError::Io {
                what: format!("UDP echo server on {bind}"),
                source,
            })?;
            Ok(0)
        }
        Cmd::Bench {
            what:
                BenchCmd::R2p2 {
                    requests,
                    size,
                    app,
                    plot,
                },
        } => {
            let opts = crate::bench_r2p2::R2p2BenchOptions {
                app,
                requests,
                size,
                qemu: qemu_binary(),
            };
            let out = crate::bench_r2p2::bench_r2p2(&opts, &mut std::io::stderr())?;
            let title = format!("R2P2 and UDP echo on 127.0.0.1, {} B", opts.size);
            print_latency_rows(out, &title, &plot.into())
        }
        Cmd::Bench {
            what:
                BenchCmd::Kv {
                    requests,
                    icount_ops,
                    quick,
                    icount_only,
                    app,
                    echo_app,
                },
        } => {
            let opts = crate::bench_kv::KvBenchOptions {
                app,
                echo_app,
                requests: requests.unwrap_or(if quick { 5000 } else { 20000 }),
                icount_ops: icount_ops.unwrap_or(if quick { 200 } else { 1000 }),
                icount_only,
                qemu: qemu_binary(),
            };
            let rows = crate::bench_kv::bench_kv(&opts, &mut std::io::stderr())?;
            for r in rows {
                print_row(r.config, r.outcome);
            }
            Ok(0)
        }
        Cmd::Bench {
            what:
                BenchCmd::Sched {
                    service_us,
                    guest_service_us,
                    loads,
                    step_secs,
                    policies,
                    no_guest,
                    no_host,
                    no_instructions,
                    app,
                    plot,
                },
        } => {
            if service_us
                .iter()
                .chain(&guest_service_us)
                .any(|s| !(s.is_finite() && *s > 0.0))
                || loads
                    .iter()
                    .any(|l| !(l.is_finite() && *l > 0.0 && *l < 1.0))
                || !(step_secs.is_finite() && step_secs > 0.0)
            {
                return Err(CliError::Usage(
                    "--service-us must be > 0, --loads in (0, 1), --step-secs > 0".into(),
                ));
            }
            let opts = crate::bench_sched::SchedBenchOptions {
                qemu: qemu_binary(),
                app,
                service_us,
                guest_service_us,
                loads,
                step_secs,
                policies,
                guest: !no_guest,
                host: !no_host,
                instructions: !no_instructions,
            };
            let (report, panels) = crate::bench_sched::bench_sched(&opts, &mut std::io::stderr())?;
            let _ = write!(std::io::stdout(), "{report}");
            let files = PlotFiles::from(plot);
            let title = "ZygOS policies: p99 vs load (SLO p99 <= 10·S̄)";
            let cols = panels.len().min(2);
            let _ = write!(std::io::stdout(), "{}", files.loads(title, &panels, cols)?);
            Ok(0)
        }
        Cmd::Bench {
            what:
                BenchCmd::UdpEcho {
                    requests,
                    app,
                    tap,
                    plot,
                },
        } => {
            let opts = crate::bench_udp::UdpBenchOptions {
                app,
                requests,
                tap,
                qemu: qemu_binary(),
            };
            let out = crate::bench_udp::bench_udp_echo(&opts, &mut std::io::stderr())?;
            print_latency_rows(out, "UDP echo, one request outstanding", &plot.into())
        }
        Cmd::Bench {
            what:
                BenchCmd::Boot {
                    runs,
                    app,
                    json,
                    timeout,
                },
        } => {
            let opts = BenchOptions {
                app: app.clone(),
                runs,
                timeout: timeout_of(timeout),
                qemu: qemu_binary(),
            };
            let rows = bench_boot(&opts, &mut std::io::stderr())?;
            let _ = write!(std::io::stdout(), "{}", bench_report::table(&rows));
            if let Some(path) = json {
                std::fs::write(&path, bench_report::json(&app, runs, &rows)).map_err(|source| {
                    CliError::Io {
                        what: format!("writing {}", path.display()),
                        source,
                    }
                })?;
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn run_args_parse() {
        let cli = Cli::try_parse_from([
            "ferrix", "run", "hello", "--vmm", "shim", "--cpus", "4", "--mem", "1G", "--", "a=1",
            "b c",
        ])
        .unwrap();
        let Cmd::Run(a) = cli.cmd else {
            panic!("not run")
        };
        assert_eq!((a.vmm, a.cpus, a.mem.as_str()), (Vmm::Shim, 4, "1G"));
        assert_eq!(a.args, ["a=1", "b c"]);
        assert_eq!(timeout_of(a.timeout), Some(Duration::from_secs(60)));
        assert_eq!(timeout_of(0), None);
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = Cli::try_parse_from(["ferrix", "run", "x", "--cpus", "-1"]).unwrap_err();
        let line = clap_one_line(&e);
        assert!(line.contains("--cpus") && !line.contains('\n'), "{line}");
    }
}
