//! memcached's binary protocol (protocol_binary.txt), streaming. Each request is a 24-byte
//! header, extras, key, value; each reply echoes the opcode and opaque. The quiet opcodes
//! (GETQ, GETKQ, SETQ, ADDQ, REPLACEQ, DELETEQ, INCREMENTQ, DECREMENTQ, QUITQ, FLUSHQ,
//! APPENDQ, PREPENDQ, GATQ) send nothing on success (GETQ/GETKQ nothing on a miss); errors are
//! still sent. Checks follow memcached 1.6's `dispatch_bin_command`: a request whose extras,
//! key and body lengths do not fit its opcode, a key over 250 bytes or a bad magic byte gets
//! "Invalid arguments" and the connection closes (bad magic closes at once); an unknown opcode
//! gets "Unknown command" and its body is skipped; a value too large gets "Too large." and its
//! body is skipped (a SET also drops the old item).

use crate::conn::{Codec, Frame, Framed, Limits, Progress, drive};
use crate::expiry::{Clock, Deadline};
use crate::memcache::{MAGIC_REQUEST, VERSION, stats_list};
use crate::numeric::push_u64;
use crate::ops::{DeltaError, Mode, Outcome};
use crate::sharded::Backend;
use crate::store::{KEY_MAX_LENGTH, item_cost};
use alloc::vec::Vec;

/// The reply magic.
pub const MAGIC_RESPONSE: u8 = 0x81;
/// The header length.
pub const HEADER_LEN: usize = 24;

/// Reply status codes.
pub mod status {
    /// No error.
    pub const OK: u16 = 0x0000;
    /// Key not found.
    pub const KEY_ENOENT: u16 = 0x0001;
    /// Key exists (CAS mismatch, ADD on a present key).
    pub const KEY_EEXISTS: u16 = 0x0002;
    /// Value too large.
    pub const E2BIG: u16 = 0x0003;
    /// Invalid arguments.
    pub const EINVAL: u16 = 0x0004;
    /// Item not stored.
    pub const NOT_STORED: u16 = 0x0005;
    /// Incr/decr on a non-numeric value.
    pub const DELTA_BADVAL: u16 = 0x0006;
    /// Unknown command.
    pub const UNKNOWN_COMMAND: u16 = 0x0081;
}

/// Opcodes (protocol_binary.txt).
pub mod op {
    #![allow(missing_docs)]
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
}

/// The text memcached puts in an error reply's body.
pub fn status_text(s: u16) -> &'static [u8] {
    match s {
        status::KEY_ENOENT => b"Not found",
        status::KEY_EEXISTS => b"Data exists for key.",
        status::E2BIG => b"Too large.",
        status::EINVAL => b"Invalid arguments",
        status::NOT_STORED => b"Not stored.",
        status::DELTA_BADVAL => b"Non-numeric server-side value for incr or decr",
        status::UNKNOWN_COMMAND => b"Unknown command",
        _ => b"",
    }
}

/// A parsed request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Opcode.
    pub opcode: u8,
    /// Key length.
    pub key_len: usize,
    /// Extras length.
    pub extras_len: usize,
    /// Total body length (extras + key + value).
    pub body_len: usize,
    /// Echoed in the reply.
    pub opaque: u32,
    /// CAS (0: none).
    pub cas: u64,
}

impl Header {
    /// Parse the 24 bytes at the front of `b` (`None` if fewer).
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h = b.get(..HEADER_LEN)?;
        let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(Header {
            opcode: h[1],
            key_len: usize::from(u16::from_be_bytes([h[2], h[3]])),
            extras_len: usize::from(h[4]),
            body_len: be32(8) as usize,
            opaque: be32(12),
            cas: (u64::from(be32(16)) << 32) | u64::from(be32(20)),
        })
    }
}

/// Append one reply (the header fields and the three body parts, as the wire has them).
#[allow(clippy::too_many_arguments)]
pub fn write_reply(
    out: &mut Vec<u8>,
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body = (extras.len() + key.len() + value.len()) as u32;
    out.push(MAGIC_RESPONSE);
    out.push(opcode);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.push(0);
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&body.to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

fn error(out: &mut Vec<u8>, h: &Header, s: u16) {
    write_reply(out, h.opcode, s, h.opaque, 0, &[], &[], status_text(s));
}

/// One binary connection's state.
#[derive(Debug, Clone, Default)]
pub struct Binary {
    limits: Limits,
    swallow: usize,
}

enum Step {
    Done(usize),
    Need,
    Close(usize),
}

fn quiet_base(opcode: u8) -> (u8, bool) {
    match opcode {
        op::GETQ => (op::GET, true),
        op::GETKQ => (op::GETK, true),
        op::SETQ => (op::SET, true),
        op::ADDQ => (op::ADD, true),
        op::REPLACEQ => (op::REPLACE, true),
        op::DELETEQ => (op::DELETE, true),
        op::INCREMENTQ => (op::INCREMENT, true),
        op::DECREMENTQ => (op::DECREMENT, true),
        op::QUITQ => (op::QUIT, true),
        op::FLUSHQ => (op::FLUSH, true),
        op::APPENDQ => (op::APPEND, true),
        op::PREPENDQ => (op::PREPEND, true),
        op::GATQ => (op::GAT, true),
        o => (o, false),
    }
}

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn be64(b: &[u8], i: usize) -> u64 {
    (u64::from(be32(b, i)) << 32) | u64::from(be32(b, i + 4))
}

impl Binary {
    /// A connection with these limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits, swallow: 0 }
    }

    fn request<B: Backend>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        b: &mut B,
        now: Clock,
    ) -> Step {
        let Some(h) = Header::parse(input) else {
            return Step::Need;
        };
        let (base, quiet) = quiet_base(h.opcode);
        let (el, kl, bl) = (h.extras_len, h.key_len, h.body_len);
        let valid = kl <= KEY_MAX_LENGTH
            && el + kl <= bl
            && match base {
                op::VERSION | op::NOOP | op::QUIT => el == 0 && kl == 0 && bl == 0,
                op::FLUSH => kl == 0 && bl == el && (el == 0 || el == 4),
                op::SET | op::ADD | op::REPLACE => el == 8 && kl > 0,
                op::GET | op::GETK | op::DELETE => el == 0 && kl > 0 && bl == kl,
                op::INCREMENT | op::DECREMENT => kl > 0 && el == 20 && bl == kl + el,
                op::APPEND | op::PREPEND => kl > 0 && el == 0,
                op::STAT => el == 0 && bl == kl,
                op::TOUCH | op::GAT => el == 4 && kl > 0 && bl == kl + el,
                _ => true,
            };
        if !valid {
            error(out, &h, status::EINVAL);
            return Step::Close(input.len().min(HEADER_LEN + bl));
        }
        let known = matches!(
            base,
            op::VERSION
                | op::NOOP
                | op::QUIT
                | op::FLUSH
                | op::SET
                | op::ADD
                | op::REPLACE
                | op::GET
                | op::GETK
                | op::DELETE
                | op::INCREMENT
                | op::DECREMENT
                | op::APPEND
                | op::PREPEND
                | op::STAT
                | op::TOUCH
                | op::GAT
        );
        if !known {
            error(out, &h, status::UNKNOWN_COMMAND);
            self.swallow = bl;
            return Step::Done(HEADER_LEN);
        }
        let vlen = bl - el - kl;
        if matches!(
            base,
            op::SET | op::ADD | op::REPLACE | op::APPEND | op::PREPEND
        ) && b.item_size_max() < item_cost(kl, vlen)
        {
            // Need the key to drop the old item on SET; it is at most 250 + 8 bytes away.
            let Some(key) = input.get(HEADER_LEN + el..HEADER_LEN + el + kl) else {
                return Step::Need;
            };
            error(out, &h, status::E2BIG);
            if base == op::SET {
                b.with_key(key, |s| s.remove(key, now));
            }
            self.swallow = vlen;
            return Step::Done(HEADER_LEN + el + kl);
        }
        let Some(body) = input.get(HEADER_LEN..HEADER_LEN + bl) else {
            return Step::Need;
        };
        let (extras, rest) = body.split_at(el);
        let (key, value) = rest.split_at(kl);
        let total = HEADER_LEN + bl;
        let ok = |out: &mut Vec<u8>, cas: u64, value: &[u8]| {
            if !quiet {
                write_reply(out, h.opcode, status::OK, h.opaque, cas, &[], &[], value);
            }
        };
        match base {
            op::GET | op::GETK | op::GAT => {
                let with_key = base == op::GETK;
                let touch = (base == op::GAT)
                    .then(|| Deadline::from_memcached(i64::from(be32(extras, 0)), now));
                let hit = b.with_key(key, |s| {
                    let it = s.get(key, now)?;
                    if let Some(d) = touch {
                        it.deadline = d;
                    }
                    let k: &[u8] = if with_key { key } else { &[] };
                    let flags = it.flags.to_be_bytes();
                    write_reply(
                        out,
                        h.opcode,
                        status::OK,
                        h.opaque,
                        it.cas,
                        &flags,
                        k,
                        &it.value,
                    );
                    Some(())
                });
                if hit.is_none() && !quiet {
                    if with_key {
                        write_reply(
                            out,
                            h.opcode,
                            status::KEY_ENOENT,
                            h.opaque,
                            0,
                            &[],
                            key,
                            &[],
                        );
                    } else {
                        error(out, &h, status::KEY_ENOENT);
                    }
                }
            }
            op::SET | op::ADD | op::REPLACE | op::APPEND | op::PREPEND => {
                let (flags, deadline) = if el == 8 {
                    let e = i64::from(be32(extras, 4));
                    (be32(extras, 0), Deadline::from_memcached(e, now))
                } else {
                    (0, Deadline::Never)
                };
                // memcached turns SET, ADD and REPLACE with a CAS into a CAS store; APPEND and
                // PREPEND with a CAS only check it against a present item.
                let mode = match base {
                    _ if h.cas != 0 && matches!(base, op::SET | op::ADD | op::REPLACE) => {
                        Mode::Cas(h.cas)
                    }
                    op::SET => Mode::Set,
                    op::ADD => Mode::Add,
                    op::REPLACE => Mode::Replace,
                    op::APPEND => Mode::Append,
                    _ => Mode::Prepend,
                };
                let r = b.with_key(key, |s| {
                    if matches!(mode, Mode::Append | Mode::Prepend)
                        && h.cas != 0
                        && s.peek(key, now).is_some_and(|it| it.cas != h.cas)
                    {
                        return Outcome::Exists;
                    }
                    s.store(mode, key, value, flags, deadline, now)
                });
                match (r, base) {
                    (Outcome::Stored(c), _) => ok(out, c, &[]),
                    (Outcome::NotStored, op::ADD) => error(out, &h, status::KEY_EEXISTS),
                    (Outcome::NotStored, op::REPLACE) => error(out, &h, status::KEY_ENOENT),
                    (Outcome::NotStored, _) => error(out, &h, status::NOT_STORED),
                    (Outcome::Exists, _) => error(out, &h, status::KEY_EEXISTS),
                    (Outcome::NotFound, _) => error(out, &h, status::KEY_ENOENT),
                    (Outcome::TooLarge, _) => error(out, &h, status::E2BIG),
                }
            }
            op::DELETE => match b.with_key(key, |s| s.delete(key, h.cas, now)) {
                Ok(()) => ok(out, 0, &[]),
                Err(DeltaError::Exists) => error(out, &h, status::KEY_EEXISTS),
                Err(_) => error(out, &h, status::KEY_ENOENT),
            },
            op::INCREMENT | op::DECREMENT => {
                let (delta, initial, exp) = (be64(extras, 0), be64(extras, 8), be32(extras, 16));
                let incr = base == op::INCREMENT;
                let r = b.with_key(key, |s| match s.incr_decr(key, delta, incr, h.cas, now) {
                    Err(DeltaError::NotFound) if exp != u32::MAX && h.cas == 0 => {
                        let mut v = Vec::with_capacity(20);
                        push_u64(&mut v, initial);
                        let d = Deadline::from_memcached(i64::from(exp), now);
                        s.insert(key, v, 0, d, now)
                            .map(|c| (initial, c))
                            .ok_or(DeltaError::NotFound)
                    }
                    r => r,
                });
                match r {
                    Ok((v, cas)) => ok(out, cas, &v.to_be_bytes()),
                    Err(DeltaError::NonNumeric) => error(out, &h, status::DELTA_BADVAL),
                    Err(DeltaError::Exists) => error(out, &h, status::KEY_EEXISTS),
                    Err(_) => error(out, &h, status::KEY_ENOENT),
                }
            }
            op::TOUCH => {
                // memcached answers TOUCH like a GAT without the value: flags and CAS.
                let d = Deadline::from_memcached(i64::from(be32(extras, 0)), now);
                let hit = b.with_key(key, |s| {
                    let it = s.get(key, now)?;
                    it.deadline = d;
                    Some((it.flags, it.cas))
                });
                match hit {
                    Some((flags, cas)) => {
                        let f = flags.to_be_bytes();
                        write_reply(out, h.opcode, status::OK, h.opaque, cas, &f, &[], &[]);
                    }
                    None => error(out, &h, status::KEY_ENOENT),
                }
            }
            op::FLUSH => {
                let at = if el == 4 && be32(extras, 0) != 0 {
                    Deadline::from_memcached(i64::from(be32(extras, 0)), now)
                } else {
                    Deadline::EXPIRED
                };
                b.for_each_store(|s| s.flush(at, now));
                ok(out, 0, &[]);
            }
            op::NOOP => write_reply(out, h.opcode, status::OK, h.opaque, 0, &[], &[], &[]),
            op::VERSION => ok(out, 0, VERSION.as_bytes()),
            op::STAT => {
                if key.is_empty() {
                    stats_list(b, now, |k, v| {
                        write_reply(out, h.opcode, status::OK, h.opaque, 0, &[], k.as_bytes(), v)
                    });
                    write_reply(out, h.opcode, status::OK, h.opaque, 0, &[], &[], &[]);
                } else {
                    error(out, &h, status::KEY_ENOENT);
                }
            }
            _ => {
                // QUIT / QUITQ: reply (unless quiet), then close.
                ok(out, 0, &[]);
                return Step::Close(total);
            }
        }
        Step::Done(total)
    }
}

impl Framed for Binary {
    fn swallow(&mut self) -> &mut usize {
        &mut self.swallow
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn step<B: Backend>(&mut self, rest: &[u8], out: &mut Vec<u8>, b: &mut B, now: Clock) -> Frame {
        // Not a request header: memcached closes the connection.
        if rest[0] != MAGIC_REQUEST {
            return Frame::Close(rest.len());
        }
        match self.request(rest, out, b, now) {
            Step::Done(n) => Frame::Consumed(n),
            Step::Need => Frame::Need,
            Step::Close(n) => Frame::Close(n),
        }
    }
}

impl Codec for Binary {
    fn feed<B: Backend>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        b: &mut B,
        now: Clock,
    ) -> Progress {
        drive(self, input, out, b, now)
    }
}
