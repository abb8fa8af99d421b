//! A deterministic discrete-event performance simulation of a HovercRaft cluster (thesis
//! 12.6 and 12.7): the real [`ferrix_raft::Node`] of every replica and the real
//! [`ferrix_raft::Aggregator`] run in virtual time under a CPU and network cost model, fed by
//! open-loop Poisson clients; it measures throughput and p99 latency, and finds the throughput
//! under a p99 SLO.
//!
//! - [`cost`]: the cost constants (per message, per byte, link latency and bandwidth).
//! - [`clock`]: virtual time and the event queue.
//! - [`workload`]: the clients' arrivals, request mix and service times.
//! - [`cluster`]: one run: per replica a network thread and an application thread, the
//!   links, the aggregator switch, the clients.
//! - [`measure`]: latencies, percentiles, the leader's message counts.
//! - [`search`]: the highest offered load whose p99 stays under the SLO.
//! - [`experiments`]: the thesis's figure 12.8 (cluster sizes) and 12.10 (read-only load
//!   balancing) as tables.
//!
//! Shared by `tests/perf.rs` and `examples/hover_bench.rs` (`#[path]`), like `tests/harness`.

#![allow(dead_code)]

pub mod clock;
pub mod cluster;
pub mod cost;
pub mod experiments;
pub mod measure;
pub mod search;
pub mod workload;
