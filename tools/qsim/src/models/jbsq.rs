//! JBSQ(n) (thesis 10.3): a router with an unbounded central queue in front of per-worker FCFS
//! queues bounded at `depth` outstanding requests (including the one in service). The router
//! sends to the least-loaded worker with a free slot, otherwise queues centrally; a worker's
//! completion reaches the router as feedback after the one-way `delay`, freeing a slot. Latency
//! runs from arrival at the router to completion at the worker (so it includes one `delay`).
//! JBSQ(1) with no delay is exactly M/G/n/FCFS.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::time::Time;
use crate::config::{Request, Source};
use crate::recorder::Recorder;

struct Router<'a> {
    rec: &'a mut Recorder,
    outstanding: Vec<usize>,
    free: Vec<f64>,
    feedback: BinaryHeap<Reverse<(Time, usize)>>,
    delay: f64,
}

impl Router<'_> {
    fn dispatch(&mut self, r: Request, w: usize, now: f64) {
        self.outstanding[w] += 1;
        let dep = self.free[w].max(now + self.delay) + r.service;
        self.free[w] = dep;
        self.rec.complete(r.idx, r.arrival, dep, w, r.service);
        self.feedback.push(Reverse((Time(dep + self.delay), w)));
    }
}

pub fn run(src: &mut Source, rec: &mut Recorder, n: usize, depth: usize, delay: f64) {
    let mut router = Router {
        rec,
        outstanding: vec![0; n],
        free: vec![0.0; n],
        feedback: BinaryHeap::new(),
        delay,
    };
    let mut central: VecDeque<Request> = VecDeque::new();
    let mut next = src.next_request();
    loop {
        let fb_time = router.feedback.peek().map(|Reverse((t, _))| t.0);
        match (next, fb_time) {
            (None, None) => break,
            // Feedback first on ties: a slot freed at the arrival instant is usable.
            (Some(r), Some(t)) if t > r.arrival => {
                arrive(&mut router, &mut central, r, n, depth);
                next = src.next_request();
            }
            (Some(r), None) => {
                arrive(&mut router, &mut central, r, n, depth);
                next = src.next_request();
            }
            (_, Some(t)) => {
                let Some(Reverse((_, w))) = router.feedback.pop() else {
                    break;
                };
                router.outstanding[w] -= 1;
                if let Some(q) = central.pop_front() {
                    router.dispatch(q, w, t);
                }
            }
        }
    }
}

fn arrive(
    router: &mut Router<'_>,
    central: &mut VecDeque<Request>,
    r: Request,
    n: usize,
    depth: usize,
) {
    // Least outstanding, rotating the scan start to spread ties.
    let start = (r.idx % n as u64) as usize;
    let mut best = (usize::MAX, 0);
    for k in 0..n {
        let w = (start + k) % n;
        if router.outstanding[w] < best.0 {
            best = (router.outstanding[w], w);
        }
    }
    if best.0 < depth && central.is_empty() {
        router.dispatch(r, best.1, r.arrival);
    } else {
        central.push_back(r);
    }
}
