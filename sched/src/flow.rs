//! The per-flow state machine of ZygOS (thesis figure 6.5): **idle**, **ready**, **busy**.
//!
//! A flow (a TCP connection, an R2P2 client) has one *home core*, the core whose NIC queue RSS
//! sends its packets to. Its state lives in one atomic word: two bits of state and a count of
//! events that arrived but have not been handed to an owner yet.
//!
//! ```text
//!            notify (home core)                begin (whoever popped it)
//!   idle ─────────────────────────► ready ─────────────────────────────► busy
//!    ▲          pushes the flow on       ▲  claims every pending event     │ notify while busy:
//!    │          the home shuffle queue   │                                 │ count += n, stays busy
//!    │                                   │  finish with events pending     │
//!    │                                   └─────────────────────────────────┤ (home core re-pushes)
//!    └─────────────────────────────────────────────────────────────────────┘
//!                  finish with nothing pending (home core, after the calls ran)
//! ```
//!
//! Invariants (checked by the loom models and property tests):
//! - the flow is on its home shuffle queue exactly once while `ready` and never otherwise: only
//!   the idle -> ready and busy -> ready transitions return [`Transition::Enqueue`], only the home
//!   core makes them, and only the one consumer that popped the flow can make ready -> busy;
//! - whoever made ready -> busy owns the flow exclusively until `finish`, so two events of one flow
//!   never run at the same time, and because [`FlowState::begin`] claims a count of events that
//!   the home core queued in order, they never run out of order;
//! - no lost wake-up: an event that arrives while busy is counted, and `finish` sees the count.
//!
//! The event payloads stay with the network stack (the per-connection event queue of the PCB):
//! the home core appends them *before* calling [`FlowState::notify`], and the owner takes exactly
//! the number [`FlowState::begin`] returned, from the front.

use crate::sync::{AtomicU64, Ordering};

/// The three states of figure 6.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing pending, nobody running it, no outstanding calls.
    Idle,
    /// Events pending; on the home shuffle queue; nobody running it.
    Ready,
    /// Owned by one core (home or thief) until its calls have run on the home core.
    Busy,
}

const IDLE: u64 = 0;
const READY: u64 = 1;
const BUSY: u64 = 2;
const STATE_MASK: u64 = 0b11;
const COUNT_SHIFT: u32 = 2;

fn state_of(word: u64) -> State {
    match word & STATE_MASK {
        IDLE => State::Idle,
        READY => State::Ready,
        _ => State::Busy,
    }
}

fn count_of(word: u64) -> u64 {
    word >> COUNT_SHIFT
}

fn word(state: u64, count: u64) -> u64 {
    (count << COUNT_SHIFT) | state
}

/// What the caller of a transition must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Transition {
    /// The flow became ready: push it on its home core's shuffle queue (exactly once).
    Enqueue,
    /// Nothing to do: the flow was already ready (and queued), is busy (the events wait for the
    /// owner to finish), or went idle.
    None,
}

/// A transition was asked for in a state that does not allow it: a bug in the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongState {
    /// The state the flow was in.
    pub found: State,
}

/// The atomic state word of one flow.
#[derive(Debug)]
pub struct FlowState {
    word: AtomicU64,
}

impl Default for FlowState {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowState {
    /// A new idle flow.
    pub fn new() -> Self {
        Self {
            word: AtomicU64::new(IDLE),
        }
    }

    /// The current state (a snapshot: it may change right after).
    pub fn state(&self) -> State {
        state_of(self.word.load(Ordering::Acquire))
    }

    /// Events counted but not yet claimed by an owner (a snapshot).
    pub fn pending(&self) -> u64 {
        count_of(self.word.load(Ordering::Acquire))
    }

    /// Home core: `n >= 1` new events were appended to the flow's event queue.
    ///
    /// Idle -> ready returns [`Transition::Enqueue`]; in ready or busy the events are counted
    /// and wait. Release ordering publishes the events to whoever claims them.
    pub fn notify(&self, n: u64) -> Transition {
        debug_assert!(n > 0, "notify with no events");
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let (next, result) = match cur & STATE_MASK {
                IDLE => (word(READY, count_of(cur) + n), Transition::Enqueue),
                s => (word(s, count_of(cur) + n), Transition::None),
            };
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return result,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The core that popped the flow from a shuffle queue: ready -> busy.
    ///
    /// Returns how many events the caller now owns (take them from the front of the flow's event
    /// queue). Fails if the flow was not ready, which means it was popped twice: a bug.
    pub fn begin(&self) -> Result<u64, WrongState> {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & STATE_MASK != READY {
                return Err(WrongState {
                    found: state_of(cur),
                });
            }
            match self.word.compare_exchange_weak(
                cur,
                word(BUSY, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(count_of(cur)),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Home core, once the owner's events ran and all their calls executed: busy -> idle, or
    /// busy -> ready ([`Transition::Enqueue`]) if events arrived meanwhile.
    pub fn finish(&self) -> Result<Transition, WrongState> {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & STATE_MASK != BUSY {
                return Err(WrongState {
                    found: state_of(cur),
                });
            }
            let (next, result) = if count_of(cur) > 0 {
                (word(READY, count_of(cur)), Transition::Enqueue)
            } else {
                (word(IDLE, 0), Transition::None)
            };
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(result),
                Err(actual) => cur = actual,
            }
        }
    }

    /// A thief whose events made no calls: busy -> idle if nothing arrived meanwhile.
    ///
    /// Returns `true` if the flow is now idle. `false` means events are pending: the thief must
    /// not make the flow ready itself (only the home core pushes on its shuffle queue), so it
    /// hands the release to the home core through the remote queue, which calls
    /// [`FlowState::finish`].
    pub fn try_release(&self) -> bool {
        self.word
            .compare_exchange(
                word(BUSY, 0),
                word(IDLE, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }
}
