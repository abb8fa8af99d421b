//! The simulated application: per-key u64 registers with at-most-once writes (each client's
//! last write rid, as Raft client sessions), its request encoding and its snapshot format.

use std::collections::BTreeMap;

use ferrix_raft::ClientId;

/// A client operation as carried in the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Set `key` to `value`.
    Write { key: u8, value: u64 },
    /// Read `key`.
    Read { key: u8 },
}

impl Cmd {
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Cmd::Write { key, value } => {
                let mut b = vec![0, key];
                b.extend_from_slice(&value.to_le_bytes());
                b
            }
            Cmd::Read { key } => vec![1, key],
        }
    }

    pub fn decode(b: &[u8]) -> Option<Cmd> {
        match b {
            [0, key, v @ ..] if v.len() == 8 => Some(Cmd::Write {
                key: *key,
                value: u64::from_le_bytes(v.try_into().ok()?),
            }),
            [1, key] => Some(Cmd::Read { key: *key }),
            _ => None,
        }
    }
}

/// The state machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    pub regs: BTreeMap<u8, u64>,
    /// Per client (ip, port): the rid of its last applied write.
    pub sessions: BTreeMap<(u32, u16), u16>,
}

impl Kv {
    /// Runs a command; returns the reply value (0 for a write's "ok").
    pub fn apply(&mut self, id: ClientId, cmd: Cmd) -> u64 {
        match cmd {
            Cmd::Write { key, value } => {
                let s = self.sessions.entry((id.ip, id.port)).or_insert(0);
                // rids start at 1 and grow; an older or equal rid is a retry already applied.
                if id.rid > *s {
                    *s = id.rid;
                    self.regs.insert(key, value);
                }
                0
            }
            Cmd::Read { key } => self.regs.get(&key).copied().unwrap_or(0),
        }
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(self.regs.len() as u32).to_le_bytes());
        for (k, v) in &self.regs {
            b.push(*k);
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(self.sessions.len() as u32).to_le_bytes());
        for ((ip, port), rid) in &self.sessions {
            b.extend_from_slice(&ip.to_le_bytes());
            b.extend_from_slice(&port.to_le_bytes());
            b.extend_from_slice(&rid.to_le_bytes());
        }
        b
    }

    pub fn restore(b: &[u8]) -> Kv {
        let mut kv = Kv::default();
        if b.is_empty() {
            return kv;
        }
        let mut at = 0;
        let mut take = |n: usize| {
            let s = &b[at..at + n];
            at += n;
            s
        };
        let regs = u32::from_le_bytes(take(4).try_into().unwrap());
        for _ in 0..regs {
            let k = take(1)[0];
            let v = u64::from_le_bytes(take(8).try_into().unwrap());
            kv.regs.insert(k, v);
        }
        let sessions = u32::from_le_bytes(take(4).try_into().unwrap());
        for _ in 0..sessions {
            let ip = u32::from_le_bytes(take(4).try_into().unwrap());
            let port = u16::from_le_bytes(take(2).try_into().unwrap());
            let rid = u16::from_le_bytes(take(2).try_into().unwrap());
            kv.sessions.insert((ip, port), rid);
        }
        kv
    }
}
