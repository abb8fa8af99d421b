//! `r2p2-server`: an R2P2 echo or synthetic-spin server on a Linux UDP socket.

use clap::Parser;
use ferrix_net::r2p2::ServerConfig;
use r2p2_linux::server::{Mode, serve};
use std::net::SocketAddrV4;
use std::process::ExitCode;

/// Serve R2P2 requests on a UDP socket.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
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

fn main() -> ExitCode {
    let args = Args::parse();
    let mode = match args.synthetic_reply {
        Some(reply_size) => Mode::Synthetic { reply_size },
        None => Mode::Echo,
    };
    let run = || -> Result<(), r2p2_linux::Error> {
        let socket = r2p2_linux::bind(args.listen)?;
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
