//! FCFS without an event list: M/G/n/FCFS (one queue; each request goes to the worker that frees
//! first) and n×M/G/1/FCFS (a private queue per worker, chosen at random or round-robin).

use ferrix_dist::rand::Rng as _;

use super::argmin;
use crate::config::Source;
use crate::recorder::Recorder;

/// How requests are dealt to per-worker queues.
#[derive(Debug, Clone, Copy)]
pub enum Assign {
    Random,
    RoundRobin,
}

/// M/G/n/FCFS: requests start in arrival order on the earliest-free worker.
pub fn central(src: &mut Source, rec: &mut Recorder, n: usize) {
    let mut free = vec![0.0f64; n];
    while let Some(r) = src.next_request() {
        let (w, f) = argmin(&free);
        let dep = f.max(r.arrival) + r.service;
        free[w] = dep;
        rec.complete(r.idx, r.arrival, dep, w, r.service);
    }
}

/// n×M/G/1/FCFS: each request joins one worker's private FCFS queue.
pub fn partitioned(src: &mut Source, rec: &mut Recorder, n: usize, assign: Assign) {
    let mut free = vec![0.0f64; n];
    while let Some(r) = src.next_request() {
        let w = match assign {
            Assign::Random => src.policy.random_range(0..n),
            Assign::RoundRobin => (r.idx % n as u64) as usize,
        };
        let dep = free[w].max(r.arrival) + r.service;
        free[w] = dep;
        rec.complete(r.idx, r.arrival, dep, w, r.service);
    }
}
