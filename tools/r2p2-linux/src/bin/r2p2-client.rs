//! `r2p2-client`: sends N R2P2 requests and prints latency percentiles.

use clap::Parser;
use r2p2_linux::client::{Load, run};
use std::net::SocketAddrV4;
use std::process::ExitCode;

/// Send R2P2 requests and report p50 / p99 / p99.9 latency.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
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
    /// Local address to send from.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddrV4,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let load = Load {
        server: args.server,
        count: args.count,
        size: args.size,
        service_ns: args.service_ns,
        timeout_ns: args.timeout_ms.saturating_mul(1_000_000),
        depth: args.depth,
        verify_echo: args.service_ns.is_none(),
        sack: args.sack,
    };
    let result = r2p2_linux::bind(args.bind).and_then(|s| run(&s, &load));
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
            if r.ok == args.count && r.mismatches == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("r2p2-client: counters {:?}", r.stats);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("r2p2-client: {e}");
            ExitCode::FAILURE
        }
    }
}
