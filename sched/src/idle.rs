//! What a core does next: the scheduling loop of one core as a pure decision function.
//!
//! The kernel calls [`next_action`] at the top of every loop iteration, does what it says, and
//! calls again. The decision reads only the [`PendingView`] the kernel passes (cheap, cacheable
//! reads of other cores' queue heads), so it is tested here without cores or NICs.
//!
//! Order (thesis 6.4.2 and 6.5, "Idle loop polling logic"):
//! 1. own remote-syscall queue (thieves' calls: they hold flows busy and carry replies);
//! 2. own software packet queue (TCP input makes flows ready, which thieves can then steal);
//! 3. own shuffle queue;
//!
//! and when all three are empty the core is *idle* and polls, in order of priority:
//! - (a) its own NIC ring;
//! - (b) other cores' shuffle queues (steal), if the policy steals;
//! - (c) other cores' software packet queues, then (d) other cores' NIC rings: packets waiting
//!   on a core that runs application code call for an IPI, if the policy sends them (a core in
//!   the kernel or idle gets to its packets by itself);
//! - (e) other cores' remote-syscall queues: a thief's IPI for its calls may have been rate
//!   limited ([`crate::ipi::RateLimiter`]), so calls still waiting on a core in application
//!   code are asked for again (an extension: the thesis sends that IPI once).
//!
//! Steps (b)-(d) visit the other cores in a random rotation drawn from the [`Rng`] each time, so
//! thieves do not all pile onto the same victim.

use crate::flow_id::CoreId;
use crate::ipi::{CoreMode, IpiReason};
use crate::policy::Policy;

/// What each core has pending, as the deciding core can see it.
pub trait PendingView {
    /// Number of cores.
    fn cores(&self) -> usize;
    /// Thieves' calls wait on `core`'s remote-syscall queue.
    fn remote_calls(&self, core: CoreId) -> bool;
    /// Received packets wait in `core`'s software queue (pulled off the NIC, not yet through TCP).
    fn sw_packets(&self, core: CoreId) -> bool;
    /// Ready flows wait on `core`'s shuffle queue.
    fn shuffle(&self, core: CoreId) -> bool;
    /// Descriptors wait in `core`'s NIC receive ring.
    fn nic(&self, core: CoreId) -> bool;
    /// What `core` is doing.
    fn mode(&self, core: CoreId) -> CoreMode;
}

/// A source of randomness for the remote polling order.
pub trait Rng {
    /// A uniformly distributed `u32`.
    fn next_u32(&mut self) -> u32;
}

/// xorshift32: tiny, `no_std`, good enough to spread steal attempts.
#[derive(Clone, Debug)]
pub struct XorShift32(u32);

impl XorShift32 {
    /// A generator from `seed` (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u32) -> Self {
        Self(if seed == 0 { 0x9e37_79b9 } else { seed })
    }
}

impl Rng for XorShift32 {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// The next thing a core should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the calls on the own remote-syscall queue, then release their flows.
    RunRemoteCalls,
    /// Run the network stack over the own software packet queue.
    RunNetStack,
    /// Pop the own shuffle queue and run the flow.
    RunOwnFlow,
    /// Pull descriptors from the own NIC ring (then the network stack).
    PollNic,
    /// Pop `victim`'s shuffle queue and run the flow here.
    Steal {
        /// The core to steal from.
        victim: CoreId,
    },
    /// Packets wait on `target`, which runs application code: ask [`crate::ipi::decide`] and
    /// interrupt it, then keep polling.
    Ipi {
        /// The core to interrupt.
        target: CoreId,
        /// Why.
        reason: IpiReason,
    },
    /// Nothing anywhere: spin (or halt until an interrupt, if the kernel prefers).
    Nothing,
}

/// The decision for core `me` under `policy`.
pub fn next_action(
    me: CoreId,
    policy: Policy,
    view: &impl PendingView,
    rng: &mut impl Rng,
) -> Action {
    if view.remote_calls(me) {
        return Action::RunRemoteCalls;
    }
    if view.sw_packets(me) {
        return Action::RunNetStack;
    }
    if view.shuffle(me) {
        return Action::RunOwnFlow;
    }
    // Idle from here on.
    if view.nic(me) {
        return Action::PollNic;
    }
    if policy.steals()
        && let Some(victim) = first_other(me, view.cores(), rng, |c| view.shuffle(c))
    {
        return Action::Steal { victim };
    }
    if policy.sends_ipis() {
        // The mode is read first: it is one atomic, the queue checks may cost more.
        let in_app = |c: CoreId| view.mode(c) == CoreMode::App;
        let waiting = first_other(me, view.cores(), rng, |c| in_app(c) && view.sw_packets(c))
            .or_else(|| first_other(me, view.cores(), rng, |c| in_app(c) && view.nic(c)));
        if let Some(target) = waiting {
            return Action::Ipi {
                target,
                reason: IpiReason::Packets,
            };
        }
        if let Some(target) =
            first_other(me, view.cores(), rng, |c| in_app(c) && view.remote_calls(c))
        {
            return Action::Ipi {
                target,
                reason: IpiReason::RemoteCalls,
            };
        }
    }
    Action::Nothing
}

/// The first core other than `me`, in a random rotation, for which `hit` holds.
fn first_other(
    me: CoreId,
    cores: usize,
    rng: &mut impl Rng,
    mut hit: impl FnMut(CoreId) -> bool,
) -> Option<CoreId> {
    let others = cores.checked_sub(1).filter(|&n| n > 0)?;
    let start = rng.next_u32() as usize % others;
    (0..others)
        .map(|i| {
            // The i-th other core of the rotation, skipping `me`.
            let k = (start + i) % others;
            let c = if k >= me.index() { k + 1 } else { k };
            CoreId(c as u8)
        })
        .find(|&c| hit(c))
}
