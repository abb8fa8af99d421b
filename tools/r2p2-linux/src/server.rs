//! The server loop: R2P2 requests in, echo or synthetic (spin for the service time the request
//! names, reply with a fixed size) replies out.

use crate::{Error, MAX_DATAGRAM, StdClock, UdpTransport, recv, spin};
use ferrix_net::r2p2::{Server, ServerConfig, synthetic};
use std::net::UdpSocket;
use std::time::Duration;

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

/// Serves on `socket` until `count` requests were answered (forever if None).
pub fn serve(
    socket: &UdpSocket,
    cfg: ServerConfig,
    mode: Mode,
    count: Option<u64>,
) -> Result<ferrix_net::r2p2::R2p2Stats, Error> {
    socket.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut server = Server::new(UdpTransport::new(socket)?, StdClock::default(), cfg);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut reply = Vec::new();
    while count.is_none_or(|c| server.served() < c) {
        if let Some((src, n)) = recv(socket, &mut buf)?
            && let Some(req) = server.handle_datagram(src, &buf[..n])
        {
            let meta = req.meta;
            reply.clear();
            match mode {
                Mode::Echo => reply.extend_from_slice(&req.payload),
                Mode::Synthetic { reply_size } => {
                    spin(synthetic::service_time_ns(&req.payload));
                    reply.resize(reply_size, 0);
                }
            }
            drop(req);
            // A failed send is counted in the server's stats; the client times out.
            let _ = server.send_response(&meta, &reply);
        }
        server.poll_timers();
    }
    Ok(server.stats().clone())
}
