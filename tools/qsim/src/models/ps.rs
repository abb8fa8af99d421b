//! Processor sharing: a group of `c` processors shared equally by the N requests in it, each
//! progressing at rate min(1, c/N). M/G/n/PS is one group with c = n; n×M/G/1/PS is n groups
//! with c = 1 and random assignment. Simulated in "attained service" virtual time: every request
//! in a group has received the same service since it arrived, so it finishes when the group's
//! virtual clock reaches (clock at arrival + its service time).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ferrix_dist::rand::Rng as _;

use super::time::Time;
use crate::config::Source;
use crate::recorder::Recorder;

struct Group {
    c: f64,
    /// Attained service per request since the group started.
    virt: f64,
    /// Real time of the last update.
    now: f64,
    /// (virtual finish, idx, arrival, service)
    jobs: BinaryHeap<Reverse<(Time, u64, Time, Time)>>,
}

impl Group {
    fn new(c: usize) -> Self {
        Self {
            c: c as f64,
            virt: 0.0,
            now: 0.0,
            jobs: BinaryHeap::new(),
        }
    }

    /// Advance to real time `to`, completing what finishes by then. CPU time is charged to
    /// `worker(idx)`.
    fn advance(&mut self, to: f64, rec: &mut Recorder, worker: impl Fn(u64) -> usize) {
        while let Some(Reverse((fin, idx, arr, svc))) = self.jobs.peek().copied() {
            let rate = (self.c / self.jobs.len() as f64).min(1.0);
            let at = self.now + (fin.0 - self.virt) / rate;
            if at > to {
                self.virt += (to - self.now) * rate;
                self.now = to;
                return;
            }
            self.jobs.pop();
            self.virt = fin.0;
            self.now = at;
            rec.complete(idx, arr.0, at, worker(idx), svc.0);
        }
        self.now = to;
    }

    fn admit(&mut self, idx: u64, arrival: f64, service: f64) {
        self.jobs.push(Reverse((
            Time(self.virt + service),
            idx,
            Time(arrival),
            Time(service),
        )));
    }
}

pub fn central(src: &mut Source, rec: &mut Recorder, n: usize) {
    let mut g = Group::new(n);
    // All workers share all requests; spread the CPU accounting evenly.
    let w = |idx: u64| (idx % n as u64) as usize;
    while let Some(r) = src.next_request() {
        g.advance(r.arrival, rec, w);
        g.admit(r.idx, r.arrival, r.service);
    }
    g.advance(f64::INFINITY, rec, w);
}

pub fn partitioned(src: &mut Source, rec: &mut Recorder, n: usize) {
    let mut groups: Vec<Group> = (0..n).map(|_| Group::new(1)).collect();
    while let Some(r) = src.next_request() {
        let w = src.policy.random_range(0..n);
        groups[w].advance(r.arrival, rec, |_| w);
        groups[w].admit(r.idx, r.arrival, r.service);
    }
    for (w, g) in groups.iter_mut().enumerate() {
        g.advance(f64::INFINITY, rec, |_| w);
    }
}
