//! The ZygOS model (thesis 6.4-6.6): each request lands (RSS) on a random home core. An idle home
//! core runs it at once; a busy one leaves it in its NIC queue, invisible to other cores, until
//! its network layer moves it to the core's shuffle queue, from which idle cores steal (each
//! steal costs the thief `steal_cost`). The home core does that move when it finishes its
//! current task; with interrupts, an idle core that sees pending packets on a busy core sends it
//! an IPI, which makes them stealable after `ipi_cost` and costs the home core `ipi_cost` of CPU
//! (charged after its current task: the interrupted request's own latency is not extended).
//! Cores prefer their own shuffle queue, then steal from the first non-empty one found scanning
//! from a random core.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use ferrix_dist::rand::Rng as _;

use super::time::Time;
use crate::ZygosParams;
use crate::config::{Request, Source};
use crate::recorder::Recorder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The core finished its current task (or its IPI overhead).
    Done,
    /// An IPI reached the core: its NIC queue becomes stealable.
    Ipi,
}

struct Core {
    busy: bool,
    nic: VecDeque<(Request, usize)>,
    shuffle: VecDeque<(Request, usize)>,
    /// IPI CPU time still to pay.
    debt: f64,
    ipi_pending: bool,
}

struct Sim<'a> {
    p: ZygosParams,
    cores: Vec<Core>,
    events: BinaryHeap<Reverse<(Time, Event, usize)>>,
    rec: &'a mut Recorder,
    rng: ferrix_dist::Rng,
}

pub fn run(src: &mut Source, rec: &mut Recorder, n: usize, p: &ZygosParams) {
    let cores = (0..n)
        .map(|_| Core {
            busy: false,
            nic: VecDeque::new(),
            shuffle: VecDeque::new(),
            debt: 0.0,
            ipi_pending: false,
        })
        .collect();
    let mut sim = Sim {
        p: *p,
        cores,
        events: BinaryHeap::new(),
        rec,
        rng: src.policy.clone(),
    };
    let mut next = src.next_request();
    loop {
        let ev = sim.events.peek().map(|Reverse((t, _, _))| t.0);
        match (next, ev) {
            (None, None) => break,
            (Some(r), Some(t)) if t > r.arrival => {
                sim.arrive(r);
                next = src.next_request();
            }
            (Some(r), None) => {
                sim.arrive(r);
                next = src.next_request();
            }
            (_, Some(_)) => {
                let Some(Reverse((t, e, w))) = sim.events.pop() else {
                    break;
                };
                match e {
                    Event::Done => sim.done(w, t.0),
                    Event::Ipi => sim.ipi(w, t.0),
                }
            }
        }
    }
}

impl Sim<'_> {
    fn n(&self) -> usize {
        self.cores.len()
    }

    fn start(&mut self, w: usize, now: f64, r: Request, home: usize) {
        let stolen = w != home;
        let cpu = r.service + if stolen { self.p.steal_cost } else { 0.0 };
        let c = &mut self.cores[w];
        c.busy = true;
        self.events.push(Reverse((Time(now + cpu), Event::Done, w)));
        if stolen {
            self.rec.stolen(r.idx);
        }
        self.rec.complete(r.idx, r.arrival, now + cpu, w, cpu);
    }

    fn any_idle(&self) -> bool {
        self.cores.iter().any(|c| !c.busy)
    }

    fn arrive(&mut self, r: Request) {
        let home = self.rng.random_range(0..self.n());
        if !self.cores[home].busy {
            self.start(home, r.arrival, r, home);
            return;
        }
        self.cores[home].nic.push_back((r, home));
        // Idle cores poll remote NIC queues and interrupt the busy home core.
        if self.p.interrupts && self.any_idle() {
            self.send_ipi(home, r.arrival);
        }
    }

    fn send_ipi(&mut self, w: usize, now: f64) {
        if !self.cores[w].ipi_pending {
            self.cores[w].ipi_pending = true;
            self.events
                .push(Reverse((Time(now + self.p.ipi_cost), Event::Ipi, w)));
        }
    }

    /// Move `w`'s NIC queue into its shuffle queue and let idle cores steal from it.
    fn publish(&mut self, w: usize, now: f64) {
        let c = &mut self.cores[w];
        while let Some(x) = c.nic.pop_front() {
            c.shuffle.push_back(x);
        }
        let n = self.n();
        let first = self.rng.random_range(0..n);
        for k in 0..n {
            let thief = (first + k) % n;
            if self.cores[w].shuffle.is_empty() {
                break;
            }
            if !self.cores[thief].busy
                && let Some((r, home)) = self.cores[w].shuffle.pop_front()
            {
                self.start(thief, now, r, home);
            }
        }
    }

    fn ipi(&mut self, w: usize, now: f64) {
        self.cores[w].ipi_pending = false;
        if self.cores[w].busy {
            self.cores[w].debt += self.p.ipi_cost;
            self.publish(w, now);
        }
    }

    fn done(&mut self, w: usize, now: f64) {
        let debt = std::mem::take(&mut self.cores[w].debt);
        if debt > 0.0 {
            self.events
                .push(Reverse((Time(now + debt), Event::Done, w)));
            return;
        }
        self.cores[w].busy = false;
        // Network processing: own packets become events; run the oldest, expose the rest.
        let c = &mut self.cores[w];
        while let Some(x) = c.nic.pop_front() {
            c.shuffle.push_back(x);
        }
        if let Some((r, home)) = self.cores[w].shuffle.pop_front() {
            self.start(w, now, r, home);
            self.publish(w, now);
            return;
        }
        let n = self.n();
        let first = self.rng.random_range(0..n);
        for k in 0..n {
            let v = (first + k) % n;
            if let Some((r, home)) = self.cores[v].shuffle.pop_front() {
                self.start(w, now, r, home);
                return;
            }
        }
        if self.p.interrupts {
            for k in 0..n {
                let v = (first + k) % n;
                if !self.cores[v].nic.is_empty() {
                    self.send_ipi(v, now);
                }
            }
        }
    }
}
