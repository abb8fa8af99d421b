//! The replicated log after the latest snapshot: entries `snapshot.index + 1 ..= last_index`.
//! The same type is the replica's volatile view and [`crate::storage::MemStorage`]'s durable
//! copy, so both apply a [`crate::storage::Write`] by the same rules.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::types::{Entry, Index, Snapshot, Term};

/// Entries after a snapshot.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// The latest snapshot (index 0, term 0, no data when there is none).
    snapshot: Snapshot,
    entries: VecDeque<Entry>,
}

impl Log {
    /// A log resumed from durable state.
    pub fn from_parts(snapshot: Snapshot, entries: Vec<Entry>) -> Log {
        Log {
            snapshot,
            entries: entries.into(),
        }
    }

    /// The latest snapshot (index 0 if none).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The index the snapshot covers (0 if none).
    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// The index of the last entry (the snapshot's if no entry follows it).
    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    /// The term at `index`: known for the snapshot's index and every entry after it.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held (not compacted, not past the end).
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize)
    }

    /// Entries `from ..= to` (clamped to what is held).
    pub fn range(&self, from: Index, to: Index) -> impl Iterator<Item = &Entry> {
        let lo = from.max(self.first_index());
        let hi = to.min(self.last_index());
        let skip = lo.saturating_sub(self.first_index()) as usize;
        let take = if hi >= lo { (hi - lo + 1) as usize } else { 0 };
        self.entries.iter().skip(skip).take(take)
    }

    /// Drops every entry at `from` and after, then appends `entries`.
    /// `from` must be in `first_index ..= last_index + 1`.
    pub fn splice(&mut self, from: Index, entries: &[Entry]) {
        debug_assert!(from >= self.first_index() && from <= self.last_index() + 1);
        let keep = from.saturating_sub(self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend(entries.iter().cloned());
    }

    /// Takes `snap` as the new base: entries up to its index go; the entries after it stay
    /// only if this log holds an entry at `snap.index` with `snap.term` (Raft figure 13, step
    /// 6-7), otherwise the whole log is discarded. A snapshot older than the current one is
    /// ignored.
    pub fn install(&mut self, snap: Snapshot) {
        if snap.index <= self.snapshot.index {
            return;
        }
        if self.term_at(snap.index) == Some(snap.term) {
            let drop = (snap.index - self.snapshot.index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = snap;
    }

    /// The entries after the snapshot, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Is a log ending at (`last_index`, `last_term`) at least as up to date as this one
    /// (Raft section 5.4.1)?
    pub fn up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Op;

    fn e(term: Term) -> Entry {
        Entry { term, op: Op::Noop }
    }

    #[test]
    fn splice_and_install() {
        let mut log = Log::default();
        log.splice(1, &[e(1), e(1), e(2)]);
        assert_eq!((log.last_index(), log.last_term()), (3, 2));
        log.splice(3, &[e(3), e(3)]);
        assert_eq!(log.term_at(3), Some(3));
        assert_eq!(log.last_index(), 4);
        let s = |index, term| Snapshot {
            index,
            term,
            data: Vec::new(),
        };
        // Matching entry: the suffix stays.
        log.install(s(2, 1));
        assert_eq!((log.first_index(), log.last_index()), (3, 4));
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.entry(2), None);
        assert_eq!(log.range(1, 10).count(), 2);
        // Older snapshot: ignored.
        log.install(s(1, 1));
        assert_eq!(log.first_index(), 3);
        // Conflicting: everything goes.
        log.install(s(4, 9));
        assert_eq!((log.last_index(), log.last_term()), (4, 9));
        assert_eq!(log.entries().count(), 0);
        assert!(log.up_to_date(4, 9) && !log.up_to_date(9, 8));
    }
}
