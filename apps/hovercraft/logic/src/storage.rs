//! Persistent state: what a replica must not forget across a crash (current term, vote,
//! log, snapshot), as a list of [`Write`]s the replica hands out with every step, and a small
//! [`Storage`] trait to make them durable and read them back at restart.
//!
//! # The fsync rule
//!
//! [`crate::Outputs::writes`] must be durable (applied to storage and synced: `fsync` on a
//! disk) **before any message of the same [`crate::Outputs`] is sent** and before the next
//! step's messages. A vote granted, an AppendEntries acknowledged or a term adopted that the
//! replica could forget in a crash would let it vote twice in a term or let a leader count a
//! replica that lost the entry. Committed entries ([`crate::Outputs::applied`]) may be
//! executed and answered before the sync: they are durable on a majority already.
//! If the replica crashes before the sync, the unsynced writes may be lost: restart from
//! whatever [`Storage::load`] returns (the matching messages were never sent).

use alloc::vec::Vec;

use crate::log::Log;
use crate::types::{Entry, Index, NodeId, Snapshot, Term};

/// One change to persistent state, applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// The current term and the vote cast in it.
    HardState {
        /// Current term.
        term: Term,
        /// Vote in `term`.
        vote: Option<NodeId>,
    },
    /// Drop the entries at `from` and after, then append `entries` (`from` = last index + 1
    /// for a plain append, empty `entries` for a plain truncation).
    Entries {
        /// First index replaced.
        from: Index,
        /// The new entries from `from` on.
        entries: Vec<Entry>,
    },
    /// A new snapshot: entries it covers are dropped; the rest stay only if the log holds
    /// its last entry with its term ([`Log::install`]).
    Snapshot(Snapshot),
}

/// Everything a replica restarts from.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// Current term.
    pub term: Term,
    /// Vote in `term`.
    pub vote: Option<NodeId>,
    /// Snapshot and the entries after it.
    pub log: Log,
}

impl Durable {
    /// Applies one write.
    pub fn apply(&mut self, w: &Write) {
        match w {
            Write::HardState { term, vote } => {
                self.term = *term;
                self.vote = *vote;
            }
            Write::Entries { from, entries } => self.log.splice(*from, entries),
            Write::Snapshot(s) => self.log.install(s.clone()),
        }
    }
}

/// Where persistent state lives.
pub trait Storage {
    /// Queues a write (it need not be durable yet).
    fn write(&mut self, w: Write);
    /// Makes every queued write durable.
    fn sync(&mut self);
    /// The durable state (what a restart sees).
    fn load(&self) -> Durable;
}

/// In-memory storage for tests and the simulation: writes queue until [`Storage::sync`];
/// [`MemStorage::crash`] loses the queued ones, as a power cut would.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    durable: Durable,
    queued: Vec<Write>,
}

impl MemStorage {
    /// Empty storage (a fresh replica).
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Storage holding `durable` (a replica resumed from elsewhere).
    pub fn from_durable(durable: Durable) -> MemStorage {
        MemStorage {
            durable,
            queued: Vec::new(),
        }
    }

    /// Forgets what was written but not synced.
    pub fn crash(&mut self) {
        self.queued.clear();
    }

    /// Writes queued and not synced.
    pub fn unsynced(&self) -> usize {
        self.queued.len()
    }

    /// The durable state, by reference.
    pub fn durable(&self) -> &Durable {
        &self.durable
    }
}

impl Storage for MemStorage {
    fn write(&mut self, w: Write) {
        self.queued.push(w);
    }

    fn sync(&mut self) {
        for w in self.queued.drain(..) {
            self.durable.apply(&w);
        }
    }

    fn load(&self) -> Durable {
        self.durable.clone()
    }
}
