//! A linearizability checker for per-key read/write registers (Wing & Gong's search with
//! Lowe's memoization of (linearized set, state), as Porcupine does), one key at a time
//! (registers compose: a history is linearizable iff each key's is).
//!
//! An operation that never returned has `ret == u64::MAX`: a write may then take effect at
//! any point after its call or never (linearizing it last is the same as never); a read that
//! never returned observed nothing and is left out by the caller.

use std::collections::HashSet;

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Wrote this value.
    Write(u64),
    /// Read this value.
    Read(u64),
}

/// One operation on one register, with the times its call and return were seen.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// Client (for messages only).
    pub client: usize,
    /// Invocation time.
    pub call: u64,
    /// Response time, `u64::MAX` if none.
    pub ret: u64,
    /// What it did.
    pub kind: Kind,
}

/// Checks one register's history from the initial value `init`.
pub fn check(ops: &[Op], init: u64) -> Result<(), String> {
    let mut ops: Vec<Op> = ops.to_vec();
    ops.sort_by_key(|o| (o.call, o.ret));
    let n = ops.len();
    let mut s = Search {
        ops: &ops,
        done: vec![0u64; n.div_ceil(64)],
        seen: HashSet::new(),
        must: ops.iter().filter(|o| o.ret != u64::MAX).count(),
        budget: 5_000_000,
    };
    match s.dfs(init, 0) {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "not linearizable (register starting at {init}): {}",
            describe(&ops)
        )),
        None => Err(format!("search budget exhausted: {}", describe(&ops))),
    }
}

fn describe(ops: &[Op]) -> String {
    ops.iter()
        .map(|o| {
            let ret = if o.ret == u64::MAX {
                "-".to_string()
            } else {
                o.ret.to_string()
            };
            format!("c{} {:?} [{}, {}]", o.client, o.kind, o.call, ret)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

struct Search<'a> {
    ops: &'a [Op],
    done: Vec<u64>,
    seen: HashSet<(Vec<u64>, u64)>,
    /// Operations that returned: all must be linearized.
    must: usize,
    budget: u64,
}

impl Search<'_> {
    fn is_done(&self, i: usize) -> bool {
        self.done[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.done[i / 64] ^= 1 << (i % 64);
    }

    /// `Some(true)`: linearizable from here; `None`: out of budget.
    fn dfs(&mut self, state: u64, returned_done: usize) -> Option<bool> {
        if returned_done == self.must {
            return Some(true);
        }
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        if !self.seen.insert((self.done.clone(), state)) {
            return Some(false);
        }
        // An operation can go next only if it was called before every pending one returned.
        let min_ret = (0..self.ops.len())
            .filter(|&i| !self.is_done(i))
            .map(|i| self.ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let o = self.ops[i];
            if o.call >= min_ret {
                break; // sorted by call
            }
            if self.is_done(i) {
                continue;
            }
            let next = match o.kind {
                Kind::Write(v) => v,
                Kind::Read(v) if v == state => state,
                Kind::Read(_) => continue,
            };
            self.flip(i);
            let r = self.dfs(next, returned_done + usize::from(o.ret != u64::MAX));
            self.flip(i);
            match r {
                Some(false) => {}
                other => return other,
            }
        }
        Some(false)
    }
}
