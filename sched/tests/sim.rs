//! Property tests: random single-threaded interleavings of every scheduler step on several
//! simulated cores, checked against a model after every step.
//!
//! Invariants: a flow is ready iff it is queued (each core's shuffle queue holds exactly its
//! ready flows); an owned flow is busy and has one owner; events run in the order produced,
//! each exactly once; after quiescing, every event ran and every flow is idle.
use ferrix_sched::ipi::{Clock, IpiDecision};
use ferrix_sched::{Claim, Config, CoreId, FlowId, HomeCore, Policy, Sched, State};
use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};

const CORES: usize = 3;
const FLOWS: u32 = 4;

struct Clk(u64);
impl Clock for Clk {
    fn now_ns(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Debug)]
enum Op {
    Produce { core: u8, slot: u32, n: u64 },
    Local { core: u8 },
    Steal { victim: u8 },
    Complete { index: usize, calls: bool },
    Remote { core: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let core = 0..CORES as u8;
    prop_oneof![
        3 => (core.clone(), 0..FLOWS, 1..3u64).prop_map(|(core, slot, n)| Op::Produce { core, slot, n }),
        2 => core.clone().prop_map(|core| Op::Local { core }),
        2 => core.clone().prop_map(|victim| Op::Steal { victim }),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(index, calls)| Op::Complete { index, calls }),
        1 => core.prop_map(|core| Op::Remote { core }),
    ]
}

struct Sim {
    sched: Sched<Vec<u64>>,
    homes: Vec<HomeCore<Vec<u64>>>,
    /// The PCB event queues: sequence numbers produced and not yet claimed.
    events: HashMap<FlowId, VecDeque<u64>>,
    produced: HashMap<FlowId, u64>,
    /// Next sequence number each flow must run.
    next_run: HashMap<FlowId, u64>,
    /// Replies written by the home core, per flow, in order.
    replies: HashMap<FlowId, Vec<u64>>,
    /// Owned flows: (claim, ran on home core?, the events' calls).
    running: Vec<(Claim, bool, Vec<u64>)>,
    clock: Clk,
}

impl Sim {
    fn new(policy: Policy) -> Self {
        let mut config = Config::new(CORES, FLOWS as usize);
        config.policy = policy;
        let (sched, homes) = Sched::new(config);
        Self {
            sched,
            homes,
            events: HashMap::new(),
            produced: HashMap::new(),
            next_run: HashMap::new(),
            replies: HashMap::new(),
            running: Vec::new(),
            clock: Clk(0),
        }
    }

    fn own(&mut self, claim: Claim, local: bool) {
        assert!(
            !self.running.iter().any(|(c, _, _)| c.flow == claim.flow),
            "flow {:?} owned twice",
            claim.flow
        );
        assert!(claim.events >= 1, "woken with nothing to run");
        assert_eq!(self.sched.flow(claim.flow).state(), State::Busy);
        let queue = self.events.entry(claim.flow).or_default();
        let next = self.next_run.entry(claim.flow).or_default();
        let mut calls = Vec::new();
        for _ in 0..claim.events {
            let seq = queue
                .pop_front()
                .expect("claimed an event that was never produced");
            assert_eq!(seq, *next, "events of {:?} out of order", claim.flow);
            *next += 1;
            calls.push(seq);
        }
        self.running.push((claim, local, calls));
    }

    fn step(&mut self, op: Op) {
        self.clock.0 += 1_000;
        match op {
            Op::Produce { core, slot, n } => {
                let flow = FlowId::new(CoreId(core), slot).expect("slot fits");
                let seq = self.produced.entry(flow).or_default();
                let queue = self.events.entry(flow).or_default();
                for _ in 0..n {
                    queue.push_back(*seq);
                    *seq += 1;
                }
                self.sched.notify(&mut self.homes[core as usize], flow, n);
            }
            Op::Local { core } => {
                if let Some(claim) = self.sched.next_local(&mut self.homes[core as usize]) {
                    self.own(claim, true);
                }
            }
            Op::Steal { victim } => {
                let claim = self.sched.steal(CoreId(victim));
                if self.sched.policy() == Policy::Partitioned {
                    assert!(claim.is_none(), "partitioned stole");
                }
                if let Some(claim) = claim {
                    self.own(claim, false);
                }
            }
            Op::Complete { index, calls } => {
                if self.running.is_empty() {
                    return;
                }
                let (claim, local, replies) = self.running.swap_remove(index % self.running.len());
                if local {
                    // The home core runs its calls itself, then releases.
                    self.replies.entry(claim.flow).or_default().extend(replies);
                    let home = claim.flow.home().index();
                    self.sched.complete_local(&mut self.homes[home], claim.flow);
                } else {
                    let calls = (calls || !replies.is_empty()).then_some(replies);
                    let d = self.sched.complete_stolen(claim.flow, calls, &self.clock);
                    assert_eq!(d, IpiDecision::NotNeeded, "no core is in app mode here");
                }
            }
            Op::Remote { core } => self.remote(core as usize),
        }
        self.check();
    }

    fn remote(&mut self, core: usize) {
        let replies = &mut self.replies;
        self.sched.run_remote(&mut self.homes[core], |flow, calls| {
            replies.entry(flow).or_default().extend(calls)
        });
    }

    fn check(&self) {
        for core in 0..CORES {
            let c = CoreId(core as u8);
            let ready = (0..FLOWS)
                .filter(|&s| {
                    let f = FlowId::new(c, s).expect("slot fits");
                    self.sched.flow(f).state() == State::Ready
                })
                .count();
            let queued = self.sched.core(c).shuffle.len() + self.homes[core].overflowed();
            assert_eq!(ready, queued, "core {core}: ready flows != queued flows");
        }
        for (claim, _, _) in &self.running {
            assert_eq!(self.sched.flow(claim.flow).state(), State::Busy);
        }
    }

    fn quiesce(&mut self) {
        while let Some((claim, local, replies)) = self.running.pop() {
            self.running.push((claim, local, replies));
            self.step(Op::Complete {
                index: self.running.len() - 1,
                calls: false,
            });
        }
        loop {
            let mut progress = false;
            for core in 0..CORES {
                progress |= !self.sched.core(CoreId(core as u8)).remote.is_empty();
                self.remote(core);
                if let Some(claim) = self.sched.next_local(&mut self.homes[core]) {
                    progress = true;
                    self.own(claim, true);
                    self.step(Op::Complete {
                        index: self.running.len() - 1,
                        calls: false,
                    });
                }
            }
            if !progress {
                break;
            }
        }
        for (flow, &n) in &self.produced {
            assert_eq!(
                self.sched.flow(*flow).state(),
                State::Idle,
                "{flow:?} not idle"
            );
            let want: Vec<u64> = (0..n).collect();
            assert_eq!(
                self.replies.get(flow),
                Some(&want),
                "{flow:?}: lost or reordered replies"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_interleavings_keep_the_invariants(
        policy in prop_oneof![Just(Policy::Zygos), Just(Policy::ZygosNoIpi), Just(Policy::Partitioned)],
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut sim = Sim::new(policy);
        for op in ops {
            sim.step(op);
        }
        sim.quiesce();
    }
}
