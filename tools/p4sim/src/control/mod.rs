//! Control planes: one description of the switch's tables, registers, multicast groups and
//! clone sessions (`ControlFile`) that p4sim installs and that prints as P4Runtime
//! `WriteRequest` updates (protobuf text format) for a hardware target.
//!
//! The control file is JSON:
//!
//! ```json
//! { "table_entries": [ { "table": "MyIngress.t", "matches": ["10.0.0.1", "0x1f40"],
//!                        "action": "MyIngress.a", "params": { "port": "3" }, "priority": 0 } ],
//!   "default_actions": [ { "table": "MyIngress.t", "action": "MyIngress.drop", "params": {} } ],
//!   "registers": [ { "register": "MyIngress.bound", "index": 0, "value": "2" } ],
//!   "multicast_groups": [ { "group": 1, "replicas": [ { "port": 1, "rid": 0 } ] } ],
//!   "clone_sessions": [ { "session": 5, "port": 3 } ] }
//! ```
//!
//! Every field may be omitted. `matches` lists one string per key field in the table's key
//! order: `V` (exact or optional), `V&&&M` (ternary), `V/LEN` (lpm), `LO..HI` (range), `_`
//! (don't care: ternary mask 0, lpm /0, full range, optional unset). A value `V` is decimal,
//! `0x` hex, `0b` binary, a dotted IPv4 address or a colon-separated MAC address. Names are
//! qualified (`Control.name`) or, when unique, bare. `priority`: higher wins (P4Runtime).

pub mod aggregator;
pub mod jbsq;
pub mod slog;
pub mod slog_run;
pub mod sven;

use crate::error::ControlError;
use crate::ir::{MatchKind, Program, mask};
use crate::runtime::{Entry, Match};
use crate::switch::Switch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlFile {
    pub table_entries: Vec<TableEntry>,
    pub default_actions: Vec<DefaultAction>,
    pub registers: Vec<RegisterValue>,
    pub multicast_groups: Vec<MulticastGroup>,
    pub clone_sessions: Vec<CloneSession>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub table: String,
    pub matches: Vec<String>,
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub priority: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultAction {
    pub table: String,
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterValue {
    pub register: String,
    pub index: usize,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MulticastGroup {
    pub group: u16,
    pub replicas: Vec<Replica>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    pub port: u16,
    #[serde(default)]
    pub rid: u16,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneSession {
    pub session: u32,
    pub port: u16,
}

/// Parses a value: decimal, 0x / 0b, dotted IPv4, colon MAC.
pub fn parse_value(s: &str) -> Option<u128> {
    let s = s.trim();
    if s.contains('.') && !s.contains("..") {
        let o: Vec<u8> = s
            .split('.')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        return (o.len() == 4).then(|| o.iter().fold(0u128, |v, &b| (v << 8) | u128::from(b)));
    }
    if s.contains(':') {
        let o: Vec<u8> = s
            .split(':')
            .map(|x| u8::from_str_radix(x, 16).ok())
            .collect::<Option<_>>()?;
        return (o.len() == 6).then(|| o.iter().fold(0u128, |v, &b| (v << 8) | u128::from(b)));
    }
    let t: String = s.chars().filter(|&c| c != '_').collect();
    match t.get(..2) {
        Some("0x" | "0X") => u128::from_str_radix(&t[2..], 16).ok(),
        Some("0b" | "0B") => u128::from_str_radix(&t[2..], 2).ok(),
        _ => t.parse().ok(),
    }
}

fn parse_match(s: &str, kind: MatchKind, width: u16) -> Option<Match> {
    let s = s.trim();
    if s == "_" {
        return Some(Match::Any);
    }
    Some(match kind {
        MatchKind::Exact | MatchKind::Optional => Match::Exact(parse_value(s)?),
        MatchKind::Ternary => match s.split_once("&&&") {
            Some((v, m)) => {
                let m = parse_value(m)?;
                Match::Ternary(parse_value(v)? & m, m)
            }
            None => Match::Ternary(parse_value(s)?, mask(width)),
        },
        MatchKind::Lpm => match s.rsplit_once('/') {
            Some((v, l)) => {
                let l: u16 = l.trim().parse().ok()?;
                if l > width {
                    return None;
                }
                let m = mask(width) ^ mask(width - l);
                Match::Lpm(parse_value(v)? & m, l)
            }
            None => Match::Lpm(parse_value(s)?, width),
        },
        MatchKind::Range => match s.split_once("..") {
            Some((lo, hi)) => Match::Range(parse_value(lo)?, parse_value(hi)?),
            None => {
                let v = parse_value(s)?;
                Match::Range(v, v)
            }
        },
    })
}

/// Resolved action arguments in parameter order.
fn args(
    p: &Program,
    action: usize,
    params: &BTreeMap<String, String>,
    table: &str,
) -> Result<Vec<u128>, ControlError> {
    let a = &p.actions[action];
    if params.len() != a.params.len() {
        return Err(ControlError::BadEntry {
            table: table.into(),
            msg: format!(
                "action {} takes {} parameters, got {}",
                a.name,
                a.params.len(),
                params.len()
            ),
        });
    }
    a.params
        .iter()
        .map(|(n, _, _)| {
            params
                .get(n)
                .and_then(|v| parse_value(v))
                .ok_or_else(|| ControlError::BadEntry {
                    table: table.into(),
                    msg: format!("parameter {n} of {} missing or not a value", a.name),
                })
        })
        .collect()
}

impl TableEntry {
    /// The entry in p4sim's form (table index and entry).
    pub fn resolve(&self, p: &Program) -> Result<(usize, Entry), ControlError> {
        let t = p
            .table(&self.table)
            .ok_or_else(|| ControlError::NoTable(self.table.clone()))?;
        let tab = &p.tables[t];
        let action = p
            .action(&self.action)
            .ok_or_else(|| ControlError::NoAction(self.action.clone(), tab.name.clone()))?;
        if self.matches.len() != tab.keys.len() {
            return Err(ControlError::BadEntry {
                table: tab.name.clone(),
                msg: format!(
                    "{} matches for {} key fields",
                    self.matches.len(),
                    tab.keys.len()
                ),
            });
        }
        let keys = self
            .matches
            .iter()
            .zip(&tab.keys)
            .map(|(m, k)| {
                parse_match(m, k.kind, k.width).ok_or_else(|| ControlError::BadEntry {
                    table: tab.name.clone(),
                    msg: format!("match `{m}` for {:?} key {}", k.kind, k.name),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((
            t,
            Entry {
                keys,
                action,
                args: args(p, action, &self.params, &tab.name)?,
                priority: self.priority,
            },
        ))
    }
}

impl ControlFile {
    pub fn from_json(s: &str) -> Result<ControlFile, ControlError> {
        serde_json::from_str(s).map_err(|e| ControlError::File(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Installs everything into `sw`.
    pub fn install(&self, sw: &mut Switch) -> Result<(), ControlError> {
        for e in &self.table_entries {
            let (t, entry) = e.resolve(&sw.prog)?;
            sw.rt.insert(&sw.prog, t, entry)?;
        }
        for d in &self.default_actions {
            let t = sw
                .prog
                .table(&d.table)
                .ok_or_else(|| ControlError::NoTable(d.table.clone()))?;
            let a = sw
                .prog
                .action(&d.action)
                .ok_or_else(|| ControlError::NoAction(d.action.clone(), d.table.clone()))?;
            let args = args(&sw.prog, a, &d.params, &d.table)?;
            sw.rt.set_default(&sw.prog, t, a, args)?;
        }
        for r in &self.registers {
            let v = parse_value(&r.value)
                .ok_or_else(|| ControlError::File(format!("register value {}", r.value)))?;
            sw.register_write(&r.register, r.index, v)?;
        }
        for g in &self.multicast_groups {
            sw.rt.mcast.insert(
                g.group,
                g.replicas.iter().map(|r| (r.port, r.rid)).collect(),
            );
        }
        for c in &self.clone_sessions {
            sw.rt.clone_sessions.insert(c.session, c.port);
        }
        Ok(())
    }

    /// The same state as a P4Runtime `WriteRequest` in protobuf text format. Ids come from
    /// the program's `@id` annotations (P4Runtime prefixes: action 0x01, table 0x02,
    /// counter 0x12, register 0x16); match field and action parameter ids are positions
    /// (1-based), as p4c assigns them. Byte strings are canonical (no leading zero bytes).
    pub fn p4runtime_text(&self, p: &Program, device_id: u64) -> Result<String, ControlError> {
        let mut s = String::new();
        let _ = writeln!(s, "device_id: {device_id}");
        let _ = writeln!(s, "election_id {{ high: 0 low: 1 }}");
        for e in &self.table_entries {
            let (t, entry) = e.resolve(p)?;
            let tab = &p.tables[t];
            let mut body = String::new();
            let _ = writeln!(body, "      table_id: {}  # {}", id(0x02, tab.id), tab.name);
            for (i, (m, k)) in entry.keys.iter().zip(&tab.keys).enumerate() {
                let w = k.width;
                let f = match *m {
                    Match::Any => continue,
                    Match::Exact(v) if k.kind == MatchKind::Optional => {
                        format!("optional {{ value: {} }}", bytes(v, w))
                    }
                    Match::Exact(v) => format!("exact {{ value: {} }}", bytes(v, w)),
                    Match::Ternary(v, mk) => format!(
                        "ternary {{ value: {} mask: {} }}",
                        bytes(v, w),
                        bytes(mk, w)
                    ),
                    Match::Lpm(v, l) => format!("lpm {{ value: {} prefix_len: {l} }}", bytes(v, w)),
                    Match::Range(lo, hi) => {
                        format!("range {{ low: {} high: {} }}", bytes(lo, w), bytes(hi, w))
                    }
                };
                let _ = writeln!(
                    body,
                    "      match {{ field_id: {}  # {}\n        {f} }}",
                    i + 1,
                    k.name
                );
            }
            action_text(&mut body, p, entry.action, &entry.args);
            if tab.keys.iter().any(|k| {
                matches!(
                    k.kind,
                    MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
                )
            }) {
                let _ = writeln!(body, "      priority: {}", entry.priority.max(1));
            }
            update(
                &mut s,
                "INSERT",
                &format!("    table_entry {{\n{body}    }}\n"),
            );
        }
        for d in &self.default_actions {
            let t = p
                .table(&d.table)
                .ok_or_else(|| ControlError::NoTable(d.table.clone()))?;
            let a = p
                .action(&d.action)
                .ok_or_else(|| ControlError::NoAction(d.action.clone(), d.table.clone()))?;
            let mut body = String::new();
            let _ = writeln!(
                body,
                "      table_id: {}  # {}",
                id(0x02, p.tables[t].id),
                p.tables[t].name
            );
            action_text(&mut body, p, a, &args(p, a, &d.params, &d.table)?);
            let _ = writeln!(body, "      is_default_action: true");
            update(
                &mut s,
                "MODIFY",
                &format!("    table_entry {{\n{body}    }}\n"),
            );
        }
        for r in &self.registers {
            let ri = p
                .register(&r.register)
                .ok_or_else(|| ControlError::NoRegister(r.register.clone()))?;
            let reg = &p.registers[ri];
            let v = parse_value(&r.value)
                .ok_or_else(|| ControlError::File(format!("register value {}", r.value)))?;
            update(
                &mut s,
                "MODIFY",
                &format!(
                    "    register_entry {{\n      register_id: {}  # {}\n      index {{ index: {} }}\n      data {{ bitstring: {} }}\n    }}\n",
                    id(0x16, reg.id),
                    reg.name,
                    r.index,
                    bytes(v, reg.width)
                ),
            );
        }
        for g in &self.multicast_groups {
            let mut reps = String::new();
            for r in &g.replicas {
                let _ = write!(
                    reps,
                    "\n        replicas {{ egress_port: {} instance: {} }}",
                    r.port, r.rid
                );
            }
            update(
                &mut s,
                "INSERT",
                &format!(
                    "    packet_replication_engine_entry {{\n      multicast_group_entry {{\n        multicast_group_id: {}{reps}\n      }}\n    }}\n",
                    g.group
                ),
            );
        }
        for c in &self.clone_sessions {
            update(
                &mut s,
                "INSERT",
                &format!(
                    "    packet_replication_engine_entry {{\n      clone_session_entry {{\n        session_id: {}\n        replicas {{ egress_port: {} instance: 0 }}\n      }}\n    }}\n",
                    c.session, c.port
                ),
            );
        }
        Ok(s)
    }
}

fn update(s: &mut String, kind: &str, entity: &str) {
    let _ = write!(
        s,
        "updates {{\n  type: {kind}\n  entity {{\n{entity}  }}\n}}\n"
    );
}

fn action_text(s: &mut String, p: &Program, a: usize, args: &[u128]) {
    let act = &p.actions[a];
    let _ = writeln!(
        s,
        "      action {{ action {{ action_id: {}  # {}",
        id(0x01, act.id),
        act.name
    );
    for (i, ((n, _, w), v)) in act.params.iter().zip(args).enumerate() {
        let _ = writeln!(
            s,
            "        params {{ param_id: {} value: {} }}  # {n}",
            i + 1,
            bytes(*v, *w)
        );
    }
    let _ = writeln!(s, "      }} }}");
}

/// A P4Runtime id: the prefix byte and the `@id` (0 marks "no @id: take it from p4info").
fn id(prefix: u32, annotated: Option<u32>) -> u32 {
    match annotated {
        Some(v) if v >> 24 == 0 => (prefix << 24) | v,
        Some(v) => v,
        None => 0,
    }
}

/// A canonical P4Runtime bytestring literal for a `w`-bit value.
pub fn bytes(v: u128, w: u16) -> String {
    let n = usize::from(w).div_ceil(8);
    let b: Vec<u8> = (0..n).rev().map(|i| (v >> (8 * i)) as u8).collect();
    let first = b
        .iter()
        .position(|&x| x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    let mut s = String::from("\"");
    for x in &b[first..] {
        let _ = write!(s, "\\x{x:02x}");
    }
    s.push('"');
    s
}
