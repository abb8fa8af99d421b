//! The per-core remote-syscall queue: many producers (thieves), one consumer (the home core).
//!
//! A thief that ran a stolen flow's events cannot run the flow's network calls itself: the TCP
//! state of a connection is touched only by its home core. It sends them back here as one
//! [`RemoteBatch`], the flow's calls in the order the application made them followed by the
//! release of the flow. The flow stays busy until the home core has run the batch and called
//! [`crate::FlowState::finish`], so batches of one flow can never overtake each other: calls
//! stay in order per flow by construction.
//!
//! The queue is two vectors behind a spinlock: producers append, the home core swaps the whole
//! vector out in O(1) and runs it outside the lock (the thesis uses a spinlock too; the critical
//! sections are a push or a swap). Vectors keep their allocation across swaps, so steady state
//! does not allocate; the queue is unbounded because a thief cannot drop or delay calls, and its
//! length is bounded by the flows that are busy on thieves times their batch size.

use crate::flow_id::FlowId;
use crate::sync::{AtomicUsize, Mutex, Ordering};
use alloc::vec::Vec;

/// The calls of one stolen flow, to run on its home core, then release the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBatch<C> {
    /// The flow; its home core is the one whose queue this is.
    pub flow: FlowId,
    /// The calls, in the order the application made them (may be empty: a pure release).
    pub calls: C,
}

/// Multi-producer, single-consumer queue of [`RemoteBatch`]es.
#[derive(Debug)]
pub struct RemoteQueue<C> {
    pending: Mutex<Vec<RemoteBatch<C>>>,
    /// Number of batches queued: the lock-free read the idle loop and IPI logic poll.
    queued: AtomicUsize,
}

impl<C> Default for RemoteQueue<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> RemoteQueue<C> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            queued: AtomicUsize::new(0),
        }
    }

    /// Thief: appends a batch. Returns `true` if the queue was empty before, i.e. this push is
    /// the one that may need to wake the home core (see [`crate::ipi`]).
    pub fn push(&self, batch: RemoteBatch<C>) -> bool {
        let mut pending = self.pending.lock();
        pending.push(batch);
        let before = self.queued.fetch_add(1, Ordering::Release);
        before == 0
    }

    /// Home core: takes every queued batch, oldest first, into `out` (which is cleared first and
    /// whose allocation is swapped in, so pass back the same vector every time).
    pub fn drain_into(&self, out: &mut Vec<RemoteBatch<C>>) {
        out.clear();
        if self.is_empty() {
            return;
        }
        let mut pending = self.pending.lock();
        core::mem::swap(&mut *pending, out);
        self.queued.store(0, Ordering::Release);
    }

    /// Whether nothing is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Number of batches queued (a snapshot).
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}
