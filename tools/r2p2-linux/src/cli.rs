//! The command lines of `r2p2-client`, `r2p2-server` and `r2p2-router`, as functions, so that other packages
//! (the integration tests) can build the same commands as binaries of their own.

use crate::batch::{DEFAULT_BATCH, check_batch};
use crate::client::{Load, run_with};
use crate::router::{RouterOptions, run_router};
use crate::server::{Mode, serve_with_heartbeat};
use crate::{DEFAULT_SPIN_US, LoopOptions, Poll};
use clap::Parser;
use ferrix_net::r2p2::ServerConfig;
use ferrix_router::{Balance, RouterConfig, SvenConfig};
use std::net::Ipv4Addr;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Send R2P2 requests and report p50 / p99 / p99.9 latency.
#[derive(Parser, Debug)]
#[command(name = "r2p2-client", version)]
struct ClientArgs {
    /// Server (or router) address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    server: SocketAddrV4,
    /// Number of requests.
    #[arg(long, short = 'n', default_value_t = 1000)]
    count: u64,
    /// Request size, bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Per-request timeout, milliseconds.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Ask a synthetic server for this service time (ns) in each request.
    #[arg(long)]
    service_ns: Option<u64>,
    /// Requests outstanding at once.
    #[arg(long, default_value_t = 1)]
    depth: u64,
    /// Recover lost packets of multi-packet messages with SACK (a ferrix extension; the
    /// server needs `--sack` too).
    #[arg(long)]
    sack: bool,
    /// Retransmission timeout of the SACK extension, microseconds.
    #[arg(long, default_value_t = 1000)]
    rto_us: u64,
    /// Local address to send from.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddrV4,
    /// Datagrams per `recvmmsg` / `sendmmsg` (1..=1024; 1: one datagram per turn).
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    batch: usize,
    /// Wait for datagrams by busy-polling (`recvmmsg` with `MSG_DONTWAIT` turn after turn,
    /// the CPU yielded between empty polls: lowest latency, a core kept busy while traffic
    /// flows, blocking after `--spin-us` without any) or by blocking in `recvmmsg` with a
    /// read timeout (no CPU while idle; a wake-up, which can take tens of µs in a VM, per
    /// datagram that finds the loop asleep).
    #[arg(long, value_enum, default_value_t = Poll::Busy)]
    poll: Poll,
    /// With `--poll busy`: microseconds without a datagram after which the loop blocks until
    /// the next one (so that an idle loop leaves the core to others).
    #[arg(long, default_value_t = DEFAULT_SPIN_US)]
    spin_us: u64,
    /// Write the latency distribution of the successful requests as a PNG (CCDF, log scale).
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Write latency percentiles as CSV: `series,samples,percentile,latency_us`, one row per
    /// percentile (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100) of the successes.
    #[arg(long, value_name = "FILE.csv")]
    csv: Option<PathBuf>,
}

impl ClientArgs {
    /// The series name in the plot and the CSV.
    fn series(&self) -> String {
        format!("{} B depth {} to {}", self.size, self.depth, self.server)
    }

    /// Writes `--plot` and `--csv` of `r`.
    fn write_outputs(&self, r: &crate::client::Report) -> Result<(), ferrix_latplot::WriteError> {
        let us = r.latencies.iter().map(|&ns| ns as f64 / 1e3).collect();
        let series = [ferrix_latplot::DistSeries::new(self.series(), us)];
        if let Some(p) = &self.csv {
            ferrix_latplot::write_text(p, &ferrix_latplot::dist_csv(&series))?;
        }
        if let Some(p) = &self.plot {
            let title = format!("r2p2-client latency CCDF, {} requests", r.ok);
            ferrix_latplot::write_dist_png(p, &title, &series)?;
        }
        Ok(())
    }
}

/// `r2p2-client`: parses the command line, runs the load, prints one summary line (and writes
/// `--plot` / `--csv`); success when every request got its (matching) reply and the files
/// were written.
pub fn client_main() -> ExitCode {
    let args = ClientArgs::parse();
    let load = Load {
        server: args.server,
        count: args.count,
        size: args.size,
        service_ns: args.service_ns,
        timeout_ns: args.timeout_ms.saturating_mul(1_000_000),
        depth: args.depth,
        verify_echo: args.service_ns.is_none(),
        sack: args.sack,
        rto_ns: args.rto_us.saturating_mul(1000),
    };
    let opts = LoopOptions {
        batch: args.batch,
        poll: args.poll,
        spin_us: args.spin_us,
    };
    let result = crate::bind(args.bind).and_then(|s| run_with(&s, &load, &opts));
    match result {
        Ok(r) => {
            println!(
                "r2p2-client: {} requests of {} B to {}: ok {} timeout {} error {} mismatch {}; latency p50 {:.1} us p99 {:.1} us p99.9 {:.1} us",
                args.count,
                args.size,
                args.server,
                r.ok,
                r.timeouts,
                r.errors,
                r.mismatches,
                r.percentile(0.5) as f64 / 1e3,
                r.percentile(0.99) as f64 / 1e3,
                r.percentile(0.999) as f64 / 1e3,
            );
            if let Err(e) = args.write_outputs(&r) {
                eprintln!("r2p2-client: {e}");
                return ExitCode::FAILURE;
            }
            if r.ok == args.count && r.mismatches == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("r2p2-client: counters {:?}", r.stats);
                eprintln!("r2p2-client: {}", r.io);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("r2p2-client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serve R2P2 requests on a UDP socket.
#[derive(Parser, Debug)]
#[command(name = "r2p2-server", version)]
struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddrV4,
    /// Instead of echoing, spin for the service time each request names (first 8 bytes, ns,
    /// little-endian) and reply with this many bytes.
    #[arg(long)]
    synthetic_reply: Option<usize>,
    /// Send FEEDBACK to this router after each reply, and a heartbeat (FEEDBACK for client
    /// 0.0.0.0:0) at start and every `--heartbeat-ms`, so that the router lists this server
    /// before its first request and while it is idle.
    #[arg(long)]
    router: Option<SocketAddrV4>,
    /// The JBSQ bound n announced in FEEDBACK.
    #[arg(long, default_value_t = 1)]
    jbsq_n: u32,
    /// Heartbeat period, milliseconds (with `--router`).
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
    /// Recover lost packets of multi-packet messages with SACK (a ferrix extension).
    #[arg(long)]
    sack: bool,
    /// Exit after this many replies.
    #[arg(long)]
    count: Option<u64>,
    /// Datagrams per `recvmmsg` / `sendmmsg` (1..=1024; 1: one datagram per turn).
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    batch: usize,
    /// Wait for datagrams by busy-polling (`recvmmsg` with `MSG_DONTWAIT` turn after turn,
    /// the CPU yielded between empty polls: lowest latency, a core kept busy while traffic
    /// flows, blocking after `--spin-us` without any) or by blocking in `recvmmsg` with a
    /// read timeout (no CPU while idle; a wake-up, which can take tens of µs in a VM, per
    /// datagram that finds the loop asleep).
    #[arg(long, value_enum, default_value_t = Poll::Busy)]
    poll: Poll,
    /// With `--poll busy`: microseconds without a datagram after which the loop blocks until
    /// the next one (so that an idle loop leaves the core to others).
    #[arg(long, default_value_t = DEFAULT_SPIN_US)]
    spin_us: u64,
}

fn parse_batch(s: &str) -> Result<usize, String> {
    check_batch(s.parse().map_err(|e| format!("{e}"))?)
}

/// `r2p2-server`: parses the command line and serves until `--count` replies (or forever).
pub fn server_main() -> ExitCode {
    let args = ServerArgs::parse();
    let mode = match args.synthetic_reply {
        Some(reply_size) => Mode::Synthetic { reply_size },
        None => Mode::Echo,
    };
    let run = || -> Result<(), crate::Error> {
        let socket = crate::bind(args.listen)?;
        println!("r2p2-server: listening on {}", socket.local_addr()?);
        let cfg = ServerConfig {
            router: args.router,
            jbsq_n: args.jbsq_n,
            sack: args.sack,
            // Linux schedules this loop late on a busy machine: give partial requests and
            // kept replies 200 RTOs (200 ms) before garbage collection.
            gc_rtos: 200,
            ..ServerConfig::default()
        };
        let opts = LoopOptions {
            batch: args.batch,
            poll: args.poll,
            spin_us: args.spin_us,
        };
        let heartbeat = Duration::from_millis(args.heartbeat_ms.max(1));
        let r = serve_with_heartbeat(&socket, cfg, mode, args.count, &opts, heartbeat)?;
        let stats = r.stats;
        println!(
            "r2p2-server: {} requests, {} dropped malformed; {}",
            stats.completed,
            stats.bad_header + stats.unknown_type + stats.unknown_policy + stats.inconsistent,
            r.io
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("r2p2-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Route R2P2 requests over servers that announce themselves with FEEDBACK (the
/// `ferrix-router` logic on Linux sockets; forwarding keeps the client as the source, which
/// needs root or CAP_NET_RAW).
#[derive(Parser, Debug)]
#[command(name = "r2p2-router", version)]
struct RouterArgs {
    /// Address for client requests (REQ0).
    #[arg(long, default_value = "0.0.0.0:8000")]
    listen: SocketAddrV4,
    /// Address for FEEDBACK and heartbeats from servers.
    #[arg(long, default_value = "0.0.0.0:9000")]
    feedback: SocketAddrV4,
    /// Balancing policy for LB_ROUTE requests: jbsq:N, rand, rr, jsq, pl2.
    #[arg(long, default_value = "jbsq:1", value_parser = parse_policy)]
    policy: Balance,
    /// Most REQ0s held in the central queue (JBSQ); beyond, DROP.
    #[arg(long, default_value_t = 4096)]
    queue_cap: usize,
    /// A held REQ0 older than this is refused with DROP, milliseconds.
    #[arg(long, default_value_t = 1000)]
    queue_timeout_ms: u64,
    /// An outstanding request without FEEDBACK for this long frees its slot, milliseconds.
    #[arg(long, default_value_t = 1000)]
    slot_timeout_ms: u64,
    /// A server silent for this long is removed, milliseconds.
    #[arg(long, default_value_t = 3000)]
    server_timeout_ms: u64,
    /// Most servers.
    #[arg(long, default_value_t = 64)]
    max_servers: usize,
    /// Use the router's n for every server, ignoring the bound servers announce.
    #[arg(long)]
    ignore_announced: bool,
    /// FIXED_ROUTE's target (default: the live server with the lowest address).
    #[arg(long)]
    master: Option<SocketAddrV4>,
    /// Only servers in this network may join, e.g. 10.0.0.0/24.
    #[arg(long, value_parser = parse_net)]
    server_net: Option<(Ipv4Addr, u8)>,
    /// SVEN admission control with this p99 SLO, microseconds.
    #[arg(long)]
    sven_slo_us: Option<u64>,
    /// SVEN's control period, milliseconds.
    #[arg(long, default_value_t = 20)]
    sven_period_ms: u64,
    /// SVEN's target fraction under the SLO.
    #[arg(long, default_value_t = 0.99)]
    sven_percentile: f64,
    /// Seed of random picks and SVEN's drops.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Stop after this many milliseconds (default: at SIGINT / SIGTERM).
    #[arg(long)]
    duration_ms: Option<u64>,
    /// Print the router's counters and one line per server at exit.
    #[arg(long)]
    stats: bool,
}

fn parse_policy(s: &str) -> Result<Balance, String> {
    s.parse()
        .map_err(|e: ferrix_router::BadPolicy| e.to_string())
}

fn parse_net(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("expected ADDRESS/PREFIX, not {s:?}"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|e| format!("{ip:?}: {e}"))?;
    let len: u8 = len.parse().map_err(|e| format!("{len:?}: {e}"))?;
    if len > 32 {
        return Err(format!("prefix length {len} > 32"));
    }
    Ok((ip, len))
}

/// `r2p2-router`: parses the command line and routes until `--duration-ms` or SIGINT.
pub fn router_main() -> ExitCode {
    let args = RouterArgs::parse();
    let ms = |v: u64| v.saturating_mul(1_000_000);
    let cfg = RouterConfig {
        balance: args.policy,
        queue_cap: args.queue_cap,
        queue_timeout_ns: ms(args.queue_timeout_ms),
        slot_timeout_ns: ms(args.slot_timeout_ms),
        server_timeout_ns: ms(args.server_timeout_ms),
        max_servers: args.max_servers,
        honour_announced: !args.ignore_announced,
        master: args.master,
        server_net: args.server_net,
        sven: args.sven_slo_us.map(|slo| SvenConfig {
            slo_ns: slo.saturating_mul(1000),
            period_ns: ms(args.sven_period_ms),
            percentile: args.sven_percentile,
            ..SvenConfig::default()
        }),
        seed: args.seed,
        ..RouterConfig::default()
    };
    let opts = RouterOptions {
        listen: args.listen,
        feedback: args.feedback,
        duration: args.duration_ms.map(Duration::from_millis),
    };
    match run_router(cfg, &opts) {
        Ok(r) => {
            if args.stats {
                println!("r2p2-router: {}", r.stats);
                for s in &r.servers {
                    println!("r2p2-router: {s}");
                }
                if r.send_failures > 0 {
                    println!("r2p2-router: send failures {}", r.send_failures);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("r2p2-router: {e}");
            ExitCode::FAILURE
        }
    }
}
