//! TCP for ferrix: smoltcp as the engine, one endpoint per core, events in the style of IX.
//!
//! A [`TcpEndpoint`] is one core's TCP: a smoltcp `Interface` with the address of the shared
//! [`IfConfig`](crate::IfConfig), a pool of sockets allocated once (`listeners + max_conns`,
//! each with its receive and send buffers), and no allocation per connection afterwards: a
//! listening socket that takes a SYN becomes the connection and a free socket is armed to listen
//! in its place; a closed connection's socket goes back to the free pool.
//!
//! # How the kernel drives it
//! * One endpoint per core, fed by that core's RSS receive queue and sending on that core's
//!   transmit queue, through a [`FrameQueue`] over the queue pair. RSS hashes a connection's
//!   4-tuple to one queue, so each connection has a **home core**: its endpoint owns it, and
//!   only that core calls into the endpoint (the endpoint is not shared; no locks).
//! * Every core listens on the service port (`TcpConfig::port`); each endpoint has its own
//!   listeners and its own seed (`TcpConfig::seed`) for initial sequence numbers.
//! * The core's loop: `poll(now, queue, &mut events)` takes the received frames, runs TCP
//!   (timers too) and appends a batch of [`TcpEvent`]s; the app handles the batch and issues its
//!   calls ([`TcpEndpoint::send`], [`TcpEndpoint::recv_done`], [`TcpEndpoint::close`]); the next
//!   `poll` sends what the calls queued, or [`TcpEndpoint::flush`] at once. When idle, sleep until
//!   [`TcpEndpoint::poll_at`] or the next interrupt. Reuse the events vector (no allocation).
//! * Receive is zero copy: [`TcpEndpoint::recv`] is a slice of the socket's receive ring,
//!   valid until `recv_done`.
//! * Frames: give each endpoint the IPv4 TCP frames of its queue, and a copy of **every** ARP
//!   frame whatever queue it came in on (RSS does not hash ARP): smoltcp fills its neighbour
//!   cache only from ARP, per interface, so a core that never sees the ARP reply to its own
//!   request cannot send. UDP and ICMP stay on [`crate::NetStack`]. smoltcp's neighbour cache
//!   holds 8 entries (its build-time `SMOLTCP_IFACE_NEIGHBOR_CACHE_COUNT`): enough behind a
//!   gateway, too few for many clients on the local subnet.
//! * Active opens ([`TcpEndpoint::connect`]) are for clients and tests; on a multi-queue NIC the
//!   local port must be chosen so that the reply hashes to the same core.
//!
//! ```
//! use ferrix_net::tcp::{FrameQueue, Instant, TcpConfig, TcpEndpoint, TcpEvent};
//! # use ferrix_net::{IfConfig, MacAddr};
//! # struct CoreQueue;
//! # impl FrameQueue for CoreQueue {
//! #     type RxFrame = Vec<u8>;
//! #     fn receive(&mut self) -> Option<Vec<u8>> { None }
//! #     fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, fill: F) -> R {
//! #         fill(&mut vec![0; len])
//! #     }
//! # }
//! # let ifc = IfConfig {
//! #     mac: MacAddr([2, 0, 0, 0, 0, 1]), ip: "10.0.0.1".parse().unwrap(),
//! #     prefix_len: 24, gateway: None, mtu: 1500,
//! # };
//! # let (core, mut queue, now) = (0u64, CoreQueue, Instant::from_millis(0));
//! // At boot, on each core, over that core's queue pair:
//! let cfg = TcpConfig { port: 7000, listeners: 16, max_conns: 2500, seed: 0x1000 + core,
//!                       ..TcpConfig::default() };
//! let mut tcp = TcpEndpoint::new(&ifc, cfg, &mut queue, now);
//! let mut events = Vec::with_capacity(256);
//! // One turn of the core's loop: a batch of events, then the app's calls.
//! events.clear();
//! tcp.poll(now, &mut queue, &mut events);
//! for &ev in &events {
//!     match ev {
//!         TcpEvent::Received(conn, _) => {
//!             let data = tcp.recv(conn).unwrap(); // in the receive ring: zero copy
//!             let mut req = [0u8; 8];
//!             if data.len() >= 8 {
//!                 req.copy_from_slice(&data[..8]);
//!                 tcp.recv_done(conn, 8).unwrap();
//!                 tcp.send(conn, &req).unwrap(); // sent by the next poll
//!             }
//!         }
//!         TcpEvent::PeerClosed(conn) => tcp.close(conn).unwrap(),
//!         _ => {}
//!     }
//! }
//! let _wake_at = tcp.poll_at(now); // next timer, for the idle loop
//! ```
//!
//! # Parking, and limits
//! * smoltcp visits every socket of its set on each poll (and on each segment until one
//!   accepts it). The endpoint keeps only listeners and active connections there: a connection
//!   quiet for `TcpConfig::park_after_ms` (established, nothing unacknowledged) is *parked* in
//!   its pool slot and found again by its 4-tuple when a segment or a call arrives (`park.rs`),
//!   so 10,000 mostly idle connections cost what the active ones cost. `poll` and `scan` are
//!   O(active connections).
//! * smoltcp gives a segment to the first socket that accepts it; a retransmitted SYN of a
//!   half-open connection would open a second one on another listener, so the device adapter
//!   drops SYNs from peers (address, port) that have a half-open connection here.

pub mod crab;
mod device;
mod endpoint;
mod memqueue;
mod park;
pub mod slo;

pub use crab::CrabStats;
pub use device::FrameQueue;
pub use endpoint::{ConnId, TcpConfig, TcpEndpoint, TcpError, TcpEvent, TcpStats};
pub use memqueue::MemQueue;
pub use smoltcp::time::{Duration, Instant};
