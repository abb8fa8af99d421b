//! The per-core shuffle queue: a bounded FIFO of ready flows with one producer (the home core)
//! and many consumers (the home core and every thief).
//!
//! The thesis protects it with a per-core spinlock and thieves `trylock`; this is lock-free
//! instead, so a thief never waits behind a home core that was preempted (a vCPU can be
//! descheduled by the host at any instruction). It is D. Vyukov's bounded queue with one
//! sequence number per cell, simplified for a single producer: the producer never contends, and
//! consumers claim a position with one compare-and-swap on `head`. Cells hold a `u32` (a
//! [`crate::FlowId`]) in an atomic, so no `unsafe` is needed.
//!
//! **When full**, [`ShuffleQueue::push`] returns [`Full`] with the value and changes nothing. A
//! consumer that claimed a cell but has not released it yet (a few instructions) also makes its
//! cell look full, so even a queue sized for every flow of the core can report `Full` briefly;
//! the home core then keeps the flow on its private overflow list ([`crate::Overflow`]) and
//! pushes it at the next loop iteration. Nothing is ever dropped.

use crate::sync::{AtomicU32, AtomicUsize, Ordering};
use alloc::boxed::Box;
use alloc::vec::Vec;

/// The queue was full; the value is handed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full(pub u32);

#[derive(Debug)]
struct Cell {
    /// `pos` when free for the push at position `pos`; `pos + 1` once that push is visible;
    /// `pos + capacity` once the consumer of `pos` released it.
    seq: AtomicUsize,
    value: AtomicU32,
}

/// Bounded single-producer, multi-consumer FIFO of `u32`.
#[derive(Debug)]
pub struct ShuffleQueue {
    cells: Box<[Cell]>,
    mask: usize,
    /// Next position to pop; consumers advance it with a CAS.
    head: AtomicUsize,
    /// Next position to push; written only by the producer, read by anyone for [`Self::len`].
    tail: AtomicUsize,
}

impl ShuffleQueue {
    /// A queue holding at least `capacity` values (rounded up to a power of two, at least 2).
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(2).next_power_of_two();
        let cells: Vec<Cell> = (0..cap)
            .map(|i| Cell {
                seq: AtomicUsize::new(i),
                value: AtomicU32::new(0),
            })
            .collect();
        Self {
            cells: cells.into_boxed_slice(),
            mask: cap - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// How many values fit.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Producer (home core) only: appends `value`, or returns it in [`Full`].
    pub fn push(&self, value: u32) -> Result<(), Full> {
        let pos = self.tail.load(Ordering::Relaxed);
        let cell = &self.cells[pos & self.mask];
        // Acquire: the consumer's read of the old value happened before we overwrite it.
        if cell.seq.load(Ordering::Acquire) != pos {
            return Err(Full(value));
        }
        cell.value.store(value, Ordering::Relaxed);
        // Release: the value is visible to whoever acquires `seq == pos + 1`.
        cell.seq.store(pos.wrapping_add(1), Ordering::Release);
        self.tail.store(pos.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Any core: removes and returns the oldest value, or `None` if empty.
    pub fn pop(&self) -> Option<u32> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let cell = &self.cells[pos & self.mask];
            let seq = cell.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos.wrapping_add(1)) as isize;
            if diff == 0 {
                match self.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let value = cell.value.load(Ordering::Relaxed);
                        cell.seq
                            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
                        return Some(value);
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                // The cell has not been pushed for this lap: empty.
                return None;
            } else {
                // Another consumer took `pos` already; catch up.
                pos = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Approximate number of queued values (exact when nobody is pushing or popping).
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let diff = tail.wrapping_sub(head);
        if (diff as isize) < 0 {
            0
        } else {
            diff.min(self.capacity())
        }
    }

    /// Whether the queue looks empty: the cheap read an idle thief polls.
    pub fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head) as isize <= 0
    }
}
