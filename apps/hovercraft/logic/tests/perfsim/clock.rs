//! Virtual time (picoseconds, so that per-byte costs stay integers) and the event queue:
//! events at the same time run in the order they were scheduled, so a run replays exactly.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual time in picoseconds.
pub type Time = u64;

/// One nanosecond.
pub const NS: Time = 1_000;
/// One microsecond.
pub const US: Time = 1_000 * NS;
/// One millisecond.
pub const MS: Time = 1_000 * US;

/// Seconds, for rates.
pub fn secs(t: Time) -> f64 {
    t as f64 / 1e12
}

struct Slot<E> {
    at: Time,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Slot<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<E> Eq for Slot<E> {}
impl<E> PartialOrd for Slot<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Slot<E> {
    // Reversed: the heap pops the earliest (then the first scheduled).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The pending events, earliest first.
pub struct Events<E> {
    heap: BinaryHeap<Slot<E>>,
    seq: u64,
    now: Time,
}

impl<E> Events<E> {
    pub fn new() -> Events<E> {
        Events {
            heap: BinaryHeap::new(),
            seq: 0,
            now: 0,
        }
    }

    /// The time of the event last popped.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Schedules `ev` at `at` (never before now).
    pub fn at(&mut self, at: Time, ev: E) {
        let at = at.max(self.now);
        self.seq += 1;
        self.heap.push(Slot {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// The next event, advancing the clock to it.
    pub fn pop(&mut self) -> Option<E> {
        let s = self.heap.pop()?;
        self.now = s.at;
        Some(s.ev)
    }
}
