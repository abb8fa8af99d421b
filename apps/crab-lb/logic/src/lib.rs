//! The CRAB load balancer (thesis chapter 7) as frame-level logic, for the `crab-lb` guest and
//! host tests: it takes part in a connection's SYN only.
//!
//! - A SYN to the VIP that carries the Connection Redirect option (kind 42 with the VIP:
//!   `ferrix_net::tcp::crab`) is sent on to the backend the policy picks, with its IPv4
//!   destination rewritten to the backend's address (the option kept). The backend answers
//!   from its own address, echoing the option, and the client moves the connection there:
//!   nothing else of that connection passes the load balancer.
//! - Anything else to the VIP (a SYN without the option, every later segment of such a
//!   connection, a segment with the option but no SYN) goes to the backend a **stateless
//!   hash** of the client's address and port names, with only the Ethernet addresses
//!   rewritten (direct server return: the backend also serves the VIP and answers from it).
//!   The hash has no seed, so a restarted load balancer sends every such connection where
//!   the last one did.
//! - Policies for redirected SYNs ([`Policy`]): random, round robin, and least connections,
//!   where a backend's load is what it last reported ([`report`]: a UDP datagram to the VIP's
//!   report port, from the backend's address) plus the SYNs sent to it since. A backend that
//!   never reported counts the SYNs only.
//! - The load balancer answers ARP requests for the VIP (the backends must not: they serve
//!   it with `TcpConfig::vip`, which ignores them).
//!
//! Bad input is counted, never trusted: frames too short or malformed, reports from
//! addresses that are not backends or of the wrong size ([`LbStats`]).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod lb;
pub mod policy;
pub mod report;

pub use lb::{Backend, ConfigError, Lb, LbConfig, LbStats, Verdict};
pub use policy::Policy;
