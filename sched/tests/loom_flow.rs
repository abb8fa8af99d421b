//! loom models of the flow state machine driven through [`Sched`]: the home core produces events
//! while thieves steal the flow, run its events and send the release home.
//!
//! Each model checks, over every interleaving:
//! - no double execution: two runners never overlap on one flow;
//! - no reordering: events run in the order the home core produced them, each exactly once, and
//!   the runner sees each event's payload (published by `notify`, claimed by `begin`);
//! - no lost wake-up: once everyone is done and the home core has drained its queues, every
//!   event has run and the flow is idle with nothing pending.
//!
//! The test's own bookkeeping uses relaxed atomics, so any happens-before it relies on must come
//! from the scheduler.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ferrix-sched --release --test loom_flow`
#![cfg(loom)]

use ferrix_sched::ipi::{Clock, IpiDecision};
use ferrix_sched::{Claim, Config, CoreId, FlowId, HomeCore, Sched, State};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use loom::thread;

const EVENTS: usize = 2;

struct NoClock;
impl Clock for NoClock {
    fn now_ns(&self) -> u64 {
        0
    }
}

/// The flow under test, its event payloads and the checker's bookkeeping.
struct World {
    sched: Sched<()>,
    flow: FlowId,
    /// Event i's payload, written by the home core before `notify` (0 = not written).
    payload: [AtomicU64; EVENTS],
    /// Events produced so far (home core only).
    produced: AtomicUsize,
    /// Events run so far: the next one to run.
    ran: AtomicUsize,
    /// Runners currently inside the flow.
    inside: AtomicUsize,
}

impl World {
    fn new() -> (Arc<Self>, HomeCore<()>) {
        let (sched, mut homes) = Sched::new(Config::new(2, 2));
        let home = homes.swap_remove(0);
        let world = Arc::new(World {
            sched,
            flow: FlowId::new(CoreId(0), 1).expect("slot fits"),
            payload: [AtomicU64::new(0), AtomicU64::new(0)],
            produced: AtomicUsize::new(0),
            ran: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
        });
        (world, home)
    }

    /// Home core: one event arrives.
    fn produce(&self, home: &mut HomeCore<()>) {
        let i = self.produced.load(Relaxed);
        self.payload[i].store(i as u64 + 100, Relaxed);
        self.produced.store(i + 1, Relaxed);
        self.sched.notify(home, self.flow, 1);
    }

    /// The owner runs the claimed events.
    fn run(&self, claim: Claim) {
        assert_eq!(claim.flow, self.flow);
        assert_eq!(self.inside.fetch_add(1, Relaxed), 0, "two runners at once");
        assert!(claim.events >= 1, "woken with nothing to do");
        for _ in 0..claim.events {
            let next = self.ran.load(Relaxed);
            assert!(next < EVENTS, "ran more events than produced");
            assert_eq!(
                self.payload[next].load(Relaxed),
                next as u64 + 100,
                "event {next} run before its payload was visible"
            );
            self.ran.store(next + 1, Relaxed);
        }
        assert_eq!(self.inside.fetch_sub(1, Relaxed), 1);
    }

    /// A thief: one steal attempt; sends the release home (with or without calls).
    fn thief(&self, with_calls: bool) {
        if let Some(claim) = self.sched.steal(CoreId(0)) {
            self.run(claim);
            let d = self
                .sched
                .complete_stolen(claim.flow, with_calls.then_some(()), &NoClock);
            assert_ne!(d, IpiDecision::Send, "home core was never in app mode");
        }
    }

    /// Home core, after everyone else is done: drains remote calls and its queue to quiescence.
    fn quiesce(&self, home: &mut HomeCore<()>) {
        loop {
            let remote = self.sched.run_remote(home, |_, ()| {});
            let local = self.sched.next_local(home);
            if let Some(claim) = local {
                self.run(claim);
                self.sched.complete_local(home, claim.flow);
            }
            if remote == 0 && local.is_none() {
                break;
            }
        }
        assert_eq!(
            self.ran.load(Relaxed),
            EVENTS,
            "lost wake-up: events never ran"
        );
        assert_eq!(self.sched.flow(self.flow).state(), State::Idle);
        assert_eq!(self.sched.flow(self.flow).pending(), 0);
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Home produces two events and runs its own queue once, while a thief steals and releases
/// directly (no calls) — the `try_release` vs `notify` race.
#[test]
fn steal_without_calls_races_notify() {
    model(|| {
        let (world, mut home) = World::new();
        let thief = {
            let w = world.clone();
            thread::spawn(move || w.thief(false))
        };
        world.produce(&mut home);
        world.produce(&mut home);
        if let Some(claim) = world.sched.next_local(&mut home) {
            world.run(claim);
            world.sched.complete_local(&mut home, claim.flow);
        }
        thief.join().expect("thief panicked");
        world.quiesce(&mut home);
    });
}

/// The thief's events made calls: the release goes home through the remote queue while the
/// home core keeps producing and draining.
#[test]
fn steal_with_calls_released_by_home() {
    model(|| {
        let (world, mut home) = World::new();
        world.produce(&mut home);
        let thief = {
            let w = world.clone();
            thread::spawn(move || w.thief(true))
        };
        world.produce(&mut home);
        world.sched.run_remote(&mut home, |_, ()| {});
        thief.join().expect("thief panicked");
        world.quiesce(&mut home);
    });
}

/// Two thieves race for one ready flow while the home core adds an event: one runs it, the other
/// finds nothing, and the late event is not lost.
#[test]
fn two_thieves_one_flow() {
    model(|| {
        let (world, mut home) = World::new();
        world.produce(&mut home);
        let thieves: Vec<_> = [false, true]
            .into_iter()
            .map(|calls| {
                let w = world.clone();
                thread::spawn(move || w.thief(calls))
            })
            .collect();
        world.produce(&mut home);
        for t in thieves {
            t.join().expect("thief panicked");
        }
        world.quiesce(&mut home);
    });
}
