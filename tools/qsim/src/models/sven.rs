//! SVEN (thesis 11.3, listing 11.1) in front of M/G/n/FCFS: each arriving request is dropped
//! with the current drop rate; every `interval` the controller looks at the requests that
//! completed during the interval, and if fewer than `target` of them met the SLO it raises the
//! drop rate by `step` (at most 0.99), otherwise lowers it by `step` (at least 0). The thesis
//! smooths the estimate with an EWMA; we use the plain per-interval fraction (intervals hold
//! thousands of requests at the loads of interest).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ferrix_dist::rand::Rng as _;

use super::argmin;
use super::time::Time;
use crate::SvenParams;
use crate::config::Source;
use crate::recorder::Recorder;

/// Cap on the drop rate (listing 11.1).
const MAX_DROP: f64 = 0.99;

pub fn run(src: &mut Source, rec: &mut Recorder, n: usize, p: &SvenParams, slo: f64) {
    let mut free = vec![0.0f64; n];
    let mut drop = 0.0f64;
    let mut next_tick = p.interval;
    // Completions not yet seen by the controller: (departure, met SLO).
    let mut pending: BinaryHeap<Reverse<(Time, bool)>> = BinaryHeap::new();
    while let Some(r) = src.next_request() {
        while next_tick <= r.arrival {
            let (mut ok, mut all) = (0u64, 0u64);
            while let Some(&Reverse((t, met))) = pending.peek() {
                if t.0 > next_tick {
                    break;
                }
                pending.pop();
                all += 1;
                ok += u64::from(met);
            }
            if all > 0 {
                if (ok as f64) < p.target * all as f64 {
                    drop = (drop + p.step).min(MAX_DROP);
                } else {
                    drop = (drop - p.step).max(0.0);
                }
            }
            next_tick += p.interval;
        }
        if drop > 0.0 && src.policy.random::<f64>() < drop {
            rec.drop_request(r.idx, r.arrival);
            continue;
        }
        let (w, f) = argmin(&free);
        let dep = f.max(r.arrival) + r.service;
        free[w] = dep;
        pending.push(Reverse((Time(dep), dep - r.arrival <= slo)));
        rec.complete(r.idx, r.arrival, dep, w, r.service);
    }
}
