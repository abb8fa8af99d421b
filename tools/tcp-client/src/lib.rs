//! `ferrix-tcp-client`: ferrix's TCP client (the `ferrix-net` endpoint, smoltcp inside) as a
//! Linux user-space program on a TAP device, so a Linux host can be a CRAB client and an
//! SLO-aware client without kernel changes. The TAP is a host of its own on whatever the TAP
//! is plugged into (a bridge port, typically): it has its own MAC and address, and the Linux
//! kernel never sees its connections.
//!
//! Two modes, both over `--conns N` connections to `--connect IP:PORT` with 32-byte messages
//! whose echoes are checked byte for byte:
//! - echo rounds (the tcp-echo guest's client, [`rounds`]): `--rounds M` messages per
//!   connection, `--interval-ms K` apart;
//! - open loop (`--rate R`, [`open_loop`]): Poisson arrivals at R requests/s for
//!   `--duration-ms`, each asking the tcp-echo queueing server for `--service-us` of service
//!   drawn from `--dist`; prints the latency percentiles and the refused fraction.
//!
//! `--crab` offers connection redirection; `--slo` reads the server's window as tokens and
//! sends with `send_request` (a refused send is counted: retried at the next round, or in
//! open loop the request is dropped, as the thesis's clients do).
//!
//! Needs CAP_NET_ADMIN (to attach to the TAP); run it inside a network namespace.

mod open_loop;
mod rounds;

use clap::{Parser, ValueEnum};
use ferrix_net::tcp::{FrameQueue, Instant};
use ferrix_net::{IfConfig, MacAddr};
use ferrix_shim::net::backend::Backend;
use ferrix_shim::net::tap::Tap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Instant as Clock;

/// Bytes per message (request and echo).
pub(crate) const MSG: usize = 32;

/// Service-time distributions of the open loop (the thesis's three, 8.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dist {
    /// Every request the mean.
    Fixed,
    /// Exponential with that mean.
    Exp,
    /// 90 % half the mean, 10 % 5.5 times it (the thesis's 5 / 55 µs for a 10 µs mean).
    Bimodal,
}

#[derive(Parser)]
#[command(
    name = "ferrix-tcp-client",
    about = "ferrix's TCP client on a TAP device"
)]
pub(crate) struct Args {
    /// The TAP device (created if missing).
    #[arg(long)]
    pub(crate) tap: String,
    /// This client's address, A.B.C.D/N.
    #[arg(long)]
    pub(crate) ip: String,
    /// This client's MAC.
    #[arg(long, default_value = "02:00:00:00:00:fe")]
    pub(crate) mac: String,
    /// The server (or a CRAB load balancer's VIP).
    #[arg(long)]
    pub(crate) connect: SocketAddrV4,
    #[arg(long, default_value_t = 4)]
    pub(crate) conns: usize,
    #[arg(long, default_value_t = 10)]
    pub(crate) rounds: u32,
    #[arg(long, default_value_t = 0)]
    pub(crate) interval_ms: u64,
    /// Offer CRAB connection redirection.
    #[arg(long)]
    pub(crate) crab: bool,
    /// SLO-aware flow control: spend the server's tokens.
    #[arg(long)]
    pub(crate) slo: bool,
    /// Open loop: Poisson arrivals at this many requests per second (all connections).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Open loop: how long to offer load.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) duration_ms: u64,
    /// Open loop: mean service time each request asks for (0: the server's default).
    #[arg(long, default_value_t = 0)]
    pub(crate) service_us: u32,
    /// Open loop: the service-time distribution.
    #[arg(long, value_enum, default_value_t = Dist::Fixed)]
    pub(crate) dist: Dist,
    /// Open loop: the seed of the arrivals, connection choices and service times.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    #[arg(long, default_value_t = 30_000)]
    pub(crate) timeout_ms: u64,
}

/// The TAP as the endpoint's frame queue.
pub(crate) struct TapQueue {
    tap: Tap,
    buf: Vec<u8>,
    pub(crate) send_errors: u64,
}

impl FrameQueue for TapQueue {
    type RxFrame = Vec<u8>;

    fn receive(&mut self) -> Option<Vec<u8>> {
        match self.tap.recv(&mut self.buf) {
            Ok(Some(n)) => Some(self.buf[..n].to_vec()),
            _ => None,
        }
    }

    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, fill: F) -> R {
        let mut f = vec![0u8; len];
        let r = fill(&mut f);
        if self.tap.send(&f).is_err() {
            self.send_errors += 1;
        }
        r
    }
}

fn parse_ifc(a: &Args) -> Result<IfConfig, String> {
    let (ip, prefix) =
        a.ip.split_once('/')
            .ok_or_else(|| format!("--ip {}: want A.B.C.D/N", a.ip))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("--ip {}: bad address", a.ip))?;
    let prefix_len: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("--ip {}: bad prefix length", a.ip))?;
    let bytes: Vec<u8> = a
        .mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--mac {}: not a MAC", a.mac))?;
    let mac = MacAddr(
        bytes
            .try_into()
            .map_err(|_| format!("--mac {}: six bytes", a.mac))?,
    );
    if mac.is_multicast() {
        return Err(format!("--mac {}: a multicast address", a.mac));
    }
    Ok(IfConfig {
        mac,
        ip,
        prefix_len,
        gateway: None,
        mtu: 1500,
    })
}

/// Microseconds since `start` as the endpoint's clock.
pub(crate) fn now(start: Clock) -> Instant {
    Instant::from_micros(start.elapsed().as_micros() as i64)
}

fn run(a: Args) -> Result<String, String> {
    let ifc = parse_ifc(&a)?;
    let tap = Tap::open(&a.tap).map_err(|e| e.to_string())?;
    let q = TapQueue {
        tap,
        buf: vec![0u8; 65536],
        send_errors: 0,
    };
    match a.rate {
        Some(_) => open_loop::run(&a, &ifc, q),
        None => rounds::run(&a, &ifc, q),
    }
}

/// The command: parses the arguments, runs, prints the result line; exit 1 on failure.
pub fn main_cli() -> ExitCode {
    match run(Args::parse()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrix-tcp-client: {e}");
            ExitCode::FAILURE
        }
    }
}
