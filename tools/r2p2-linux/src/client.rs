//! The client loop: N requests of a size, `depth` outstanding at a time, each with its own
//! timeout; latency percentiles of the successful ones. A batch of datagrams per turn.

use crate::batch::{BatchReceiver, BatchTransport, IoStats, fold_send_failures};
use crate::{Error, LoopOptions, StdClock, Waiter};
use ferrix_net::r2p2::{Client, ClientConfig, Clock, Outcome, Policy, synthetic};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::Duration;

/// How long a blocking client waits for a datagram before it runs its timers.
pub const BLOCK_TIMEOUT: Duration = Duration::from_micros(200);

/// Flush attempts at exit for a socket that would block.
const DRAIN_TRIES: u32 = 100_000;

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
    /// The client's protocol counters (datagrams that failed in `sendmmsg` count as
    /// `tx_errors`).
    pub stats: ferrix_net::r2p2::R2p2Stats,
    /// The batching counters.
    pub io: IoStats,
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

/// Runs `load` from `socket` in blocking mode with batches of 32
/// ([`LoopOptions::blocking`]).
pub fn run(socket: &UdpSocket, load: &Load) -> Result<Report, Error> {
    run_with(socket, load, &LoopOptions::blocking())
}

/// Runs `load` from `socket`. Each turn: new requests up to `load.depth` outstanding, one
/// flush of what the protocol queued, one `recvmmsg` of up to `opts.batch` datagrams (all to
/// the protocol), timers, completions. A request's latency runs from `send_request` to the
/// return of the `recvmmsg` that brought its last reply packet.
pub fn run_with(socket: &UdpSocket, load: &Load, opts: &LoopOptions) -> Result<Report, Error> {
    opts.prepare(socket, BLOCK_TIMEOUT)?;
    let clock = StdClock::default();
    let cfg = ClientConfig {
        sack: load.sack,
        rto_ns: load.rto_ns,
        ..ClientConfig::default()
    };
    let mut rx = BatchReceiver::new(socket, opts.batch)?;
    let mut client = Client::new(BatchTransport::new(socket, opts.batch)?, clock, cfg);
    let mut payload = Vec::new();
    match load.service_ns {
        Some(ns) => synthetic::encode_request(ns, load.size, &mut payload),
        // Echo: the first 8 bytes (a synthetic server's service time) are 0.
        None => payload.extend((0..load.size).map(|i| if i < 8 { 0 } else { (i * 13 + 1) as u8 })),
    }
    let mut report = Report::default();
    let mut sent = 0u64;
    let mut done = 0u64;
    let mut waiter = Waiter::new(opts);
    while done < load.count {
        let sent_before = sent;
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
        let left = client.transport_mut().flush();
        let n = rx.recv(waiter.may_block(left, &clock))?;
        let received_at = if n > 0 { clock.now_ns() } else { 0 };
        for (src, dgram) in rx.iter() {
            client.handle_datagram(src, dgram);
        }
        client.poll_timers();
        while let Some(c) = client.next_completion() {
            done += 1;
            match c.outcome {
                Outcome::Success(reply) => {
                    report.ok += 1;
                    report.latencies.push(received_at.saturating_sub(c.ctx));
                    if load.verify_echo && reply != payload {
                        report.mismatches += 1;
                    }
                }
                Outcome::Timeout => report.timeouts += 1,
                Outcome::Dropped | Outcome::SendFailed => report.errors += 1,
            }
        }
        waiter.turn(n > 0 || sent > sent_before, &clock);
    }
    client.transport_mut().drain(DRAIN_TRIES);
    report.latencies.sort_unstable();
    report.io = IoStats {
        rx: rx.stats().clone(),
        tx: client.transport_mut().stats().clone(),
    };
    report.stats = client.stats().clone();
    fold_send_failures(&mut report.stats, &report.io.tx);
    Ok(report)
}
