//! R2P2's [`Transport`] and [`Clock`] in the guest: datagrams the server sends while a poll is
//! running are queued and sent with `ferrix::net::send_udp` after the poll returns (the poll
//! holds this core's endpoint).

use alloc::vec::Vec;
use core::net::SocketAddrV4;
use ferrix_net::r2p2::{Clock, SendFailed, Transport};

/// Queues datagrams from the current local port; [`GuestTransport::flush`] sends them.
#[derive(Default)]
pub struct GuestTransport {
    port: u16,
    out: Vec<(u16, SocketAddrV4, Vec<u8>)>,
    /// Datagrams `send_udp` refused (e.g. ARP still pending).
    pub failed: u64,
}

impl GuestTransport {
    /// The local port later datagrams come from (the port the request arrived on, so that
    /// ACKs name the port that must receive the rest).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Sends every queued datagram.
    pub fn flush(&mut self) {
        for (port, dst, bytes) in self.out.drain(..) {
            if ferrix::net::send_udp(port, dst, &bytes).is_err() {
                self.failed += 1;
            }
        }
    }
}

impl Transport for GuestTransport {
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
        self.out.push((self.port, dst, parts.concat()));
        Ok(())
    }
}

/// The kernel's monotonic clock.
pub struct GuestClock;

impl Clock for GuestClock {
    fn now_ns(&self) -> u64 {
        ferrix::time::now_ns()
    }
}
