//! One central queue ordered by a key known at arrival, n non-preemptive workers: SJF (key =
//! service time) and EDF (key = deadline). With key = arrival time it is M/G/n/FCFS, which the
//! tests use to cross-check this event loop against the fast path.
//!
//! Invariant that keeps it event-list free: the queue is non-empty only while every worker is
//! busy, so the next start is always at the earliest worker-free time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::argmin;
use super::time::Time;
use crate::config::{Request, Source};
use crate::recorder::Recorder;

/// A waiting request ordered by (key, arrival index).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Waiting {
    key: Time,
    idx: u64,
    arrival: Time,
    service: Time,
}

pub fn central(src: &mut Source, rec: &mut Recorder, n: usize, key: impl Fn(f64, f64) -> f64) {
    let mut free = vec![0.0f64; n];
    let mut queue: BinaryHeap<Reverse<Waiting>> = BinaryHeap::new();
    let start = |free: &mut [f64], rec: &mut Recorder, w: usize, at: f64, r: Request| {
        free[w] = at + r.service;
        rec.complete(r.idx, r.arrival, at + r.service, w, r.service);
    };
    let drain =
        |free: &mut [f64], rec: &mut Recorder, q: &mut BinaryHeap<Reverse<Waiting>>, until: f64| {
            while !q.is_empty() {
                let (w, f) = argmin(free);
                if f > until {
                    break;
                }
                let Some(Reverse(x)) = q.pop() else { break };
                let r = Request {
                    idx: x.idx,
                    arrival: x.arrival.0,
                    service: x.service.0,
                };
                start(free, rec, w, f, r);
            }
        };
    while let Some(r) = src.next_request() {
        drain(&mut free, rec, &mut queue, r.arrival);
        let (w, f) = argmin(&free);
        if f <= r.arrival {
            free[w] = r.arrival + r.service;
            rec.complete(r.idx, r.arrival, r.arrival + r.service, w, r.service);
        } else {
            queue.push(Reverse(Waiting {
                key: Time(key(r.arrival, r.service)),
                idx: r.idx,
                arrival: Time(r.arrival),
                service: Time(r.service),
            }));
        }
    }
    drain(&mut free, rec, &mut queue, f64::INFINITY);
}

#[cfg(test)]
mod tests {
    use crate::config::Source;
    use crate::recorder::Recorder;
    use crate::{Model, SimConfig};

    #[test]
    fn fifo_key_reproduces_the_fcfs_fast_path() {
        // The event loop with key = arrival time is M/G/n/FCFS: same requests, same latencies.
        let mut cfg = SimConfig::new(Model::CentralFcfs, 4, ferrix_dist::Shape::BIMODAL_1, 0.9);
        cfg.requests = 50_000;
        let run = |slow: bool| {
            let mut src = Source::new(&cfg).unwrap();
            let mut rec = Recorder::new(&cfg);
            if slow {
                super::central(&mut src, &mut rec, 4, |a, _| a);
            } else {
                crate::models::fcfs::central(&mut src, &mut rec, 4);
            }
            rec.finish(&cfg)
        };
        let (a, b) = (run(true), run(false));
        assert!((a.mean.value - b.mean.value).abs() < 1e-9);
        assert_eq!(a.p99.value, b.p99.value);
    }
}
