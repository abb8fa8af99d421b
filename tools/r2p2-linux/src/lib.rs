//! R2P2 on Linux: ferrix-net's protocol logic ([`ferrix_net::r2p2`]) over a
//! [`std::net::UdpSocket`], one socket per thread. Used by the `r2p2-client` and `r2p2-server`
//! binaries, by tests, and later by Lancet.
//!
//! Datagrams go one `send_to` / `recv_from` at a time (no `recvmmsg` batching yet: that needs
//! `unsafe` or a crate such as `nix`, left for later).
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod server;

use ferrix_net::r2p2::{Clock, SendFailed, Transport};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Instant;

/// Largest UDP payload we receive.
pub const MAX_DATAGRAM: usize = 65_535;

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
    /// The request could not start.
    #[error("cannot send request: {0:?}")]
    Request(ferrix_net::r2p2::ClientError),
}

/// A [`Transport`] sending from a UDP socket.
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

/// Receives one datagram into `buf`; None on a read timeout or an IPv6 sender.
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
