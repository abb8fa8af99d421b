//! The byte layout of [`Message`]s: the payload of an R2P2 RAFT_REQ (type 5: requests) or
//! RAFT_REP (type 6: answers) message, after the 8-byte R2P2 header (spec/r2p2.md,
//! "HovercRaft payloads"). Close to the reference, not byte-compatible with it (no public
//! client speaks it). All integers big-endian.
//!
//! Common prefix (10 bytes): `u8 msg_type, u8 from_id, u64 term`. The reference has a u8
//! term; ferrix uses a u64 so that terms never wrap.
//!
//! | msg_type | kind | R2P2 type | body after the prefix |
//! |---|---|---|---|
//! | 1 | PRE_VOTE_REQ | RAFT_REQ | `u64 last_index, u64 last_term` |
//! | 2 | PRE_VOTE_REP | RAFT_REP | `u8 granted` (0 or 1) |
//! | 3 | VOTE_REQ | RAFT_REQ | `u64 last_index, u64 last_term` |
//! | 4 | VOTE_REP | RAFT_REP | `u8 granted` |
//! | 5 | AE_REQ | RAFT_REQ | `u64 prev_index, u64 prev_term, u64 commit, u16 count`, `count` entries |
//! | 6 | AE_REP | RAFT_REP | `u8 success, u64 index, u64 hint_term, u64 applied` |
//! | 7 | SNAP_REQ | RAFT_REQ | `u64 index, u64 term, u32 len`, `len` bytes of snapshot |
//! | 8 | SNAP_REP | RAFT_REP | `u64 index` |
//! | 9 | RECOVERY_REQ | RAFT_REQ | `u16 count`, `count` × `u64 index, u32 ip, u16 port, u16 rid` |
//! | 10 | RECOVERY_REP | RAFT_REP | `u16 count`, `count` × `u32 ip, u16 port, u16 rid, u8 read_only, u32 len`, `len` bytes |
//!
//! | 11 | AGG_AE_REQ | RAFT_REQ | `u64 prev_index, u64 prev_term, u64 commit, u64 term_start, u16 count`, `count` entries |
//! | 12 | AGG_COMMIT | RAFT_REP | `u64 commit, u16 fresh, u8 count`, `count` × `u64 matched, u64 applied` |
//! | 13 | AGG_PROBE_REQ | RAFT_REQ | nothing |
//! | 14 | AGG_PROBE_REP | RAFT_REP | nothing |
//!
//! Types 11-14 are HovercRaft++ ([`crate::aggregator`]); 15 stays reserved. AGG_AE_REQ is
//! the leader's (`from_id` is the leader's, also when the aggregator relays it: it forwards the
//! bytes unchanged, so a transport must accept it from the aggregator's address on behalf of
//! the leader). AGG_COMMIT (the reference's AE_REP_GROUP, multicast to every member as the
//! thesis's commit announcement) and AGG_PROBE_REP come from the aggregator: their `from_id`
//! must be [`AGGREGATOR`] (0xFF), every other type's must be a member; AGG_COMMIT's `count`
//! must equal the cluster size and `fresh` may only have members' bits set.
//!
//! An AppendEntries entry (26 bytes + body, the thesis's "about 25"): `u64 term, u64 index,
//! u8 flags, u8 replier, u32 ip, u16 port, u16 rid`, then `u32 len` and `len` bytes when flag
//! BODY is set. Flags: `0x01` REQUEST (clear: a no-op, whose replier/ip/port/rid are zero),
//! `0x02` READ_ONLY, `0x04` BODY; other bits must be zero. `index` must equal
//! `prev_index + 1 + position`; `replier` must be a member.
//!
//! Decoding never panics and never allocates more than the input's size: a length or count
//! that does not fit the remaining bytes is [`DecodeError::Truncated`]. A sender that is not a
//! member is [`DecodeError::UnknownSender`] (so a non-member cannot forge a term); the
//! transport must also check that the source address is that member's.

use alloc::vec::Vec;
use core::fmt;

pub use crate::aggregator::AGGREGATOR;
use crate::message::{Message, Meta, Progress, WireEntry};
use crate::types::{ClientId, Index, NodeId, Request, Snapshot};

/// R2P2 message type of Raft requests (spec/r2p2.md).
pub const R2P2_RAFT_REQ: u8 = 5;
/// R2P2 message type of Raft answers.
pub const R2P2_RAFT_REP: u8 = 6;

const T_PRE_VOTE_REQ: u8 = 1;
const T_PRE_VOTE_REP: u8 = 2;
const T_VOTE_REQ: u8 = 3;
const T_VOTE_REP: u8 = 4;
const T_AE_REQ: u8 = 5;
const T_AE_REP: u8 = 6;
const T_SNAP_REQ: u8 = 7;
const T_SNAP_REP: u8 = 8;
const T_RECOVERY_REQ: u8 = 9;
const T_RECOVERY_REP: u8 = 10;
const T_AGG_AE_REQ: u8 = 11;
const T_AGG_COMMIT: u8 = 12;
const T_AGG_PROBE_REQ: u8 = 13;
const T_AGG_PROBE_REP: u8 = 14;

const F_REQUEST: u8 = 0x01;
const F_READ_ONLY: u8 = 0x02;
const F_BODY: u8 = 0x04;

/// Bytes of an entry without its body.
pub const ENTRY_HEADER: usize = 26;
/// Bytes of an AppendEntries without its entries (prefix, prev index and term, commit, count).
pub const APPEND_HEADER: usize = 10 + 8 + 8 + 8 + 2;
/// Bytes of an AGG_AE_REQ without its entries (an AppendEntries header and `term_start`).
pub const AGG_APPEND_HEADER: usize = APPEND_HEADER + 8;
/// Bytes of a RECOVERY_REP without its requests (prefix, count).
pub const RECOVERY_REP_HEADER: usize = 10 + 2;
/// Bytes of a recovered request without its body (id, read-only flag, body length).
pub const RECOVERED_HEADER: usize = 8 + 1 + 4;

/// The encoded size of an AppendEntries entry.
pub fn entry_len(e: &WireEntry) -> usize {
    match (&e.meta, &e.body) {
        (Some(_), Some(body)) => ENTRY_HEADER + 4 + body.len(),
        _ => ENTRY_HEADER,
    }
}

/// Why bytes were not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Ends before a field, or a length/count exceeds what is left.
    Truncated,
    /// Bytes left after the message.
    Trailing,
    /// `msg_type` is not one of the table's.
    UnknownType(u8),
    /// `from_id` is not a member (or is the receiver itself).
    UnknownSender(u8),
    /// A flag or boolean with a value outside its set, or an entry whose index is wrong.
    BadField,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated message"),
            DecodeError::Trailing => write!(f, "bytes after the message"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::UnknownSender(s) => write!(f, "sender {s} is not a member"),
            DecodeError::BadField => write!(f, "malformed field"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// What a transport checks before decoding: how the sender of `buf` must be vouched for by
/// the datagram's source address. None: too short to name a sender (decoding fails anyway).
pub fn sender(buf: &[u8]) -> Option<Sender> {
    let (&ty, &from) = (buf.first()?, buf.get(1)?);
    Some(match ty {
        T_AGG_COMMIT | T_AGG_PROBE_REP => Sender::Aggregator,
        T_AGG_AE_REQ => Sender::LeaderViaAggregator(from),
        _ => Sender::Member(from),
    })
}

/// The sender a message names ([`sender`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The aggregator's own message (AGG_COMMIT, AGG_PROBE_REP): from its address only.
    Aggregator,
    /// AGG_AE_REQ: from the leader (to the aggregator), or relayed by the aggregator from its
    /// address on the leader's behalf.
    LeaderViaAggregator(NodeId),
    /// Every other message: from that member's address only.
    Member(NodeId),
}

/// The R2P2 message type a message rides in.
pub fn r2p2_type(m: &Message) -> u8 {
    match m {
        Message::PreVoteReq { .. }
        | Message::VoteReq { .. }
        | Message::AppendReq { .. }
        | Message::SnapReq { .. }
        | Message::RecoveryReq { .. }
        | Message::AggAppendReq { .. }
        | Message::AggProbeReq { .. } => R2P2_RAFT_REQ,
        _ => R2P2_RAFT_REP,
    }
}

/// Appends the encoding of `m` from `from` to `out`.
///
/// Counts above u16 (entries, recovery items) and lengths above u32 are the caller's
/// mistake: the replica never builds them ([`crate::Config::max_entries`]).
pub fn encode(from: NodeId, m: &Message, out: &mut Vec<u8>) {
    let ty = match m {
        Message::PreVoteReq { .. } => T_PRE_VOTE_REQ,
        Message::PreVoteRep { .. } => T_PRE_VOTE_REP,
        Message::VoteReq { .. } => T_VOTE_REQ,
        Message::VoteRep { .. } => T_VOTE_REP,
        Message::AppendReq { .. } => T_AE_REQ,
        Message::AppendRep { .. } => T_AE_REP,
        Message::SnapReq { .. } => T_SNAP_REQ,
        Message::SnapRep { .. } => T_SNAP_REP,
        Message::RecoveryReq { .. } => T_RECOVERY_REQ,
        Message::RecoveryRep { .. } => T_RECOVERY_REP,
        Message::AggAppendReq { .. } => T_AGG_AE_REQ,
        Message::AggCommit { .. } => T_AGG_COMMIT,
        Message::AggProbeReq { .. } => T_AGG_PROBE_REQ,
        Message::AggProbeRep { .. } => T_AGG_PROBE_REP,
    };
    out.push(ty);
    out.push(from);
    put64(out, m.term());
    match m {
        Message::PreVoteReq {
            last_index,
            last_term,
            ..
        }
        | Message::VoteReq {
            last_index,
            last_term,
            ..
        } => {
            put64(out, *last_index);
            put64(out, *last_term);
        }
        Message::PreVoteRep { granted, .. } | Message::VoteRep { granted, .. } => {
            out.push(u8::from(*granted));
        }
        Message::AppendReq {
            prev_index,
            prev_term,
            commit,
            entries,
            ..
        } => {
            put64(out, *prev_index);
            put64(out, *prev_term);
            put64(out, *commit);
            encode_entries(*prev_index, entries, out);
        }
        Message::AggAppendReq {
            prev_index,
            prev_term,
            commit,
            term_start,
            entries,
            ..
        } => {
            put64(out, *prev_index);
            put64(out, *prev_term);
            put64(out, *commit);
            put64(out, *term_start);
            encode_entries(*prev_index, entries, out);
        }
        Message::AggCommit {
            commit,
            fresh,
            progress,
            ..
        } => {
            put64(out, *commit);
            put16(out, *fresh);
            out.push(progress.len() as u8);
            for p in progress {
                put64(out, p.matched);
                put64(out, p.applied);
            }
        }
        Message::AggProbeReq { .. } | Message::AggProbeRep { .. } => {}
        Message::AppendRep {
            success,
            index,
            hint_term,
            applied,
            ..
        } => {
            out.push(u8::from(*success));
            put64(out, *index);
            put64(out, *hint_term);
            put64(out, *applied);
        }
        Message::SnapReq { snapshot, .. } => {
            put64(out, snapshot.index);
            put64(out, snapshot.term);
            put_bytes(out, &snapshot.data);
        }
        Message::SnapRep { index, .. } => put64(out, *index),
        Message::RecoveryReq { missing, .. } => {
            put16(out, missing.len() as u16);
            for (index, id) in missing {
                put64(out, *index);
                put_id(out, id);
            }
        }
        Message::RecoveryRep { found, .. } => {
            put16(out, found.len() as u16);
            for r in found {
                put_id(out, &r.id);
                out.push(u8::from(r.read_only));
                put_bytes(out, &r.body);
            }
        }
    }
}

fn encode_entries(prev_index: Index, entries: &[WireEntry], out: &mut Vec<u8>) {
    put16(out, entries.len() as u16);
    for (i, e) in entries.iter().enumerate() {
        encode_entry(prev_index + 1 + i as Index, e, out);
    }
}

fn encode_entry(index: Index, e: &WireEntry, out: &mut Vec<u8>) {
    put64(out, e.term);
    put64(out, index);
    let mut flags = 0;
    let meta = e.meta.unwrap_or(Meta {
        id: ClientId {
            ip: 0,
            port: 0,
            rid: 0,
        },
        read_only: false,
        replier: 0,
    });
    if e.meta.is_some() {
        flags |= F_REQUEST;
        if meta.read_only {
            flags |= F_READ_ONLY;
        }
        if e.body.is_some() {
            flags |= F_BODY;
        }
    }
    out.push(flags);
    out.push(meta.replier);
    put_id(out, &meta.id);
    if let (Some(body), true) = (&e.body, e.meta.is_some()) {
        put_bytes(out, body);
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: &ClientId) {
    out.extend_from_slice(&id.ip.to_be_bytes());
    put16(out, id.port);
    put16(out, id.rid);
}

/// A bounds-checked reader.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadField),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn id(&mut self) -> Result<ClientId, DecodeError> {
        Ok(ClientId {
            ip: self.u32()?,
            port: self.u16()?,
            rid: self.u16()?,
        })
    }

    /// A count of items of at least `min` bytes each, checked against what is left.
    fn count(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.u16()? as usize;
        if n * min > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
}

/// Decodes one message for a cluster of `nodes` members, received by `me`.
/// Returns the sender and the message.
pub fn decode(buf: &[u8], nodes: u8, me: NodeId) -> Result<(NodeId, Message), DecodeError> {
    let mut r = Reader { buf };
    let ty = r.u8()?;
    let from = r.u8()?;
    let term = r.u64()?;
    if !(T_PRE_VOTE_REQ..=T_AGG_PROBE_REP).contains(&ty) {
        return Err(DecodeError::UnknownType(ty));
    }
    let sender_ok = if matches!(ty, T_AGG_COMMIT | T_AGG_PROBE_REP) {
        from == AGGREGATOR && me != AGGREGATOR
    } else {
        from < nodes && from != me
    };
    if !sender_ok {
        return Err(DecodeError::UnknownSender(from));
    }
    let m = match ty {
        T_PRE_VOTE_REQ | T_VOTE_REQ => {
            let (last_index, last_term) = (r.u64()?, r.u64()?);
            if ty == T_VOTE_REQ {
                Message::VoteReq {
                    term,
                    last_index,
                    last_term,
                }
            } else {
                Message::PreVoteReq {
                    term,
                    last_index,
                    last_term,
                }
            }
        }
        T_PRE_VOTE_REP => Message::PreVoteRep {
            term,
            granted: r.bool()?,
        },
        T_VOTE_REP => Message::VoteRep {
            term,
            granted: r.bool()?,
        },
        T_AE_REQ => {
            let prev_index = r.u64()?;
            let prev_term = r.u64()?;
            let commit = r.u64()?;
            let entries = decode_entries(&mut r, prev_index, nodes)?;
            Message::AppendReq {
                term,
                prev_index,
                prev_term,
                commit,
                entries,
            }
        }
        T_AGG_AE_REQ => {
            let prev_index = r.u64()?;
            let prev_term = r.u64()?;
            let commit = r.u64()?;
            let term_start = r.u64()?;
            let entries = decode_entries(&mut r, prev_index, nodes)?;
            Message::AggAppendReq {
                term,
                prev_index,
                prev_term,
                commit,
                term_start,
                entries,
            }
        }
        T_AGG_COMMIT => {
            let commit = r.u64()?;
            let fresh = r.u16()?;
            let n = r.u8()?;
            if n != nodes || u32::from(fresh) >> nodes != 0 {
                return Err(DecodeError::BadField);
            }
            let mut progress = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                progress.push(Progress {
                    matched: r.u64()?,
                    applied: r.u64()?,
                });
            }
            Message::AggCommit {
                term,
                commit,
                fresh,
                progress,
            }
        }
        T_AGG_PROBE_REQ => Message::AggProbeReq { term },
        T_AGG_PROBE_REP => Message::AggProbeRep { term },
        T_AE_REP => Message::AppendRep {
            term,
            success: r.bool()?,
            index: r.u64()?,
            hint_term: r.u64()?,
            applied: r.u64()?,
        },
        T_SNAP_REQ => Message::SnapReq {
            term,
            snapshot: Snapshot {
                index: r.u64()?,
                term: r.u64()?,
                data: r.bytes()?,
            },
        },
        T_SNAP_REP => Message::SnapRep {
            term,
            index: r.u64()?,
        },
        T_RECOVERY_REQ => {
            let n = r.count(16)?;
            let mut missing = Vec::with_capacity(n);
            for _ in 0..n {
                missing.push((r.u64()?, r.id()?));
            }
            Message::RecoveryReq { term, missing }
        }
        _ => {
            let n = r.count(13)?;
            let mut found = Vec::with_capacity(n);
            for _ in 0..n {
                found.push(Request {
                    id: r.id()?,
                    read_only: r.bool()?,
                    body: r.bytes()?,
                });
            }
            Message::RecoveryRep { term, found }
        }
    };
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok((from, m))
}

fn decode_entries(
    r: &mut Reader<'_>,
    prev_index: Index,
    nodes: u8,
) -> Result<Vec<WireEntry>, DecodeError> {
    let n = r.count(ENTRY_HEADER)?;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let want = prev_index
            .checked_add(1 + i as Index)
            .ok_or(DecodeError::BadField)?;
        entries.push(decode_entry(r, want, nodes)?);
    }
    Ok(entries)
}

fn decode_entry(r: &mut Reader<'_>, want: Index, nodes: u8) -> Result<WireEntry, DecodeError> {
    let term = r.u64()?;
    let index = r.u64()?;
    let flags = r.u8()?;
    let replier = r.u8()?;
    let id = r.id()?;
    if index != want || flags & !(F_REQUEST | F_READ_ONLY | F_BODY) != 0 {
        return Err(DecodeError::BadField);
    }
    if flags & F_REQUEST == 0 {
        if flags != 0 {
            return Err(DecodeError::BadField);
        }
        return Ok(WireEntry {
            term,
            meta: None,
            body: None,
        });
    }
    if replier >= nodes {
        return Err(DecodeError::BadField);
    }
    let body = if flags & F_BODY != 0 {
        Some(r.bytes()?)
    } else {
        None
    };
    Ok(WireEntry {
        term,
        meta: Some(Meta {
            id,
            read_only: flags & F_READ_ONLY != 0,
            replier,
        }),
        body,
    })
}
