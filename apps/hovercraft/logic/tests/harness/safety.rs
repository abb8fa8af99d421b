//! Raft's safety properties (Raft paper, figure 3), checked after every step of every node:
//! election safety, leader append-only, log matching, leader completeness, state-machine
//! safety.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use ferrix_raft::{Applied, Entry, Index, Node, NodeId, Op, Role, Term, Write};

pub fn digest(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    e.term.hash(&mut h);
    match &e.op {
        Op::Noop => 0u8.hash(&mut h),
        Op::Request { req, replier } => {
            (req.id, req.read_only, &req.body, *replier).hash(&mut h);
        }
    }
    h.finish()
}

fn digest_op(term: Term, op: &Op) -> u64 {
    digest(&Entry {
        term,
        op: op.clone(),
    })
}

#[derive(Default)]
pub struct Safety {
    /// Term -> its leader.
    leaders: HashMap<Term, NodeId>,
    /// (index, term) -> (entry digest, term of the previous entry): two logs sharing an
    /// (index, term) must agree on the entry and, inductively, on everything before it.
    entries: HashMap<(Index, Term), (u64, Term)>,
    /// Index -> digest of the entry applied there (by anyone).
    applied: HashMap<Index, u64>,
    /// Index -> term of every entry known committed.
    committed: BTreeMap<Index, Term>,
    /// Per node: the term it was last seen leading.
    led: HashMap<NodeId, Term>,
}

impl Safety {
    /// Checks one node after one step; `last_before` is its last index before the step.
    pub fn after_step(
        &mut self,
        node: &Node,
        last_before: Index,
        writes: &[Write],
        applied: &[Applied],
    ) -> Result<(), String> {
        let id = node.id();
        let leader = node.role() == Role::Leader;
        if leader {
            let l = *self.leaders.entry(node.term()).or_insert(id);
            if l != id {
                return Err(format!(
                    "election safety: {l} and {id} both lead term {}",
                    node.term()
                ));
            }
        }
        for w in writes {
            if let Write::Entries { from, entries } = w {
                if leader && !entries.is_empty() && *from <= last_before {
                    return Err(format!(
                        "leader append-only: leader {id} rewrote from {from} (last {last_before})"
                    ));
                }
                let mut prev = node.log().term_at(from - 1).ok_or_else(|| {
                    format!("node {id} appended at {from} without the previous term")
                })?;
                for (k, e) in entries.iter().enumerate() {
                    let index = from + k as Index;
                    let d = (digest(e), prev);
                    let had = *self.entries.entry((index, e.term)).or_insert(d);
                    if had != d {
                        return Err(format!(
                            "log matching: node {id} holds another entry at ({index}, {})",
                            e.term
                        ));
                    }
                    prev = e.term;
                }
            }
        }
        for a in applied {
            let d = digest_op(a.term, &a.op);
            let had = *self.applied.entry(a.index).or_insert(d);
            if had != d {
                return Err(format!(
                    "state machine safety: node {id} applied another entry at {}",
                    a.index
                ));
            }
            self.committed.insert(a.index, a.term);
        }
        if node.commit() > node.log().last_index() {
            return Err(format!("node {id} commits past its log"));
        }
        if leader && self.led.get(&id) != Some(&node.term()) {
            self.led.insert(id, node.term());
            self.leader_completeness(node)?;
        }
        Ok(())
    }

    /// A new leader holds every entry committed so far.
    fn leader_completeness(&self, node: &Node) -> Result<(), String> {
        let log = node.log();
        let base = log.snapshot().index;
        for (&i, &t) in self.committed.range(base + 1..) {
            if log.term_at(i) != Some(t) {
                return Err(format!(
                    "leader completeness: leader {} of term {} lacks committed ({i}, {t})",
                    node.id(),
                    node.term()
                ));
            }
        }
        Ok(())
    }

    /// Full check of one log against everything seen (after a restart, at the end).
    pub fn whole_log(&self, node: &Node) -> Result<(), String> {
        let log = node.log();
        let mut prev = log.snapshot().term;
        for (k, e) in log.entries().enumerate() {
            let index = log.first_index() + k as Index;
            if let Some(&d) = self.entries.get(&(index, e.term))
                && d != (digest(e), prev)
            {
                return Err(format!(
                    "log matching: node {} at ({index}, {})",
                    node.id(),
                    e.term
                ));
            }
            prev = e.term;
        }
        Ok(())
    }

    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }
}
