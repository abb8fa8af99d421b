//! memcached's ASCII protocol (protocol.txt), streaming: command lines ending in `\n` (a `\r`
//! before it is dropped), tokens split on spaces, storage commands followed by a data block of
//! exactly `<bytes>` plus `\r\n`. Replies and error strings are memcached 1.6's, checked
//! against the real server by the differential test (tests/diff_memcached.rs):
//!
//! - unknown command, wrong token count: `ERROR`;
//! - key over 250 bytes, bad number or negative length: `CLIENT_ERROR bad command line format`
//!   (the data block, if any, is then read as commands, as memcached does);
//! - data block not ending in `\r\n`: `CLIENT_ERROR bad data chunk` (the `<bytes>+2` bytes are
//!   consumed);
//! - item too large: `SERVER_ERROR object too large for cache`, the data block is swallowed and
//!   a `set` removes the old item;
//! - a line longer than [`Limits::max_line`] closes the connection (memcached closes too).

use crate::conn::{Codec, Frame, Framed, Limits, Progress, drive};
use crate::expiry::{Clock, Deadline};
use crate::memcache::{VERSION, stats_list};
use crate::numeric::{mc_strtol32, mc_strtoul32, mc_strtoull, push_u64};
use crate::ops::{DeltaError, Mode, Outcome};
use crate::sharded::Backend;
use crate::store::KEY_MAX_LENGTH;
use alloc::vec::Vec;

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
const ERROR: &[u8] = b"ERROR\r\n";
const BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
const BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
const DELETE_USAGE: &[u8] =
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";

/// Tokens kept per line (memcached's `MAX_TOKENS` is 24; storage commands need 7).
const MAX_TOKENS: usize = 8;

/// One ASCII connection's state.
#[derive(Debug, Clone, Default)]
pub struct Ascii {
    limits: Limits,
    /// Data bytes of a refused (too large) item still to be dropped.
    swallow: usize,
}

enum Step {
    /// The command line and `n` more bytes were consumed.
    Done(usize),
    /// The data block is not all here yet.
    NeedData,
    /// Close the connection after the line.
    Close,
}

struct Line<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    n: usize,
}

impl<'a> Line<'a> {
    fn new(line: &'a [u8]) -> Self {
        let mut toks: [&[u8]; MAX_TOKENS] = [&[]; MAX_TOKENS];
        let mut n = 0;
        for t in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
            if n < MAX_TOKENS {
                toks[n] = t;
            }
            n += 1;
        }
        Self { toks, n }
    }

    fn noreply(&self) -> bool {
        self.n <= MAX_TOKENS && self.n > 0 && self.toks[self.n - 1] == b"noreply"
    }
}

impl Ascii {
    /// A connection with these limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits, swallow: 0 }
    }

    fn command<B: Backend>(
        &mut self,
        raw: &[u8],
        after: &[u8],
        out: &mut Vec<u8>,
        b: &mut B,
        now: Clock,
    ) -> Step {
        // The commonest command, one key: no need to split the line twice.
        if let Some(key) = raw.strip_prefix(b"get ")
            && !key.is_empty()
            && !key.contains(&b' ')
        {
            get(raw, false, None, self.limits.max_reply, out, b, now);
            return Step::Done(0);
        }
        let line = Line::new(raw);
        let t = &line.toks;
        let reply = |out: &mut Vec<u8>, s: &[u8]| {
            if !line.noreply() {
                out.extend_from_slice(s);
            }
        };
        match (t[0], line.n) {
            (b"get" | b"gets", 2..) => get(raw, false, None, self.limits.max_reply, out, b, now),
            (b"gat" | b"gats", 3..) => match mc_strtol32(t[1]) {
                Some(e) => get(
                    raw,
                    true,
                    Some(Deadline::from_memcached(e.into(), now)),
                    self.limits.max_reply,
                    out,
                    b,
                    now,
                ),
                None => out.extend_from_slice(BAD_EXPTIME),
            },
            (b"set" | b"add" | b"replace" | b"append" | b"prepend", 5 | 6) | (b"cas", 6 | 7) => {
                return self.update(&line, after, out, b, now);
            }
            (b"delete", 2..=4) => {
                let zero = line.n >= 3 && t[2] == b"0";
                let ok = line.n == 2
                    || (line.n == 3 && (zero || line.noreply()))
                    || (line.n == 4 && zero && line.noreply());
                if t[1].len() > KEY_MAX_LENGTH {
                    out.extend_from_slice(BAD_FORMAT);
                } else if !ok {
                    out.extend_from_slice(DELETE_USAGE);
                } else {
                    let r = b.with_key(t[1], |s| s.delete(t[1], 0, now));
                    reply(
                        out,
                        if r.is_ok() {
                            b"DELETED\r\n"
                        } else {
                            b"NOT_FOUND\r\n"
                        },
                    );
                }
            }
            (b"incr" | b"decr", 3 | 4) => {
                if t[1].len() > KEY_MAX_LENGTH {
                    out.extend_from_slice(BAD_FORMAT);
                } else if let Some(delta) = mc_strtoull(t[2]) {
                    let incr = t[0] == b"incr";
                    match b.with_key(t[1], |s| s.incr_decr(t[1], delta, incr, 0, now)) {
                        Ok((v, _)) => {
                            if !line.noreply() {
                                push_u64(out, v);
                                out.extend_from_slice(b"\r\n");
                            }
                        }
                        Err(DeltaError::NonNumeric) => reply(out, NON_NUMERIC),
                        Err(_) => reply(out, b"NOT_FOUND\r\n"),
                    }
                } else {
                    reply(out, BAD_DELTA);
                }
            }
            (b"touch", 3 | 4) => {
                if t[1].len() > KEY_MAX_LENGTH {
                    out.extend_from_slice(BAD_FORMAT);
                } else if let Some(e) = mc_strtol32(t[2]) {
                    let d = Deadline::from_memcached(e.into(), now);
                    let hit = b.with_key(t[1], |s| s.touch(t[1], d, now));
                    reply(
                        out,
                        if hit {
                            b"TOUCHED\r\n"
                        } else {
                            b"NOT_FOUND\r\n"
                        },
                    );
                } else {
                    reply(out, BAD_EXPTIME);
                }
            }
            (b"flush_all", 1..=3) => {
                let delay = if line.n >= 2 && t[1] != b"noreply" {
                    mc_strtol32(t[1])
                } else {
                    Some(0)
                };
                match delay {
                    Some(d) => {
                        let at = if d <= 0 {
                            Deadline::EXPIRED
                        } else {
                            Deadline::from_memcached(d.into(), now)
                        };
                        b.for_each_store(|s| s.flush(at, now));
                        reply(out, b"OK\r\n");
                    }
                    None => reply(out, BAD_EXPTIME),
                }
            }
            (b"version", 1) => {
                out.extend_from_slice(b"VERSION ");
                out.extend_from_slice(VERSION.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            (b"verbosity", 2 | 3) => reply(out, b"OK\r\n"),
            (b"stats", 1) => {
                stats_list(b, now, |k, v| {
                    out.extend_from_slice(b"STAT ");
                    out.extend_from_slice(k.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(v);
                    out.extend_from_slice(b"\r\n");
                });
                out.extend_from_slice(b"END\r\n");
            }
            (b"quit", 1) => return Step::Close,
            _ => out.extend_from_slice(ERROR),
        }
        Step::Done(0)
    }

    fn update<B: Backend>(
        &mut self,
        line: &Line<'_>,
        after: &[u8],
        out: &mut Vec<u8>,
        b: &mut B,
        now: Clock,
    ) -> Step {
        let t = &line.toks;
        let key = t[1];
        let parsed = (
            mc_strtoul32(t[2]),
            mc_strtol32(t[3]),
            mc_strtol32(t[4]),
            if t[0] == b"cas" {
                mc_strtoull(t[5])
            } else {
                Some(0)
            },
        );
        let (Some(flags), Some(exptime), Some(len), Some(cas)) = parsed else {
            out.extend_from_slice(BAD_FORMAT);
            return Step::Done(0);
        };
        if key.len() > KEY_MAX_LENGTH || len < 0 {
            out.extend_from_slice(BAD_FORMAT);
            return Step::Done(0);
        }
        let len = len as usize;
        let noreply = line.noreply();
        if b.item_size_max() < crate::store::item_cost(key.len(), len) {
            out.extend_from_slice(TOO_LARGE);
            self.swallow = len + 2;
            if t[0] == b"set" {
                b.with_key(key, |s| s.remove(key, now));
            }
            return Step::Done(0);
        }
        if after.len() < len + 2 {
            return Step::NeedData;
        }
        let (data, end) = after[..len + 2].split_at(len);
        if end != b"\r\n" {
            out.extend_from_slice(BAD_CHUNK);
            return Step::Done(len + 2);
        }
        let mode = match t[0] {
            b"add" => Mode::Add,
            b"replace" => Mode::Replace,
            b"append" => Mode::Append,
            b"prepend" => Mode::Prepend,
            b"cas" => Mode::Cas(cas),
            _ => Mode::Set,
        };
        let deadline = Deadline::from_memcached(exptime.into(), now);
        let r = b.with_key(key, |s| s.store(mode, key, data, flags, deadline, now));
        let msg: &[u8] = match (r, mode) {
            (Outcome::Stored(_), _) => b"STORED\r\n",
            (Outcome::NotStored, _) => b"NOT_STORED\r\n",
            (Outcome::Exists, _) => b"EXISTS\r\n",
            (Outcome::NotFound, _) => b"NOT_FOUND\r\n",
            (Outcome::TooLarge, _) => TOO_LARGE,
        };
        if !noreply {
            out.extend_from_slice(msg);
        }
        Step::Done(len + 2)
    }
}

/// get/gets/gat/gats: a VALUE block per live key, then END. A key over 250 bytes makes the
/// whole reply `CLIENT_ERROR bad command line format`.
fn get<B: Backend>(
    raw: &[u8],
    touch: bool,
    deadline: Option<Deadline>,
    max_reply: usize,
    out: &mut Vec<u8>,
    b: &mut B,
    now: Clock,
) {
    let mut toks = raw.split(|&c| c == b' ').filter(|t| !t.is_empty());
    let cmd = toks.next().unwrap_or_default();
    let with_cas = cmd.ends_with(b"s");
    if touch {
        toks.next();
    }
    let start = out.len();
    for key in toks {
        if key.len() > KEY_MAX_LENGTH {
            // memcached drops the values already gathered for this command.
            out.truncate(start);
            out.extend_from_slice(BAD_FORMAT);
            return;
        }
        let over = b.with_key(key, |s| {
            let Some(it) = s.get(key, now) else {
                return false;
            };
            // The value line and the data (flags and lengths take at most 64 bytes).
            if out.len() - start + key.len() + it.value.len() + 64 > max_reply {
                return true;
            }
            if let Some(d) = deadline {
                it.deadline = d;
            }
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(key);
            out.push(b' ');
            push_u64(out, it.flags.into());
            out.push(b' ');
            push_u64(out, it.value.len() as u64);
            if with_cas {
                out.push(b' ');
                push_u64(out, it.cas);
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&it.value);
            out.extend_from_slice(b"\r\n");
            false
        });
        if over {
            // memcached's answer when it cannot buffer a get's reply.
            out.truncate(start);
            out.extend_from_slice(b"SERVER_ERROR out of memory writing get response\r\n");
            return;
        }
    }
    out.extend_from_slice(b"END\r\n");
}

impl Framed for Ascii {
    fn swallow(&mut self) -> &mut usize {
        &mut self.swallow
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn step<B: Backend>(&mut self, rest: &[u8], out: &mut Vec<u8>, b: &mut B, now: Clock) -> Frame {
        let max_line = self.limits.max_line;
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            // An over-long line without its end closes the connection.
            return if rest.len() > max_line {
                Frame::Close(rest.len())
            } else {
                Frame::Need
            };
        };
        if nl > max_line {
            return Frame::Close(rest.len());
        }
        let raw = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
        match self.command(raw, &rest[nl + 1..], out, b, now) {
            Step::Done(extra) => Frame::Consumed(nl + 1 + extra),
            Step::NeedData => Frame::Need,
            Step::Close => Frame::Close(nl + 1),
        }
    }
}

impl Codec for Ascii {
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
