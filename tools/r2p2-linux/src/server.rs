//! The server loop: R2P2 requests in, echo or synthetic (spin for the service time the request
//! names, reply with a fixed size) replies out, a batch of datagrams per turn.

use crate::batch::{BatchReceiver, BatchTransport, IoStats, fold_send_failures};
use crate::{Error, LoopOptions, StdClock, Waiter, spin};
use ferrix_net::r2p2::{R2p2Stats, Server, ServerConfig, synthetic};
use std::net::UdpSocket;
use std::time::Duration;

/// How long a blocking server waits for a datagram before it runs its timers.
pub const BLOCK_TIMEOUT: Duration = Duration::from_millis(1);

/// Flush attempts at exit for a socket that would block.
const DRAIN_TRIES: u32 = 100_000;

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The request back.
    Echo,
    /// Spin for the request's service time, then `reply_size` bytes.
    Synthetic {
        /// Bytes of every reply.
        reply_size: usize,
    },
}

/// What a server run did.
#[derive(Clone, Debug, Default)]
pub struct ServeReport {
    /// The protocol's counters (datagrams that failed in `sendmmsg` count as `tx_errors`).
    pub stats: R2p2Stats,
    /// The batching counters.
    pub io: IoStats,
}

/// Serves on `socket` until `count` requests were answered (forever if None), in blocking
/// mode with batches of 32 ([`LoopOptions::blocking`]).
pub fn serve(
    socket: &UdpSocket,
    cfg: ServerConfig,
    mode: Mode,
    count: Option<u64>,
) -> Result<R2p2Stats, Error> {
    serve_with(socket, cfg, mode, count, &LoopOptions::blocking()).map(|r| r.stats)
}

/// Serves on `socket` until `count` requests were answered (forever if None). Each turn: one
/// `recvmmsg` of up to `opts.batch` datagrams, every datagram to the protocol and every
/// request it completes answered, timers, one flush of the replies. A synthetic request's
/// spin first flushes the replies before it, so that they do not wait for its service time.
pub fn serve_with(
    socket: &UdpSocket,
    cfg: ServerConfig,
    mode: Mode,
    count: Option<u64>,
    opts: &LoopOptions,
) -> Result<ServeReport, Error> {
    opts.prepare(socket, BLOCK_TIMEOUT)?;
    let mut rx = BatchReceiver::new(socket, opts.batch)?;
    let transport = BatchTransport::new(socket, opts.batch)?;
    let clock = StdClock::default();
    let mut server = Server::new(transport, clock, cfg);
    let mut reply = Vec::new();
    let mut waiter = Waiter::new(opts);
    while count.is_none_or(|c| server.served() < c) {
        let n = rx.recv(waiter.may_block(server.transport_mut().pending(), &clock))?;
        for (src, dgram) in rx.iter() {
            let Some(req) = server.handle_datagram(src, dgram) else {
                continue;
            };
            let meta = req.meta;
            reply.clear();
            let service_ns = match mode {
                Mode::Echo => {
                    reply.extend_from_slice(&req.payload);
                    0
                }
                Mode::Synthetic { reply_size } => {
                    reply.resize(reply_size, 0);
                    synthetic::service_time_ns(&req.payload)
                }
            };
            drop(req);
            if service_ns > 0 {
                server.transport_mut().flush();
                spin(service_ns);
            }
            // A failed send is counted in the server's stats; the client times out.
            let _ = server.send_response(&meta, &reply);
        }
        server.poll_timers();
        server.transport_mut().flush();
        waiter.turn(n > 0, &clock);
    }
    server.transport_mut().drain(DRAIN_TRIES);
    let tx = server.transport_mut().stats().clone();
    let mut stats = server.stats().clone();
    fold_send_failures(&mut stats, &tx);
    Ok(ServeReport {
        stats,
        io: IoStats {
            rx: rx.stats().clone(),
            tx,
        },
    })
}
