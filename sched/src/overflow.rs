//! The home core's private overflow list for ready flows its shuffle queue refused.
//!
//! [`crate::ShuffleQueue::push`] can report `Full` (see its docs). The home core then keeps the
//! flow here, in FIFO order behind anything already waiting, and retries at its next loop
//! iteration ([`Overflow::flush`]). Flows here are still `ready` and still owed exactly one run;
//! they are just invisible to thieves until flushed. Sized once for every flow of the core, so
//! it never allocates on the hot path.

use crate::shuffle::ShuffleQueue;
use alloc::collections::VecDeque;

/// Home-core-local FIFO in front of a [`ShuffleQueue`].
#[derive(Debug, Default)]
pub struct Overflow {
    waiting: VecDeque<u32>,
}

impl Overflow {
    /// An overflow list that holds `capacity` flows without allocating.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            waiting: VecDeque::with_capacity(capacity),
        }
    }

    /// Pushes `value` on `queue`, behind whatever is already waiting here; keeps it here if the
    /// queue is full. Returns `true` if it reached the queue.
    pub fn push(&mut self, queue: &ShuffleQueue, value: u32) -> bool {
        if self.waiting.is_empty() && queue.push(value).is_ok() {
            return true;
        }
        self.waiting.push_back(value);
        self.flush(queue);
        self.waiting.is_empty()
    }

    /// Moves waiting flows to `queue` in order until it is full. Returns how many moved.
    pub fn flush(&mut self, queue: &ShuffleQueue) -> usize {
        let mut moved = 0;
        while let Some(&front) = self.waiting.front() {
            if queue.push(front).is_err() {
                break;
            }
            self.waiting.pop_front();
            moved += 1;
        }
        moved
    }

    /// Flows still waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Home core only: takes the oldest waiting flow to run it locally (used when the shuffle
    /// queue is empty but flows wait here, which can only happen briefly).
    pub fn pop(&mut self) -> Option<u32> {
        self.waiting.pop_front()
    }
}
