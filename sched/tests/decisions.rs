//! Property tests for the pure decisions: the idle-loop order and the IPI rate limit under a
//! simulated clock.
use ferrix_sched::idle::{Action, PendingView, XorShift32, next_action};
use ferrix_sched::ipi::{self, Clock, CoreMode, IpiDecision, IpiReason, RateLimiter};
use ferrix_sched::{CoreId, Policy};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Core {
    remote: bool,
    sw: bool,
    shuffle: bool,
    nic: bool,
    mode: CoreMode,
}

struct Fake(Vec<Core>);

impl PendingView for Fake {
    fn cores(&self) -> usize {
        self.0.len()
    }
    fn remote_calls(&self, c: CoreId) -> bool {
        self.0[c.index()].remote
    }
    fn sw_packets(&self, c: CoreId) -> bool {
        self.0[c.index()].sw
    }
    fn shuffle(&self, c: CoreId) -> bool {
        self.0[c.index()].shuffle
    }
    fn nic(&self, c: CoreId) -> bool {
        self.0[c.index()].nic
    }
    fn mode(&self, c: CoreId) -> CoreMode {
        self.0[c.index()].mode
    }
}

fn core() -> impl Strategy<Value = Core> {
    let mode = prop_oneof![
        Just(CoreMode::Kernel),
        Just(CoreMode::App),
        Just(CoreMode::Idle)
    ];
    (any::<[bool; 4]>(), mode).prop_map(|(b, mode)| Core {
        remote: b[0],
        sw: b[1],
        shuffle: b[2],
        nic: b[3],
        mode,
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Zygos),
        Just(Policy::ZygosNoIpi),
        Just(Policy::Partitioned)
    ]
}

struct Sim(u64);
impl Clock for Sim {
    fn now_ns(&self) -> u64 {
        self.0
    }
}

proptest! {
    #[test]
    fn idle_loop_follows_the_thesis_order(
        cores in prop::collection::vec(core(), 1..6),
        me in any::<prop::sample::Index>(),
        policy in policy(),
        seed in any::<u32>(),
    ) {
        let view = Fake(cores);
        let me = CoreId(me.index(view.0.len()) as u8);
        let mine = &view.0[me.index()];
        let others = || (0..view.0.len()).map(|c| CoreId(c as u8)).filter(move |&c| c != me);
        let needs_ipi = |c: CoreId| {
            let o = &view.0[c.index()];
            (o.sw || o.nic) && o.mode == CoreMode::App
        };
        let calls_wait = |c: CoreId| {
            let o = &view.0[c.index()];
            o.remote && o.mode == CoreMode::App
        };
        let action = next_action(me, policy, &view, &mut XorShift32::new(seed));
        let expected_own = if mine.remote {
            Some(Action::RunRemoteCalls)
        } else if mine.sw {
            Some(Action::RunNetStack)
        } else if mine.shuffle {
            Some(Action::RunOwnFlow)
        } else if mine.nic {
            Some(Action::PollNic)
        } else {
            None
        };
        if let Some(expected) = expected_own {
            prop_assert_eq!(action, expected);
            return Ok(());
        }
        let can_steal = policy.steals() && others().any(|c| view.0[c.index()].shuffle);
        match action {
            Action::Steal { victim } => {
                prop_assert!(policy.steals());
                prop_assert!(victim != me && view.0[victim.index()].shuffle);
            }
            Action::Ipi { target, reason: IpiReason::Packets } => {
                prop_assert!(policy.sends_ipis() && !can_steal);
                prop_assert!(target != me && needs_ipi(target));
                // Software queues (c) come before NIC rings (d).
                if !view.0[target.index()].sw {
                    prop_assert!(!others().any(|c| needs_ipi(c) && view.0[c.index()].sw));
                }
            }
            Action::Ipi { target, reason: IpiReason::RemoteCalls } => {
                // (e) only when no packets call for one.
                prop_assert!(policy.sends_ipis() && !can_steal);
                prop_assert!(target != me && calls_wait(target));
                prop_assert!(!others().any(needs_ipi));
            }
            Action::Nothing => {
                prop_assert!(!can_steal);
                prop_assert!(!(policy.sends_ipis() && others().any(needs_ipi)));
                prop_assert!(!(policy.sends_ipis() && others().any(calls_wait)));
            }
            other => prop_assert!(false, "own-core action {:?} with nothing pending", other),
        }
    }

    #[test]
    fn ipis_are_rate_limited_per_target(
        interval in 0..10_000u64,
        steps in prop::collection::vec((0..3usize, 0..3_000u64, any::<bool>()), 1..200),
    ) {
        let limiters: Vec<RateLimiter> = (0..3).map(|_| RateLimiter::new(interval)).collect();
        let mut last: [Option<u64>; 3] = [None; 3];
        let mut clock = Sim(0);
        for (target, dt, in_app) in steps {
            clock.0 += dt;
            let mode = if in_app { CoreMode::App } else { CoreMode::Kernel };
            let d = ipi::decide(Policy::Zygos, mode, IpiReason::RemoteCalls, &limiters[target], &clock);
            let allowed = last[target].is_none_or(|t| clock.0 - t >= interval);
            let expected = match (in_app, allowed) {
                (false, _) => IpiDecision::NotNeeded,
                (true, true) => IpiDecision::Send,
                (true, false) => IpiDecision::RateLimited,
            };
            prop_assert_eq!(d, expected);
            if d == IpiDecision::Send {
                last[target] = Some(clock.0);
            }
        }
    }
}

/// Over many draws every candidate victim is chosen: the remote order really is randomised.
#[test]
fn steal_victims_are_spread() {
    let busy = Core {
        remote: false,
        sw: false,
        shuffle: true,
        nic: false,
        mode: CoreMode::App,
    };
    let idle = Core {
        shuffle: false,
        ..busy.clone()
    };
    let view = Fake(vec![idle, busy.clone(), busy.clone(), busy]);
    let mut rng = XorShift32::new(42);
    let mut hits = [0u32; 4];
    for _ in 0..300 {
        match next_action(CoreId(0), Policy::Zygos, &view, &mut rng) {
            Action::Steal { victim } => hits[victim.index()] += 1,
            other => panic!("expected a steal, got {other:?}"),
        }
    }
    assert_eq!(hits[0], 0);
    assert!(
        hits[1..].iter().all(|&h| h > 50),
        "skewed victims: {hits:?}"
    );
}
