//! When to send an inter-processor interrupt, and the per-target rate limit.
//!
//! Two situations call for one (thesis 6.4.5), both only under [`Policy::Zygos`] and only when
//! the target core is running application code (the kernel runs with interrupts off and its work
//! is short and bounded, so a core in the kernel or idle will get to it anyway):
//! - an idle core sees packets waiting on another core (in its software packet queue or NIC
//!   ring) whose shuffle queue is therefore not being refilled ([`IpiReason::Packets`]);
//! - a thief queued calls on a home core's remote-syscall queue ([`IpiReason::RemoteCalls`]).
//!
//! The handler on the target runs the network stack if its shuffle queue is empty, runs its
//! remote calls, transmits, and returns to the interrupted application.
//!
//! Each target core has a [`RateLimiter`]: at most one IPI per `min_interval_ns` (reference: one
//! per 4 µs, [`REFERENCE_MIN_INTERVAL_NS`]), shared by all senders, so a busy core is not
//! flooded by every idle core at once. Time comes from an injected [`Clock`].

use crate::policy::Policy;
use crate::sync::{AtomicU8, AtomicU64, Ordering};

/// The thesis's reference rate limit: one IPI per core per 4 µs (spec/numbers.md).
pub const REFERENCE_MIN_INTERVAL_NS: u64 = 4_000;

/// The IPI vector the reference implementation used (spec/numbers.md).
pub const REFERENCE_VECTOR: u8 = 0xf2;

/// A monotonic clock in nanoseconds (the kernel's TSC clock, or a simulated one in tests).
pub trait Clock {
    /// Nanoseconds since an arbitrary, fixed origin; never decreases on one core.
    fn now_ns(&self) -> u64;
}

/// What a core is doing, as other cores see it when deciding on an IPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CoreMode {
    /// In the kernel: network stack, remote calls, scheduler (interrupts off, short).
    Kernel = 0,
    /// Running application code for a flow: only an IPI makes it look at its queues.
    App = 1,
    /// In the idle loop, polling.
    Idle = 2,
}

/// A core's [`CoreMode`], published for the other cores.
#[derive(Debug)]
pub struct ModeCell(AtomicU8);

impl Default for ModeCell {
    fn default() -> Self {
        Self::new(CoreMode::Kernel)
    }
}

impl ModeCell {
    /// A cell holding `mode`.
    pub fn new(mode: CoreMode) -> Self {
        Self(AtomicU8::new(mode as u8))
    }

    /// The owning core: publishes its new mode.
    pub fn set(&self, mode: CoreMode) {
        self.0.store(mode as u8, Ordering::Release);
    }

    /// Any core: the current mode (a snapshot).
    pub fn get(&self) -> CoreMode {
        match self.0.load(Ordering::Acquire) {
            1 => CoreMode::App,
            2 => CoreMode::Idle,
            _ => CoreMode::Kernel,
        }
    }
}

/// Why an IPI would be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiReason {
    /// Packets wait on the target's software queue or NIC ring.
    Packets,
    /// Calls wait on the target's remote-syscall queue.
    RemoteCalls,
}

/// The outcome of [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiDecision {
    /// Send the IPI now (the rate limiter has been charged).
    Send,
    /// No IPI needed: the policy does not use them, or the target is not in application code.
    NotNeeded,
    /// An IPI would help but one was sent to the target less than the interval ago.
    RateLimited,
}

/// Whether the policy wants an IPI for a target in `mode` (pure, no side effects).
pub fn wanted(policy: Policy, mode: CoreMode) -> bool {
    policy.sends_ipis() && mode == CoreMode::App
}

/// The full decision for `reason` towards a target in `mode`, charging `limiter` if it says send.
///
/// `reason` does not change the answer today (both reasons want the target to enter the kernel
/// as soon as it can); it is here for counters and tracing.
pub fn decide(
    policy: Policy,
    mode: CoreMode,
    _reason: IpiReason,
    limiter: &RateLimiter,
    clock: &impl Clock,
) -> IpiDecision {
    if !wanted(policy, mode) {
        return IpiDecision::NotNeeded;
    }
    if limiter.try_acquire(clock.now_ns()) {
        IpiDecision::Send
    } else {
        IpiDecision::RateLimited
    }
}

const NEVER: u64 = u64::MAX;

/// At most one IPI per `min_interval_ns` to one target core, whoever sends it.
#[derive(Debug)]
pub struct RateLimiter {
    last_sent: AtomicU64,
    min_interval_ns: u64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(REFERENCE_MIN_INTERVAL_NS)
    }
}

impl RateLimiter {
    /// A limiter that allows one IPI per `min_interval_ns` (0: no limit).
    pub fn new(min_interval_ns: u64) -> Self {
        Self {
            last_sent: AtomicU64::new(NEVER),
            min_interval_ns,
        }
    }

    /// The configured interval.
    pub fn min_interval_ns(&self) -> u64 {
        self.min_interval_ns
    }

    /// Claims the right to send at `now_ns`. `true` at most once per interval across all
    /// callers; a clock that reads earlier than the last send (cores' clocks a little apart)
    /// counts as inside the interval.
    pub fn try_acquire(&self, now_ns: u64) -> bool {
        let last = self.last_sent.load(Ordering::Relaxed);
        if last != NEVER && (now_ns < last || now_ns - last < self.min_interval_ns) {
            return false;
        }
        self.last_sent
            .compare_exchange(last, now_ns, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct FakeClock(Cell<u64>);
    impl Clock for FakeClock {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }
    }

    #[test]
    fn only_zygos_interrupts_app_code() {
        for mode in [CoreMode::Kernel, CoreMode::App, CoreMode::Idle] {
            assert_eq!(wanted(Policy::Zygos, mode), mode == CoreMode::App);
            assert!(!wanted(Policy::ZygosNoIpi, mode));
            assert!(!wanted(Policy::Partitioned, mode));
        }
    }

    #[test]
    fn one_per_interval() {
        let clock = FakeClock(Cell::new(1_000));
        let limiter = RateLimiter::default();
        let d = |c: &FakeClock| {
            decide(
                Policy::Zygos,
                CoreMode::App,
                IpiReason::Packets,
                &limiter,
                c,
            )
        };
        assert_eq!(d(&clock), IpiDecision::Send);
        assert_eq!(d(&clock), IpiDecision::RateLimited);
        clock.0.set(1_000 + REFERENCE_MIN_INTERVAL_NS - 1);
        assert_eq!(d(&clock), IpiDecision::RateLimited);
        clock.0.set(1_000 + REFERENCE_MIN_INTERVAL_NS);
        assert_eq!(d(&clock), IpiDecision::Send);
        clock.0.set(0);
        assert_eq!(
            d(&clock),
            IpiDecision::RateLimited,
            "clock behind the last send"
        );
    }

    #[test]
    fn mode_cell_round_trips() {
        let cell = ModeCell::default();
        for mode in [CoreMode::App, CoreMode::Idle, CoreMode::Kernel] {
            cell.set(mode);
            assert_eq!(cell.get(), mode);
        }
    }
}
