//! Stress test with real threads: one thread per simulated core, each driving the scheduler
//! with [`next_action`] the way the kernel will, under every policy.
//!
//! Each core is home to a few flows and "receives" a bounded number of events for them; owners
//! run events, a thief's calls go home through the remote queue, and the home core writes the
//! replies. Checks: replies of every flow are complete and in order, no flow ever has two
//! runners, and (for stealing policies) work was allowed to move. Bounded in iterations; no
//! wall-clock assertions.
use ferrix_sched::idle::{Action, XorShift32, next_action};
use ferrix_sched::ipi::{Clock, CoreMode};
use ferrix_sched::{Claim, Config, CoreId, FlowId, HomeCore, PacketView, Policy, Sched};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

const CORES: usize = 4;
const FLOWS: u32 = 6;
const EVENTS_PER_FLOW: u64 = 300;
const SERVICE_SPINS: usize = 2_000;

struct NoClock;
impl Clock for NoClock {
    fn now_ns(&self) -> u64 {
        0
    }
}

struct Flow {
    events: Mutex<VecDeque<u64>>,
    replies: Mutex<Vec<u64>>,
    running: AtomicBool,
}

struct World {
    sched: Sched<Vec<u64>>,
    flows: Vec<Flow>,
    produced: Vec<AtomicU64>,
    replies: AtomicUsize,
    steals: AtomicUsize,
}

impl World {
    fn flow(&self, id: FlowId) -> &Flow {
        &self.flows[id.home().index() * FLOWS as usize + id.slot() as usize]
    }

    /// The owner runs the claimed events; returns their calls (one reply each).
    fn run(&self, claim: Claim) -> Vec<u64> {
        let flow = self.flow(claim.flow);
        assert!(!flow.running.swap(true, Ordering::Relaxed), "two runners");
        let mut events = flow.events.lock().expect("lock");
        let calls: Vec<u64> = (0..claim.events)
            .map(|_| events.pop_front().expect("claimed a missing event"))
            .collect();
        drop(events);
        // The application's "service time": long enough that ready flows pile up on a busy home
        // core and idle cores find them.
        for _ in 0..SERVICE_SPINS * calls.len() {
            std::hint::spin_loop();
        }
        flow.running.store(false, Ordering::Relaxed);
        calls
    }

    fn reply(&self, flow: FlowId, calls: Vec<u64>) {
        self.replies.fetch_add(calls.len(), Ordering::Relaxed);
        self.flow(flow).replies.lock().expect("lock").extend(calls);
    }
}

/// Events each flow homed on `core` receives: core 0 gets ten times the load of the others.
fn events_per_flow(core: CoreId) -> u64 {
    if core.0 == 0 {
        EVENTS_PER_FLOW
    } else {
        EVENTS_PER_FLOW / 10
    }
}

/// Packets "wait" on a core while it has events left to receive.
impl PacketView for World {
    fn sw_packets(&self, core: CoreId) -> bool {
        self.produced[core.index()].load(Ordering::Relaxed)
            < u64::from(FLOWS) * events_per_flow(core)
    }
    fn nic(&self, _: CoreId) -> bool {
        false
    }
}

fn core_loop(world: &World, home: &mut HomeCore<Vec<u64>>) {
    let me = home.core;
    let mut rng = XorShift32::new(u32::from(me.0) + 1);
    let total: u64 = (0..CORES)
        .map(|c| u64::from(FLOWS) * events_per_flow(CoreId(c as u8)))
        .sum();
    while (world.replies.load(Ordering::Relaxed) as u64) < total {
        let view = world.sched.view(world);
        match next_action(me, world.sched.policy(), &view, &mut rng) {
            Action::RunRemoteCalls => {
                world
                    .sched
                    .run_remote(home, |flow, calls| world.reply(flow, calls));
            }
            Action::RunNetStack => {
                // "TCP input": one event for the next of this core's flows.
                let n = world.produced[me.index()].fetch_add(1, Ordering::Relaxed);
                let flow = FlowId::new(me, (n % u64::from(FLOWS)) as u32).expect("fits");
                world
                    .flow(flow)
                    .events
                    .lock()
                    .expect("lock")
                    .push_back(n / u64::from(FLOWS));
                world.sched.notify(home, flow, 1);
            }
            Action::RunOwnFlow => {
                if let Some(claim) = world.sched.next_local(home) {
                    world.sched.set_mode(me, CoreMode::App);
                    let calls = world.run(claim);
                    world.sched.set_mode(me, CoreMode::Kernel);
                    world.reply(claim.flow, calls);
                    world.sched.complete_local(home, claim.flow);
                }
            }
            Action::Steal { victim } => {
                if let Some(claim) = world.sched.steal(victim) {
                    world.steals.fetch_add(1, Ordering::Relaxed);
                    let calls = world.run(claim);
                    let _ = world
                        .sched
                        .complete_stolen(claim.flow, Some(calls), &NoClock);
                }
            }
            // The test cannot interrupt a thread; the target gets there by itself.
            Action::Ipi { .. } | Action::PollNic | Action::Nothing => std::thread::yield_now(),
        }
    }
}

fn stress(policy: Policy) -> usize {
    let mut config = Config::new(CORES, FLOWS as usize);
    config.policy = policy;
    let (sched, homes) = Sched::new(config);
    let world = World {
        sched,
        flows: (0..CORES * FLOWS as usize)
            .map(|_| Flow {
                events: Mutex::new(VecDeque::new()),
                replies: Mutex::new(Vec::new()),
                running: AtomicBool::new(false),
            })
            .collect(),
        produced: (0..CORES).map(|_| AtomicU64::new(0)).collect(),
        replies: AtomicUsize::new(0),
        steals: AtomicUsize::new(0),
    };
    std::thread::scope(|s| {
        for mut home in homes {
            let world = &world;
            s.spawn(move || core_loop(world, &mut home));
        }
    });
    for (i, f) in world.flows.iter().enumerate() {
        let want: Vec<u64> = (0..events_per_flow(CoreId((i / FLOWS as usize) as u8))).collect();
        assert_eq!(*f.replies.lock().expect("lock"), want, "flow {i}");
        assert!(f.events.lock().expect("lock").is_empty());
    }
    let steals = world.steals.load(Ordering::Relaxed);
    eprintln!("{policy}: {steals} steals");
    steals
}

#[test]
fn zygos() {
    stress(Policy::Zygos);
}

#[test]
fn zygos_noipi() {
    stress(Policy::ZygosNoIpi);
}

#[test]
fn partitioned_never_steals() {
    assert_eq!(stress(Policy::Partitioned), 0);
}
