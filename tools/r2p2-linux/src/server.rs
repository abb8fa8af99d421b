//! The server loop: R2P2 requests in, echo or synthetic (spin for the service time the request
//! names, reply with a fixed size) replies out, a batch of datagrams per turn.

use crate::batch::{BatchReceiver, BatchTransport, IoStats, fold_send_failures};
use crate::{Error, LoopOptions, StdClock, Waiter, spin};
use ferrix_net::r2p2::server::feedback_body;
use ferrix_net::r2p2::{
    Header, MsgType, Policy, R2p2Stats, RequestMeta, Server, ServerConfig, synthetic,
};
use std::net::UdpSocket;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// How long a blocking server waits for a datagram before it runs its timers.
pub const BLOCK_TIMEOUT: Duration = Duration::from_millis(1);

/// Default heartbeat period towards the router (well below its default 3 s server timeout).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(500);

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
/// With a router (`cfg.router`), heartbeats every [`DEFAULT_HEARTBEAT`]
/// ([`serve_with_heartbeat`]).
pub fn serve_with(
    socket: &UdpSocket,
    cfg: ServerConfig,
    mode: Mode,
    count: Option<u64>,
    opts: &LoopOptions,
) -> Result<ServeReport, Error> {
    serve_with_heartbeat(socket, cfg, mode, count, opts, DEFAULT_HEARTBEAT)
}

/// [`serve_with`] with a heartbeat period. With a router (`cfg.router`), a heartbeat (FEEDBACK for client `0.0.0.0:0` with the bound
/// and the served count) goes to it at start and every `heartbeat`: the router lists the
/// server before its first request and keeps it while idle.
pub fn serve_with_heartbeat(
    socket: &UdpSocket,
    cfg: ServerConfig,
    mode: Mode,
    count: Option<u64>,
    opts: &LoopOptions,
    heartbeat: Duration,
) -> Result<ServeReport, Error> {
    opts.prepare(socket, BLOCK_TIMEOUT)?;
    let mut rx = BatchReceiver::new(socket, opts.batch)?;
    let transport = BatchTransport::new(socket, opts.batch)?;
    let clock = StdClock::default();
    let (router, bound) = (cfg.router, cfg.jbsq_n);
    let mut server = Server::new(transport, clock, cfg);
    let mut reply = Vec::new();
    let mut waiter = Waiter::new(opts);
    let mut next_heartbeat = std::time::Instant::now();
    while count.is_none_or(|c| server.served() < c) {
        if let Some(r) = router
            && std::time::Instant::now() >= next_heartbeat
        {
            next_heartbeat += heartbeat;
            // A lost heartbeat only delays the join; the next one follows.
            let _ = socket.send_to(&heartbeat_datagram(bound, server.served()), r);
        }
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

/// A heartbeat: FEEDBACK for client `0.0.0.0:0`, rid 0, with the bound and served count.
pub fn heartbeat_datagram(bound: u32, served: u64) -> Vec<u8> {
    let meta = RequestMeta {
        client: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        rid: 0,
        policy: Policy::LbRoute,
    };
    let mut d = Header::single(MsgType::Feedback, Policy::LbRoute, 0)
        .encode()
        .to_vec();
    d.extend_from_slice(&feedback_body(&meta, bound, served));
    d
}
