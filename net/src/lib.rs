//! ferrix-net: the network protocols of ferrix.
//!
//! Wire formats with zero-copy parsers and in-buffer writers ([`eth`], [`arp`], [`ipv4`],
//! [`icmp`], [`udp`], [`checksum`]), the shared ARP cache ([`arp_table`]), static interface
//! configuration from the kernel command line ([`config`]), per-core statistics ([`stats`]) and
//! the per-core stack that ties them together ([`stack`]), and per-core TCP on smoltcp with an
//! IX-style event API ([`tcp`]).
//!
//! Every byte from the network is hostile: parsers check bounds before every read, never index
//! past what they checked, and report what is wrong as a [`DropReason`]; the stack counts it and
//! drops the frame. There is no `unsafe` here.
//!
//! Feature `corpus` adds [`corpus`]: builders for valid and malformed frames, shared by the
//! tests, the fuzz targets and the integration tests that inject frames into a guest.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod arp;
pub mod arp_table;
pub mod checksum;
pub mod config;
#[cfg(any(test, feature = "corpus"))]
pub mod corpus;
pub mod eth;
pub mod forward;
pub mod icmp;
pub mod igmp;
pub mod ipv4;
pub mod r2p2;
pub mod stack;
pub mod stats;
pub mod tcp;
pub mod udp;

pub use arp_table::{ArpConfig, ArpTable};
pub use config::{ConfigError, IfConfig};
pub use eth::MacAddr;
pub use stack::{BindError, Forwarded, NetStack, SendError, TxQueue, UdpDatagram};
pub use stats::{DropReason, Stats};
