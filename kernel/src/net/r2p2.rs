//! R2P2's [`Transport`] and [`Clock`] for guest apps (apps/synthetic, apps/kv): datagrams an
//! R2P2 endpoint sends while a poll is running are queued and sent with
//! [`super::send_udp`] after the poll returns (the poll holds this core's endpoint; with
//! `serve_tcp`, flush from `TcpService::after_poll`).

use alloc::vec::Vec;
use core::net::SocketAddrV4;
use ferrix_net::r2p2::{Clock, SendFailed, Transport};

/// Queues datagrams from the current local port; [`GuestTransport::flush`] sends them.
#[derive(Default)]
pub struct GuestTransport {
    port: u16,
    out: Vec<(u16, SocketAddrV4, Vec<u8>)>,
    /// Datagrams waiting for ARP to resolve their next hop (the stack parks one frame per hop
    /// and refuses the rest meanwhile), with when they were first tried; retried by the next
    /// flushes for [`ARP_WAIT_NS`], at most [`ARP_WAIT_MAX`] of them.
    waiting: Vec<(u64, u16, SocketAddrV4, Vec<u8>)>,
    /// Datagrams not sent: refused by `send_udp` for another reason, or still unresolved
    /// after [`ARP_WAIT_NS`], or beyond [`ARP_WAIT_MAX`].
    pub failed: u64,
}

/// How long a datagram waits for ARP.
pub const ARP_WAIT_NS: u64 = 50_000_000;
/// How many datagrams wait for ARP at most.
pub const ARP_WAIT_MAX: usize = 256;

impl GuestTransport {
    /// The local port later datagrams come from (the port the request arrived on, so that
    /// ACKs name the port that must receive the rest).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Sends every queued datagram (those waiting for ARP first, in order).
    pub fn flush(&mut self) {
        if self.out.is_empty() && self.waiting.is_empty() {
            return;
        }
        let now = crate::time::now_ns();
        let waiting = core::mem::take(&mut self.waiting);
        let fresh = self.out.drain(..).map(|(p, d, b)| (now, p, d, b));
        for (since, port, dst, bytes) in waiting.into_iter().chain(fresh) {
            match super::send_udp(port, dst, &bytes) {
                Ok(()) => {}
                Err(super::NetError::Send(ferrix_net::stack::SendError::ArpPending))
                    if now.saturating_sub(since) < ARP_WAIT_NS
                        && self.waiting.len() < ARP_WAIT_MAX =>
                {
                    self.waiting.push((since, port, dst, bytes));
                }
                Err(_) => self.failed += 1,
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
        crate::time::now_ns()
    }
}
