//! A byte format for the persistent writes ([`Write`]), for storage on a disk or in a file:
//! a batch of writes (one [`crate::Outputs::writes`]) becomes one *record*, and a log of
//! records replays into the [`Durable`] state a replica restarts from.
//!
//! A record is `magic u32, seq u32, len u32, crc32 u32` (16 bytes, big-endian; the CRC-32
//! (IEEE) is over the `len` payload bytes), then the payload: writes one after the other,
//! each a tag byte and its fields:
//!
//! | tag | write | fields |
//! |---|---|---|
//! | 1 | HardState | `u64 term, u8 vote` (0xFF: none) |
//! | 2 | Entries | `u64 from, u32 count`, then per entry `u64 term, u8 op` (0 no-op, 1 request) and for a request `u32 ip, u16 port, u16 rid, u8 read_only, u8 replier, u32 len, body` |
//! | 3 | Snapshot | `u64 index, u64 term, u32 len, data` |
//!
//! Records carry consecutive `seq` numbers from 0, so a replay stops at the first record
//! that is torn (a crash in the middle of a write), corrupt, or left over from an older log
//! (a stale `seq`): by the fsync rule nothing was sent that depended on it.

use alloc::vec::Vec;

use crate::storage::{Durable, Write};
use crate::types::{ClientId, Entry, NodeId, Op, Request, Snapshot};

/// Marks a record.
pub const RECORD_MAGIC: u32 = 0x4658_524c; // "FXRL"
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 16;
/// The largest record payload accepted when reading (a sanity bound: 64 MiB).
pub const MAX_RECORD: usize = 64 << 20;

/// Why bytes are not a record or a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistError {
    /// Not a record header (magic, or a length over [`MAX_RECORD`]).
    NotARecord,
    /// A record from another place in the sequence (an older log's leftovers).
    Sequence,
    /// The payload does not match its CRC.
    Checksum,
    /// The payload ends inside a write, or has an unknown tag or a bad field.
    Malformed,
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
        }
    }
    !c
}

/// Appends the record of `writes` with sequence number `seq` to `out`.
pub fn encode_record(seq: u32, writes: &[Write], out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    for w in writes {
        encode_write(w, &mut payload);
    }
    out.extend_from_slice(&RECORD_MAGIC.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
}

/// Reads a record header: the payload length it announces, if it is record `seq`.
pub fn record_len(header: &[u8; RECORD_HEADER], seq: u32) -> Result<usize, PersistError> {
    let word =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if word(0) != RECORD_MAGIC {
        return Err(PersistError::NotARecord);
    }
    let len = word(8) as usize;
    if len > MAX_RECORD {
        return Err(PersistError::NotARecord);
    }
    if word(4) != seq {
        return Err(PersistError::Sequence);
    }
    Ok(len)
}

/// Checks a record's payload against its header and decodes its writes.
pub fn decode_payload(
    header: &[u8; RECORD_HEADER],
    payload: &[u8],
) -> Result<Vec<Write>, PersistError> {
    let crc = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    if crc32(payload) != crc {
        return Err(PersistError::Checksum);
    }
    let mut r = Reader(payload);
    let mut writes = Vec::new();
    while !r.0.is_empty() {
        writes.push(decode_write(&mut r)?);
    }
    Ok(writes)
}

/// Replays whole records from `log` (as written one after the other by [`encode_record`],
/// from sequence 0) into a [`Durable`]; returns it, the number of records and the bytes they
/// took. Stops at the first record that is not whole and valid.
pub fn replay(log: &[u8]) -> (Durable, u32, usize) {
    let mut d = Durable::default();
    let (mut seq, mut at) = (0u32, 0usize);
    while let Some(h) = log.get(at..).and_then(|b| b.first_chunk::<RECORD_HEADER>()) {
        let Ok(len) = record_len(h, seq) else { break };
        let Some(p) = log.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else {
            break;
        };
        let Ok(writes) = decode_payload(h, p) else {
            break;
        };
        for w in &writes {
            d.apply(w);
        }
        seq += 1;
        at += RECORD_HEADER + len;
    }
    (d, seq, at)
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Appends one write.
pub fn encode_write(w: &Write, out: &mut Vec<u8>) {
    match w {
        Write::HardState { term, vote } => {
            out.push(1);
            put_u64(out, *term);
            out.push(vote.unwrap_or(0xff));
        }
        Write::Entries { from, entries } => {
            out.push(2);
            put_u64(out, *from);
            out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for e in entries {
                put_u64(out, e.term);
                match &e.op {
                    Op::Noop => out.push(0),
                    Op::Request { req, replier } => {
                        out.push(1);
                        out.extend_from_slice(&req.id.ip.to_be_bytes());
                        out.extend_from_slice(&req.id.port.to_be_bytes());
                        out.extend_from_slice(&req.id.rid.to_be_bytes());
                        out.push(u8::from(req.read_only));
                        out.push(*replier);
                        put_bytes(out, &req.body);
                    }
                }
            }
        }
        Write::Snapshot(s) => {
            out.push(3);
            put_u64(out, s.index);
            put_u64(out, s.term);
            put_bytes(out, &s.data);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], PersistError> {
        let (h, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(PersistError::Malformed)?;
        self.0 = rest;
        Ok(*h)
    }
    fn u8(&mut self) -> Result<u8, PersistError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, PersistError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, PersistError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, PersistError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, PersistError> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(PersistError::Malformed);
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b.to_vec())
    }
}

fn decode_write(r: &mut Reader<'_>) -> Result<Write, PersistError> {
    match r.u8()? {
        1 => {
            let term = r.u64()?;
            let vote: Option<NodeId> = match r.u8()? {
                0xff => None,
                v => Some(v),
            };
            Ok(Write::HardState { term, vote })
        }
        2 => {
            let from = r.u64()?;
            let count = r.u32()? as usize;
            // Each entry takes at least 9 bytes: a count beyond what is left is corrupt.
            if count > r.0.len() / 9 {
                return Err(PersistError::Malformed);
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let term = r.u64()?;
                let op = match r.u8()? {
                    0 => Op::Noop,
                    1 => {
                        let id = ClientId {
                            ip: r.u32()?,
                            port: r.u16()?,
                            rid: r.u16()?,
                        };
                        let read_only = match r.u8()? {
                            0 => false,
                            1 => true,
                            _ => return Err(PersistError::Malformed),
                        };
                        let replier = r.u8()?;
                        let body = r.bytes()?;
                        Op::Request {
                            req: Request {
                                id,
                                read_only,
                                body,
                            },
                            replier,
                        }
                    }
                    _ => return Err(PersistError::Malformed),
                };
                entries.push(Entry { term, op });
            }
            Ok(Write::Entries { from, entries })
        }
        3 => Ok(Write::Snapshot(Snapshot {
            index: r.u64()?,
            term: r.u64()?,
            data: r.bytes()?,
        })),
        _ => Err(PersistError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Vec<Vec<Write>> {
        let req = |rid: u16, ro: bool| Entry {
            term: 2,
            op: Op::Request {
                req: Request {
                    id: ClientId {
                        ip: 0x0a00_0001,
                        port: 4000,
                        rid,
                    },
                    read_only: ro,
                    body: vec![rid as u8; usize::from(rid)],
                },
                replier: (rid % 3) as u8,
            },
        };
        vec![
            vec![Write::HardState {
                term: 1,
                vote: Some(0),
            }],
            vec![
                Write::HardState {
                    term: 2,
                    vote: None,
                },
                Write::Entries {
                    from: 1,
                    entries: vec![
                        Entry {
                            term: 2,
                            op: Op::Noop,
                        },
                        req(5, false),
                        req(6, true),
                    ],
                },
            ],
            // A truncation and a replacement.
            vec![Write::Entries {
                from: 3,
                entries: vec![req(7, false)],
            }],
            vec![Write::Snapshot(Snapshot {
                index: 1,
                term: 2,
                data: b"state".to_vec(),
            })],
        ]
    }

    fn log_of(batches: &[Vec<Write>]) -> Vec<u8> {
        let mut log = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            encode_record(i as u32, b, &mut log);
        }
        log
    }

    fn durable_of(batches: &[Vec<Write>]) -> Durable {
        let mut d = Durable::default();
        for w in batches.iter().flatten() {
            d.apply(w);
        }
        d
    }

    fn same(a: &Durable, b: &Durable) {
        assert_eq!((a.term, a.vote), (b.term, b.vote));
        assert_eq!(a.log.snapshot(), b.log.snapshot());
        assert!(a.log.entries().eq(b.log.entries()));
    }

    #[test]
    fn records_replay_to_the_same_durable_state() {
        let batches = sample();
        let log = log_of(&batches);
        let (d, n, used) = replay(&log);
        assert_eq!((n, used), (4, log.len()));
        same(&d, &durable_of(&batches));
        assert_eq!(d.log.last_index(), 3);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_off_at_the_last_whole_record() {
        let batches = sample();
        let log = log_of(&batches);
        let whole = log_of(&batches[..3]).len();
        for cut in whole..log.len() {
            let (d, n, used) = replay(&log[..cut]);
            assert_eq!((n, used), (3, whole), "cut at {cut}");
            same(&d, &durable_of(&batches[..3]));
        }
        // One flipped byte anywhere in record 2 stops the replay before it.
        let start = log_of(&batches[..2]).len();
        for i in start..whole {
            let mut bad = log.clone();
            bad[i] ^= 0x40;
            let (_, n, _) = replay(&bad);
            assert_eq!(n, 2, "byte {i}");
        }
        // Leftovers of an older, longer log after the end are not replayed.
        let mut stale = log_of(&batches[..1]);
        let mut old = Vec::new();
        encode_record(5, &batches[1], &mut old);
        stale.extend_from_slice(&old);
        assert_eq!(replay(&stale).1, 1);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x1234_5678u64;
        for len in 0..400 {
            let mut b = vec![0u8; len];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x as u8;
            }
            let _ = replay(&b);
            // A valid header around garbage: the CRC holds, the writes do not.
            let mut rec = Vec::new();
            rec.extend_from_slice(&RECORD_MAGIC.to_be_bytes());
            rec.extend_from_slice(&0u32.to_be_bytes());
            rec.extend_from_slice(&(b.len() as u32).to_be_bytes());
            rec.extend_from_slice(&crc32(&b).to_be_bytes());
            let h = *rec.first_chunk::<RECORD_HEADER>().unwrap();
            let _ = decode_payload(&h, &b);
        }
    }

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}
