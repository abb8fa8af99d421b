//! The switch's state that outlives a packet: table entries, register and counter arrays,
//! multicast groups, clone sessions, the RNG. The control plane writes it (`control`), the
//! data plane reads and updates it (`exec`).
//!
//! Table lookup: an all-exact table is a hash map. Otherwise entries are scanned: with an
//! lpm key the longest prefix wins; with ternary, range or optional keys the highest
//! `priority` wins (P4Runtime's rule: a larger number is a higher priority); ties go to
//! the entry installed first.

use crate::error::ControlError;
use crate::externs::Rng;
use crate::ir::{ActionId, MatchKind, Program, Table, mask};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher for exact-match keys (SipHash's DoS resistance buys nothing for
/// entries the control plane wrote, and costs a third of a lookup).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type KeyMap = HashMap<Vec<u128>, usize, BuildHasherDefault<KeyHasher>>;

/// How one key field of an entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    Exact(u128),
    /// value, mask
    Ternary(u128, u128),
    /// value, prefix length
    Lpm(u128, u16),
    /// low, high (inclusive)
    Range(u128, u128),
    /// Matches anything (ternary mask 0, lpm /0, full range, optional unset).
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub keys: Vec<Match>,
    pub action: ActionId,
    pub args: Vec<u128>,
    pub priority: i32,
}

#[derive(Clone, Debug, Default)]
pub struct TableState {
    pub entries: Vec<Entry>,
    exact: Option<KeyMap>,
    pub default_action: ActionId,
    pub default_args: Vec<u128>,
}

impl TableState {
    fn new(t: &Table) -> TableState {
        let all_exact = t.keys.iter().all(|k| k.kind == MatchKind::Exact);
        TableState {
            entries: vec![],
            exact: (all_exact && !t.keys.is_empty()).then(KeyMap::default),
            default_action: t.default_action,
            default_args: t.default_args.clone(),
        }
    }

    #[inline]
    pub fn lookup(&self, key: &[u128], t: &Table) -> Option<&Entry> {
        if let Some(m) = &self.exact {
            return m.get(key).map(|&i| &self.entries[i]);
        }
        let mut best: Option<(&Entry, (u16, i32))> = None;
        for e in &self.entries {
            let mut rank = (0u16, e.priority);
            let ok = e
                .keys
                .iter()
                .zip(key)
                .zip(&t.keys)
                .all(|((m, &v), k)| match *m {
                    Match::Exact(x) => v == x,
                    Match::Ternary(x, mk) => v & mk == x & mk,
                    Match::Lpm(x, len) => {
                        rank.0 = len;
                        let mk = mask(k.width) ^ mask(k.width - len.min(k.width));
                        v & mk == x & mk
                    }
                    Match::Range(lo, hi) => (lo..=hi).contains(&v),
                    Match::Any => true,
                });
            if ok && best.is_none_or(|(_, r)| rank > r) {
                best = Some((e, rank));
            }
        }
        best.map(|(e, _)| e)
    }
}

/// Per-switch state.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub tables: Vec<TableState>,
    pub registers: Vec<Vec<u128>>,
    /// (packets, bytes) per index.
    pub counters: Vec<Vec<(u64, u64)>>,
    /// Multicast group -> (egress port, replication id) replicas.
    pub mcast: HashMap<u16, Vec<(u16, u16)>>,
    /// Clone session -> egress port.
    pub clone_sessions: HashMap<u32, u16>,
    pub rng: Rng,
}

impl Runtime {
    pub fn new(p: &Program, seed: u64) -> Runtime {
        Runtime {
            tables: p.tables.iter().map(TableState::new).collect(),
            registers: p.registers.iter().map(|r| vec![0; r.size]).collect(),
            counters: p.counters.iter().map(|c| vec![(0, 0); c.size]).collect(),
            mcast: HashMap::new(),
            clone_sessions: HashMap::new(),
            rng: Rng::new(seed),
        }
    }

    /// Installs an entry; checks kinds, widths and the action against the table.
    pub fn insert(&mut self, p: &Program, table: usize, e: Entry) -> Result<(), ControlError> {
        let t = &p.tables[table];
        let bad = |msg: String| ControlError::BadEntry {
            table: t.name.clone(),
            msg,
        };
        if e.keys.len() != t.keys.len() {
            return Err(bad(format!(
                "{} key fields, table has {}",
                e.keys.len(),
                t.keys.len()
            )));
        }
        for (m, k) in e.keys.iter().zip(&t.keys) {
            let fits = |v: u128| v <= mask(k.width);
            let ok = match (*m, k.kind) {
                (Match::Exact(v), MatchKind::Exact | MatchKind::Optional) => fits(v),
                (Match::Ternary(v, mk), MatchKind::Ternary) => fits(v) && fits(mk),
                (Match::Lpm(v, l), MatchKind::Lpm) => fits(v) && l <= k.width,
                (Match::Range(lo, hi), MatchKind::Range) => fits(lo) && fits(hi) && lo <= hi,
                (
                    Match::Any,
                    MatchKind::Ternary | MatchKind::Lpm | MatchKind::Range | MatchKind::Optional,
                ) => true,
                _ => false,
            };
            if !ok {
                return Err(bad(format!(
                    "key {}: {m:?} does not fit a {:?} bit<{}> key",
                    k.name, k.kind, k.width
                )));
            }
        }
        if !t.actions.contains(&e.action) {
            return Err(ControlError::NoAction(
                p.actions[e.action].name.clone(),
                t.name.clone(),
            ));
        }
        let params = &p.actions[e.action].params;
        if params.len() != e.args.len()
            || params
                .iter()
                .zip(&e.args)
                .any(|((_, _, w), &v)| v > mask(*w))
        {
            return Err(bad(format!(
                "arguments {:?} do not fit action {}",
                e.args, p.actions[e.action].name
            )));
        }
        let st = &mut self.tables[table];
        if st.entries.len() >= t.size {
            return Err(ControlError::TableFull(t.name.clone()));
        }
        if let Some(m) = &mut st.exact {
            let key: Vec<u128> = e
                .keys
                .iter()
                .map(|m| if let Match::Exact(v) = m { *v } else { 0 })
                .collect();
            if let Some(&i) = m.get(&key) {
                st.entries[i] = e;
                return Ok(());
            }
            m.insert(key, st.entries.len());
        }
        st.entries.push(e);
        Ok(())
    }

    /// Sets a table's default action.
    pub fn set_default(
        &mut self,
        p: &Program,
        table: usize,
        action: ActionId,
        args: Vec<u128>,
    ) -> Result<(), ControlError> {
        let t = &p.tables[table];
        if t.const_default {
            return Err(ControlError::BadEntry {
                table: t.name.clone(),
                msg: "default action is const".into(),
            });
        }
        if !t.actions.contains(&action) {
            return Err(ControlError::NoAction(
                p.actions[action].name.clone(),
                t.name.clone(),
            ));
        }
        if p.actions[action].params.len() != args.len() {
            return Err(ControlError::BadEntry {
                table: t.name.clone(),
                msg: "wrong number of default arguments".into(),
            });
        }
        self.tables[table].default_action = action;
        self.tables[table].default_args = args;
        Ok(())
    }
}
