//! R2P2 on Linux: ferrix-net's protocol logic ([`ferrix_net::r2p2`]) over a
//! [`std::net::UdpSocket`], one socket per thread. Used by the `r2p2-client` and `r2p2-server`
//! binaries, by `ferrix bench r2p2`, by tests, and by Lancet.
//!
//! The loops ([`server::serve_with`], [`client::run_with`]) move datagrams in batches
//! ([`batch`]): each turn takes up to [`LoopOptions::batch`] datagrams with one `recvmmsg`
//! into buffers kept from turn to turn (each with its IPv4 source; others are skipped and
//! counted), hands them all to the protocol, runs its timers, and sends what the protocol
//! produced with one `sendmmsg` per batch ([`batch::BatchTransport`] queues it; a partial send
//! or a full send buffer leaves the rest queued for the next turn, a datagram the kernel
//! refuses is counted as a send failure). Batch size 1 is one datagram in, its answers out.
//!
//! Waiting ([`Poll`]): [`Poll::Busy`] polls with `MSG_DONTWAIT` turn after turn (yielding the
//! CPU between empty polls), so a datagram is taken as soon as the kernel has it, and only
//! after [`LoopOptions::spin_us`] without traffic blocks in `recvmmsg`; [`Poll::Block`] always
//! blocks, up to a read timeout (1 ms server, 200 µs client) after which timers run. Busy is
//! what the binaries and `ferrix bench r2p2` use: waking a thread blocked in `recvmmsg` costs
//! tens of µs on an idle VM, far more than the round trip. [`server::serve`] and
//! [`client::run`] (used where a server is parked in a thread, or next to a QEMU guest) block.
//! The socket itself stays blocking (with the read timeout) so that a loop can do either;
//! `MSG_DONTWAIT` makes each busy call non-blocking.
//!
//! `r2p2-router` ([`router`]) runs the `ferrix-router` logic over two UDP sockets and a raw
//! socket that forwards REQ0s with the client as source.
//!
//! System calls go through the `nix` crate, so this crate stays free of `unsafe`.
//! [`UdpTransport`] and [`recv`] are the unbatched, one-`send_to` / `recv_from`-at-a-time
//! path, kept for callers that drive a protocol endpoint themselves (Lancet's agent).
#![forbid(unsafe_code)]

pub mod batch;
pub mod cli;
pub mod client;
pub mod router;
pub mod server;

use ferrix_net::r2p2::{Clock, SendFailed, Transport};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Largest UDP payload [`recv`] takes.
pub const MAX_DATAGRAM: usize = 65_535;

/// How a loop waits for datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Poll {
    /// Busy-poll: `recvmmsg` with `MSG_DONTWAIT` turn after turn, `sched_yield` after each
    /// empty one, so that a datagram is taken as soon as it is there (no wake-up latency); a
    /// loop that got nothing for [`LoopOptions::spin_us`] blocks (as with [`Poll::Block`])
    /// until traffic resumes, so an idle loop burns no CPU. For latency measurements.
    #[default]
    Busy,
    /// Block in `recvmmsg` until a datagram arrives or a read timeout (1 ms at a server,
    /// 200 µs at a client: how late timers may run) passes. Costs a wake-up per idle period;
    /// burns no CPU while idle.
    Block,
}

/// How a loop moves datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopOptions {
    /// Datagrams per `recvmmsg` / `sendmmsg` (1..=[`batch::MAX_BATCH`]).
    pub batch: usize,
    /// Busy-poll or block.
    pub poll: Poll,
    /// With [`Poll::Busy`], microseconds without a datagram after which a turn blocks.
    pub spin_us: u64,
}

/// Default [`LoopOptions::spin_us`]: well above a loopback round trip (a few µs), well below
/// a scheduler time slice (ms).
pub const DEFAULT_SPIN_US: u64 = 100;

impl Default for LoopOptions {
    /// Batches of [`batch::DEFAULT_BATCH`], busy polling.
    fn default() -> Self {
        LoopOptions {
            batch: batch::DEFAULT_BATCH,
            poll: Poll::Busy,
            spin_us: DEFAULT_SPIN_US,
        }
    }
}

impl LoopOptions {
    /// Batches of [`batch::DEFAULT_BATCH`], blocking: what [`server::serve`] and
    /// [`client::run`] use (a server parked in a thread must not spin).
    pub fn blocking() -> Self {
        LoopOptions {
            poll: Poll::Block,
            ..LoopOptions::default()
        }
    }

    /// Sets `socket` up for the loop: blocking, with read timeout `timeout` for the turns
    /// that wait (busy turns pass `MSG_DONTWAIT`).
    pub fn prepare(&self, socket: &UdpSocket, timeout: Duration) -> Result<(), Error> {
        batch::check_batch(self.batch).map_err(Error::Options)?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(timeout))?;
        Ok(())
    }
}

/// Whether a loop's next `recvmmsg` may block: always with [`Poll::Block`], after
/// `spin_us` without activity with [`Poll::Busy`]; never while datagrams wait to be sent.
pub(crate) struct Waiter {
    poll: Poll,
    spin_ns: u64,
    /// When the loop last went idle (clock ns), if it is.
    idle_since: Option<u64>,
}

impl Waiter {
    pub(crate) fn new(opts: &LoopOptions) -> Self {
        Waiter {
            poll: opts.poll,
            spin_ns: opts.spin_us.saturating_mul(1000),
            idle_since: None,
        }
    }

    /// Whether the next receive may wait, with `pending` datagrams still to send.
    pub(crate) fn may_block(&self, pending: usize, clock: &StdClock) -> bool {
        pending == 0
            && match self.poll {
                Poll::Block => true,
                Poll::Busy => self
                    .idle_since
                    .is_some_and(|t| clock.now_ns().saturating_sub(t) >= self.spin_ns),
            }
    }

    /// After a turn, `active` when it received or sent anything. A busy loop's empty turn
    /// ends with `sched_yield`: when its peer (or anything else runnable) waits for this core
    /// (on a machine with fewer free cores than busy loops), it gets it now rather than at
    /// the end of a time slice; alone on its core, the call returns at once.
    pub(crate) fn turn(&mut self, active: bool, clock: &StdClock) {
        if active {
            self.idle_since = None;
            return;
        }
        if self.idle_since.is_none() {
            self.idle_since = Some(clock.now_ns());
        }
        if self.poll == Poll::Busy {
            std::thread::yield_now();
        }
    }
}

/// Errors of the Linux backend, each printed as one line by the binaries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddrV4,
        /// Why.
        source: std::io::Error,
    },
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// Bad loop options (batch size).
    #[error("{0}")]
    Options(String),
    /// The request could not start.
    #[error("cannot send request: {0:?}")]
    Request(ferrix_net::r2p2::ClientError),
}

/// A [`Transport`] sending from a UDP socket, one `send_to` per datagram (unbatched; see
/// [`batch::BatchTransport`]).
pub struct UdpTransport {
    socket: UdpSocket,
    buf: Vec<u8>,
}

impl UdpTransport {
    /// Sends from (a clone of) `socket`.
    pub fn new(socket: &UdpSocket) -> Result<Self, Error> {
        Ok(UdpTransport {
            socket: socket.try_clone()?,
            buf: Vec::with_capacity(2048),
        })
    }
}

impl Transport for UdpTransport {
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
        self.buf.clear();
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.socket
            .send_to(&self.buf, dst)
            .map(|_| ())
            .map_err(|_| SendFailed)
    }
}

/// Monotonic nanoseconds since the clock was made.
#[derive(Clone, Copy, Debug)]
pub struct StdClock(Instant);

impl Default for StdClock {
    fn default() -> Self {
        StdClock(Instant::now())
    }
}

impl Clock for StdClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Binds a UDP socket.
pub fn bind(addr: SocketAddrV4) -> Result<UdpSocket, Error> {
    UdpSocket::bind(addr).map_err(|source| Error::Bind { addr, source })
}

/// Receives one datagram into `buf` (unbatched; see [`batch::BatchReceiver`]); None on a
/// read timeout, a non-blocking socket with nothing queued, or an IPv6 sender.
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> Result<Option<(SocketAddrV4, usize)>, Error> {
    match socket.recv_from(buf) {
        Ok((n, SocketAddr::V4(src))) => Ok(Some((src, n))),
        Ok(_) => Ok(None),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Busy-waits for `ns` nanoseconds (the synthetic service time).
pub fn spin(ns: u64) {
    let start = Instant::now();
    while (start.elapsed().as_nanos() as u64) < ns {
        std::hint::spin_loop();
    }
}
