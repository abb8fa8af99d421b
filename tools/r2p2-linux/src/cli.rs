//! The command lines of `r2p2-client` and `r2p2-server`, as functions, so that other packages
//! (the integration tests) can build the same commands as binaries of their own.

use crate::client::{Load, run};
use crate::server::{Mode, serve};
use clap::Parser;
use ferrix_net::r2p2::ServerConfig;
use std::net::SocketAddrV4;
use std::process::ExitCode;

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
}

/// `r2p2-client`: parses the command line, runs the load, prints one summary line; success
/// when every request got its (matching) reply.
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
    let result = crate::bind(args.bind).and_then(|s| run(&s, &load));
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
    /// Send FEEDBACK to this router after each reply.
    #[arg(long)]
    router: Option<SocketAddrV4>,
    /// Recover lost packets of multi-packet messages with SACK (a ferrix extension).
    #[arg(long)]
    sack: bool,
    /// Exit after this many replies.
    #[arg(long)]
    count: Option<u64>,
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
            sack: args.sack,
            // Linux schedules this loop late on a busy machine: give partial requests and
            // kept replies 200 RTOs (200 ms) before garbage collection.
            gc_rtos: 200,
            ..ServerConfig::default()
        };
        let stats = serve(&socket, cfg, mode, args.count)?;
        println!(
            "r2p2-server: {} requests, {} dropped malformed",
            stats.completed,
            stats.bad_header + stats.unknown_type + stats.unknown_policy + stats.inconsistent
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
