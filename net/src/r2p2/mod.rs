//! R2P2 (Request-Response Pair Protocol): RPCs as request/reply message pairs over UDP,
//! wire-compatible with the reference C implementation (EPFL DCSL `r2p2`), as specified in
//! `shared/spec/r2p2.md` and thesis chapter 9.
//!
//! - [`header`]: the 8-byte header; [`message`]: packetizing and reassembly.
//! - [`client`]: `send_request` → exactly one [`client::Completion`] per request (success with
//!   the reassembled reply, timeout, or error: DROP received / send failure).
//! - [`server`]: reassembly keyed by (client IP, client port, rid), ACK of multi-packet
//!   requests, multi-packet replies, FEEDBACK to a router, DROP through a flow-control hook,
//!   garbage collection of stale partial messages.
//!
//! Everything is pure logic over two small traits, [`Transport`] (send one datagram) and
//! [`Clock`] (nanoseconds), so the same code runs in the guest, in host tests with simulated
//! time, and on Linux (`tools/r2p2-linux`). Bytes from the network are hostile: anything
//! malformed is counted in [`R2p2Stats`] and dropped, never a panic.
//!
//! Where it runs: `tools/r2p2-linux` (Linux UDP sockets; the `r2p2-client` / `r2p2-server`
//! commands, also as `r2p2_linux::cli` functions the integration tests build into binaries of
//! their own), and `apps/synthetic` in the guest, as a server (every core; per-core requests
//! served and guest ns per request printed at exit) and as a client (`client=IP:PORT count=N
//! size=S`: one request at a time from core 0, exit 0 only if each completed exactly once with
//! its echo). Interop tests (`tests/tests/r2p2.rs`): Linux client to guest server through
//! QEMU user networking and through TAP in a test namespace (QEMU and the shim), guest client
//! to Linux server through TAP. `ferrix bench r2p2` measures Linux-to-Linux round trips/s
//! against plain UDP and guest instructions per echo (QEMU `-icount`).
//!
//! The API in the terms of thesis table 9.2: `r2p2_poll` is [`client::Client::handle_datagram`]
//! / [`server::Server::handle_datagram`] plus `poll_timers`; `r2p2_send_req` is
//! [`client::Client::send_request`]; `r2p2_send_response` is
//! [`server::Server::send_response`]; `r2p2_message_done` is dropping the message; the
//! `req_recv` callback is the request `handle_datagram` returns, and `req_success` /
//! `req_timeout` / `req_error` are the [`client::Outcome`]s of the client's completion queue.
//!
//! # Extensions beyond the reference (the twin of the spec's type table)
//!
//! | type value | name | what |
//! |---|---|---|
//! | 0..=7 | (reference) | REQUEST, RESPONSE, FEEDBACK, ACK, DROP, RAFT_REQ, RAFT_REP, RAFT_MSG |
//! | 8 | SACK | selective acknowledgement: asks for the missing packets of a multi-packet message (thesis table 9.1); layout in [`sack`]; sent only when enabled |
//! | 9..=15 | | unassigned: counted as `unknown_type` and dropped |
//!
//! Other extensions, which a reference peer does not notice:
//! - reordering and duplicates inside a message are tolerated ([`message::Reassembly`]);
//! - FEEDBACK carries, after the reference body (`u16 rid, u16 client port, u32 client IP`,
//!   all big-endian), the server's JBSQ bound `u32 n` and its count of requests served
//!   `u64 served` (big-endian), which makes it idempotent (thesis 10.3).

pub mod client;
pub mod header;
pub mod message;
pub mod sack;
pub mod server;
pub mod synthetic;

pub use client::{Client, ClientConfig, ClientError, Completion, Outcome, RequestHandle};
pub use header::{Header, HeaderError, MsgType, Policy};
pub use server::{IncomingRequest, Payload, RequestMeta, Server, ServerConfig};

use core::net::SocketAddrV4;

/// The UDP port reference servers listen on (plus the queue id per core).
pub const DEFAULT_PORT: u16 = 8000;
/// The reference router's FEEDBACK / control port.
pub const ROUTER_CONTROL_PORT: u16 = 9000;

/// A datagram could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendFailed;

/// Sends UDP datagrams from the endpoint's socket.
pub trait Transport {
    /// Sends one datagram to `dst` made of `parts` concatenated (header, then payload).
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed>;
}

/// Monotonic time in nanoseconds.
pub trait Clock {
    /// Nanoseconds since an arbitrary origin; never goes back.
    fn now_ns(&self) -> u64;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
        (**self).send(dst, parts)
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}

/// Counters of one endpoint (client or server).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct R2p2Stats {
    /// Datagrams handed to the endpoint.
    pub rx_packets: u64,
    /// Datagrams sent.
    pub tx_packets: u64,
    /// Datagrams the transport failed to send.
    pub tx_errors: u64,
    /// Not R2P2: short, bad magic, bad `header_size`.
    pub bad_header: u64,
    /// Unassigned message type.
    pub unknown_type: u64,
    /// Unassigned policy.
    pub unknown_policy: u64,
    /// A type this endpoint does not take (e.g. a REQUEST at a client) or one for no known
    /// request (late reply, stray ACK).
    pub unexpected: u64,
    /// Packets already received.
    pub duplicates: u64,
    /// Packets that contradict their message (order, totals, too many packets).
    pub inconsistent: u64,
    /// Partial messages dropped by garbage collection (server) .
    pub gc_messages: u64,
    /// ACKs sent (server).
    pub acks_sent: u64,
    /// DROPs sent (server) or received (client).
    pub drops: u64,
    /// FEEDBACK messages sent (server).
    pub feedback_sent: u64,
    /// Requests completed by success / timeout / error (client) or received (server).
    pub completed: u64,
    /// Requests that timed out (client).
    pub timeouts: u64,
}

impl R2p2Stats {
    fn count_header_error(&mut self, e: HeaderError) {
        match e {
            HeaderError::UnknownType => self.unknown_type += 1,
            HeaderError::UnknownPolicy => self.unknown_policy += 1,
            _ => self.bad_header += 1,
        }
    }
}

/// Sends packet `header` + `payload` through `t`, counting.
fn send_packet<T: Transport>(
    t: &mut T,
    stats: &mut R2p2Stats,
    dst: SocketAddrV4,
    header: &Header,
    payload: &[u8],
) -> Result<(), SendFailed> {
    let h = header.encode();
    match t.send(dst, &[&h, payload]) {
        Ok(()) => {
            stats.tx_packets += 1;
            Ok(())
        }
        Err(e) => {
            stats.tx_errors += 1;
            Err(e)
        }
    }
}
