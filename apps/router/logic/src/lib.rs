//! ferrix-router: the R2P2 router's logic (thesis chapters 10 and 11), pure, `no_std` and
//! host-testable. The guest image (`apps/router`), the Linux build (`tools/r2p2-linux`,
//! `r2p2-router`) and the host simulation all run this code.
//!
//! - [`wire`]: what the router reads and writes on the wire (header, FEEDBACK, DROP).
//! - [`policy`]: RAND, RR, JSQ, PL(2), JBSQ(n); FIXED_ROUTE goes to the master.
//! - [`servers`]: membership as soft state and the per-server outstanding requests, with the
//!   rules that keep lost or duplicated FEEDBACK from leaking or double-freeing slots.
//! - [`sven`]: SVEN admission control (latency histograms per class, the AIAD loop, DROP).
//! - [`group`]: flow control in front of a replicated group (HovercRaft).
//! - [`router`]: the decisions, the central queue, the timers.
//! - [`stats`]: the counters.
//!
//! Per-request policy (the low nibble of REQ0's `type_policy`): LB_ROUTE (0) is balanced by
//! the boot policy; FIXED_ROUTE (1) goes to the master (configured, or the live server with
//! the lowest address) and bypasses the bounds; REPLICATED_ROUTE and REPLICATED_ROUTE_NO_SE
//! go to the replicated group when one is configured ([`group`]: HovercRaft's flow control,
//! a bound on the requests in the system); every other value (those two without a group,
//! unassigned) is balanced by the boot policy and counted in `policy_fallback`. The nibble
//! is also SVEN's class.
//!
//! Heartbeat (an extension of FEEDBACK's use, wire-compatible): a FEEDBACK whose client is
//! `0.0.0.0:0` completes no request; servers send it to join, to stay members while idle, and
//! to announce a new bound (the extension's n; n = 0 means "send me nothing new").
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod group;
pub mod policy;
pub mod rng;
pub mod router;
#[cfg(test)]
mod router_tests;
pub mod servers;
pub mod stats;
pub mod sven;
pub mod wire;

pub use group::{Group, GroupConfig, GroupStats};
pub use policy::{BadPolicy, Balance};
pub use router::{Output, Router, RouterConfig, Verdict};
pub use stats::{Refusal, RouterStats};
pub use sven::SvenConfig;
