//! Lancet: a self-correcting open-loop latency measurement tool (thesis chapter 4). Agents
//! generate open-loop load and sample latencies; a coordinator drives them over a small TCP
//! control protocol and applies the methodology of fig 4.4 (load and inter-arrival check, iid,
//! stationarity, confidence intervals) before reporting results or "inconclusive".
#![forbid(unsafe_code)]

pub mod agent;
pub mod bench;
pub mod cli;
pub mod command;
pub mod control;
pub mod coordinator;
pub mod framing;
pub mod launch;
pub mod plot;
pub mod report;
pub mod server;
pub mod stats;
pub mod workload;
