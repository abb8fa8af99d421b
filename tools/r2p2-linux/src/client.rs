//! The client loop: N requests of a size, `depth` outstanding at a time, each with its own
//! timeout; latency percentiles of the successful ones.

use crate::{Error, MAX_DATAGRAM, StdClock, UdpTransport, recv};
use ferrix_net::r2p2::{Client, ClientConfig, Clock, Outcome, Policy, synthetic};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::Duration;

/// What to send.
#[derive(Clone, Debug)]
pub struct Load {
    /// Server (or router) address.
    pub server: SocketAddrV4,
    /// Requests in total.
    pub count: u64,
    /// Request size in bytes (at least 8 when `service_ns` is set).
    pub size: usize,
    /// Service time to ask for (synthetic server), ns.
    pub service_ns: Option<u64>,
    /// Per-request timeout, ns.
    pub timeout_ns: u64,
    /// Requests outstanding at once.
    pub depth: u64,
    /// Check that each echo reply equals its request.
    pub verify_echo: bool,
    /// Use the SACK extension (the server must have it on too).
    pub sack: bool,
    /// The SACK extension's retransmission timeout, ns (raise it for a slow server: every
    /// RTO without progress resends REQ0 or a SACK).
    pub rto_ns: u64,
}

/// How the requests ended, and latencies (ns) of the successful ones, sorted.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Successful requests.
    pub ok: u64,
    /// Timed out.
    pub timeouts: u64,
    /// DROP or send failure.
    pub errors: u64,
    /// Replies that differ from the request (with `verify_echo`).
    pub mismatches: u64,
    /// Sorted latencies of the successes, ns.
    pub latencies: Vec<u64>,
    /// The client's protocol counters.
    pub stats: ferrix_net::r2p2::R2p2Stats,
}

impl Report {
    /// The `q`-quantile latency (0..=1), ns.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.latencies.is_empty() {
            return 0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

/// Runs `load` from `socket`.
pub fn run(socket: &UdpSocket, load: &Load) -> Result<Report, Error> {
    socket.set_read_timeout(Some(Duration::from_micros(200)))?;
    let clock = StdClock::default();
    let cfg = ClientConfig {
        sack: load.sack,
        rto_ns: load.rto_ns,
        ..ClientConfig::default()
    };
    let mut client = Client::new(UdpTransport::new(socket)?, clock, cfg);
    let mut payload = Vec::new();
    match load.service_ns {
        Some(ns) => synthetic::encode_request(ns, load.size, &mut payload),
        // Echo: the first 8 bytes (a synthetic server's service time) are 0.
        None => payload.extend((0..load.size).map(|i| if i < 8 { 0 } else { (i * 13 + 1) as u8 })),
    }
    let mut report = Report::default();
    let mut sent = 0u64;
    let mut done = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while done < load.count {
        while sent < load.count && sent - done < load.depth.max(1) {
            let start = clock.now_ns();
            client
                .send_request(
                    load.server,
                    &payload,
                    Policy::LbRoute,
                    load.timeout_ns,
                    start,
                )
                .map_err(Error::Request)?;
            sent += 1;
        }
        if let Some((src, n)) = recv(socket, &mut buf)? {
            client.handle_datagram(src, &buf[..n]);
        }
        client.poll_timers();
        while let Some(c) = client.next_completion() {
            done += 1;
            match c.outcome {
                Outcome::Success(reply) => {
                    report.ok += 1;
                    report.latencies.push(clock.now_ns() - c.ctx);
                    if load.verify_echo && reply != payload {
                        report.mismatches += 1;
                    }
                }
                Outcome::Timeout => report.timeouts += 1,
                Outcome::Dropped | Outcome::SendFailed => report.errors += 1,
            }
        }
    }
    report.latencies.sort_unstable();
    report.stats = client.stats().clone();
    Ok(report)
}
