//! ferrix-raft: the replica logic of HovercRaft (thesis chapter 12, issue 14), a Raft core
//! with a pure step interface, `no_std` and host-testable.
//!
//! - [`node::Node`]: one replica. [`Node::step`] takes an [`Input`] (tick, peer message,
//!   client request, compaction) and returns [`Outputs`] (persistent writes, messages,
//!   committed entries, a snapshot to restore, redirects). No clock, no I/O; election
//!   timeouts come from a generator seeded by [`Config::seed`].
//! - Leader election with pre-vote and check-quorum ([`node`]), log replication with the
//!   conflict hint, the current-term commit rule and InstallSnapshot ([`replicate`]).
//! - [`config::Mode`]: vanilla Raft (AppendEntries carries the requests) or HovercRaft
//!   (metadata only, pending set, RECOVERY_REQ/REP, load-balanced repliers under bounded
//!   queues, read-only requests run only on their replier; [`hover`]).
//! - [`storage`]: the persistent writes, the fsync rule, the [`Storage`] trait and
//!   [`MemStorage`]. [`log::Log`]: the log after the snapshot.
//! - HovercRaft++ ([`Config::aggregator`]): [`aggregator::Aggregator`], the in-network
//!   aggregator as its own pure step function, and the members' side of it ([`plus`]).
//! - [`wire`]: the byte layout of every message; hostile input is refused and counted
//!   ([`Stats`]).
//!
//! Fixed membership of 3, 5, 7 or 9 replicas, ids `0..n` (the aggregator is id 0xFF). Not
//! here yet: membership changes, leases for reads (reads go through the log).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod aggregator;
#[cfg(test)]
mod aggregator_tests;
pub mod config;
pub mod hover;
pub mod log;
pub mod message;
pub mod node;
#[cfg(test)]
mod node_tests;
pub mod persist;
pub mod plus;
pub mod replicate;
pub mod rng;
pub mod stats;
pub mod storage;
pub mod types;
pub mod wire;
#[cfg(test)]
mod wire_tests;

pub use aggregator::{AGGREGATOR, AggInput, AggOutputs, AggSend, Aggregator, Dest};
pub use config::{Config, ConfigError, Mode, ReplierPolicy};
pub use message::{Message, Meta, Progress, WireEntry};
pub use node::{Applied, Input, Node, Outputs, Role};
pub use stats::Stats;
pub use storage::{Durable, MemStorage, Storage, Write};
pub use types::{ClientId, Entry, Index, NodeId, Op, Request, Snapshot, Term};
