//! Runs N flow events through the scheduler, for counting instructions per event under
//! callgrind (run with N and 2N, divide the difference of the totals by N; `ferrix bench sched`
//! does this). Two paths, chosen by the second argument:
//!
//! - `local`: the home core's own event: `notify`, the idle-loop decision, `next_local`,
//!   `complete_local` (figure 6.4 steps 2-3 without stealing);
//! - `stolen`: `notify` on the home core, the thief's decision and `steal`, `complete_stolen`
//!   with calls, and the home core's decision and `run_remote` (steps 2, a, b).
//!
//! Usage: `event_instructions N local|stolen`.

use ferrix_sched::idle::{Action, XorShift32, next_action};
use ferrix_sched::ipi::Clock;
use ferrix_sched::{Config, CoreId, FlowId, PacketView, Policy, Sched};
use std::hint::black_box;

struct NoPackets;
impl PacketView for NoPackets {
    fn sw_packets(&self, _: CoreId) -> bool {
        false
    }
    fn nic(&self, _: CoreId) -> bool {
        false
    }
}

struct Fixed;
impl Clock for Fixed {
    fn now_ns(&self) -> u64 {
        0
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let stolen = args.next().as_deref() == Some("stolen");
    let mut config = Config::new(2, 64);
    config.policy = Policy::Zygos;
    let (sched, mut homes) = Sched::<()>::new(config);
    let mut rng = XorShift32::new(7);
    let (home, thief) = (CoreId(0), CoreId(1));
    let flow = FlowId::new(home, 3).expect("flow id");
    let mut ran = 0u64;
    for _ in 0..n {
        sched.notify(&mut homes[0], black_box(flow), 1);
        if stolen {
            let view = sched.view(&NoPackets);
            if let Action::Steal { victim } = next_action(thief, sched.policy(), &view, &mut rng)
                && let Some(claim) = sched.steal(victim)
            {
                ran += claim.events;
                let _ = sched.complete_stolen(claim.flow, Some(()), &Fixed);
            }
            if next_action(home, sched.policy(), &view, &mut rng) == Action::RunRemoteCalls {
                sched.run_remote(&mut homes[0], |f, ()| {
                    black_box(f);
                });
            }
        } else {
            let view = sched.view(&NoPackets);
            if next_action(home, sched.policy(), &view, &mut rng) == Action::RunOwnFlow
                && let Some(claim) = sched.next_local(&mut homes[0])
            {
                ran += claim.events;
                sched.complete_local(&mut homes[0], claim.flow);
            }
        }
    }
    assert_eq!(ran, n, "every event ran once");
    println!(
        "{n} events, {} path",
        if stolen { "stolen" } else { "local" }
    );
}
