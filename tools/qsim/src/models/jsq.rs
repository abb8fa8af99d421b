//! Join-the-shortest-queue and power-of-d choices over per-worker FCFS queues. Queue length =
//! requests at the worker (waiting or in service), read exactly at each arrival from the
//! departure times still in the future.

use std::collections::VecDeque;

use ferrix_dist::rand::Rng as _;

use crate::config::Source;
use crate::recorder::Recorder;

/// Send each request to the shortest of `d` distinct random queues (`d == n`: JSQ, scanning
/// from a rotating start so ties are spread evenly).
pub fn shortest(src: &mut Source, rec: &mut Recorder, n: usize, d: usize) {
    let mut deps: Vec<VecDeque<f64>> = vec![VecDeque::new(); n];
    let mut picks = vec![0usize; d];
    while let Some(r) = src.next_request() {
        let w = if d >= n {
            let start = (r.idx % n as u64) as usize;
            let mut best = (usize::MAX, start);
            for k in 0..n {
                let w = (start + k) % n;
                let len = queue_len(&mut deps[w], r.arrival);
                if len < best.0 {
                    best = (len, w);
                    if len == 0 {
                        break;
                    }
                }
            }
            best.1
        } else {
            sample_distinct(&mut src.policy, n, &mut picks);
            let mut best = (usize::MAX, picks[0]);
            for &w in &picks {
                let len = queue_len(&mut deps[w], r.arrival);
                if len < best.0 {
                    best = (len, w);
                }
            }
            best.1
        };
        let q = &mut deps[w];
        let dep = q.back().map_or(r.arrival, |&b| b.max(r.arrival)) + r.service;
        q.push_back(dep);
        rec.complete(r.idx, r.arrival, dep, w, r.service);
    }
}

/// Requests at a worker at time `now`: drop departures that already happened.
#[inline]
fn queue_len(q: &mut VecDeque<f64>, now: f64) -> usize {
    while q.front().is_some_and(|&d| d <= now) {
        q.pop_front();
    }
    q.len()
}

/// Fill `out` with distinct uniform picks from 0..n (out.len() <= n).
fn sample_distinct(rng: &mut ferrix_dist::Rng, n: usize, out: &mut [usize]) {
    for i in 0..out.len() {
        loop {
            let w = rng.random_range(0..n);
            if !out[..i].contains(&w) {
                out[i] = w;
                break;
            }
        }
    }
}
