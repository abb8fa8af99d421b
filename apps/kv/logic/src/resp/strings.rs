//! The Redis data commands on the shared store: strings (GET, SET with its options, SETNX,
//! SETEX, PSETEX, GETSET, GETDEL, APPEND, STRLEN, MGET, MSET), counters (INCR, DECR, INCRBY,
//! DECRBY) and keys (DEL, UNLINK, EXISTS, TYPE, EXPIRE, PEXPIRE, PERSIST, TTL, PTTL, KEYS,
//! DBSIZE, FLUSHDB, FLUSHALL). Redis strings are items with flags 0 (see the crate doc).

use crate::expiry::{Clock, Deadline};
use crate::numeric::redis_i64;
use crate::ops::DeltaError;
use crate::resp::glob;
use crate::resp::reply;
use crate::sharded::Backend;
use alloc::vec::Vec;

const NOT_INT: &[u8] = b"ERR value is not an integer or out of range";
const SYNTAX: &[u8] = b"ERR syntax error";
const TOO_BIG: &[u8] = b"ERR string exceeds maximum allowed size (proto-max-bulk-len)";

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn now_ms(now: Clock) -> i64 {
    (now.now_ns / 1_000_000) as i64
}

fn invalid_expire(out: &mut Vec<u8>, cmd: &str) {
    let mut m = Vec::new();
    m.extend_from_slice(b"ERR invalid expire time in '");
    m.extend_from_slice(cmd.as_bytes());
    m.extend_from_slice(b"' command");
    reply::error(out, &m);
}

/// A relative expiry (`ms` milliseconds, or seconds when `secs`) as Redis validates it for
/// SET/SETEX/PSETEX: must be > 0 and must not overflow once made absolute.
fn set_expiry(v: &[u8], secs: bool, cmd: &str, out: &mut Vec<u8>, now: Clock) -> Option<Deadline> {
    let Some(n) = redis_i64(v) else {
        reply::error(out, NOT_INT);
        return None;
    };
    let ms = if secs { n.checked_mul(1000) } else { Some(n) };
    match ms.filter(|&m| n > 0 && m.checked_add(now_ms(now)).is_some()) {
        Some(m) => Some(Deadline::after_ms(m as u64, now)),
        None => {
            invalid_expire(out, cmd);
            None
        }
    }
}

/// Store `value` with flags 0; false (and an error reply) if it can never fit.
fn put<B: Backend>(
    b: &mut B,
    key: &[u8],
    value: &[u8],
    d: Deadline,
    out: &mut Vec<u8>,
    now: Clock,
) -> bool {
    let ok = b.with_key(key, |s| s.insert(key, value.to_vec(), 0, d, now).is_some());
    if !ok {
        reply::error(out, TOO_BIG);
    }
    ok
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|KEEPTTL].
pub fn set<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let (key, value) = (args[1], args[2]);
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expire: Option<(&[u8], bool)> = None;
    let mut i = 3;
    while i < args.len() {
        let o = args[i];
        let next = args.get(i + 1).copied();
        if eq(o, "nx") && !xx {
            nx = true;
        } else if eq(o, "xx") && !nx {
            xx = true;
        } else if eq(o, "get") {
            get = true;
        } else if eq(o, "keepttl") && expire.is_none() {
            keepttl = true;
        } else if (eq(o, "ex") || eq(o, "px"))
            && expire.is_none_or(|(_, secs)| secs == eq(o, "ex"))
            && !keepttl
            && next.is_some()
        {
            // Redis lets the same unit repeat (the last one counts), not two different ones.
            expire = next.map(|n| (n, eq(o, "ex")));
            i += 1;
        } else {
            reply::error(out, SYNTAX);
            return;
        }
        i += 1;
    }
    let deadline = match expire {
        Some((v, secs)) => match set_expiry(v, secs, "set", out, now) {
            Some(d) => Some(d),
            None => return,
        },
        None => None,
    };
    let old = b.with_key(key, |s| {
        s.peek(key, now).map(|it| (it.value.clone(), it.deadline))
    });
    let go = !(nx && old.is_some() || xx && old.is_none());
    if go {
        let d = match (deadline, keepttl, &old) {
            (Some(d), ..) => d,
            (None, true, Some((_, d))) => *d,
            _ => Deadline::Never,
        };
        if !put(b, key, value, d, out, now) {
            return;
        }
    }
    match (get, old) {
        (true, Some((v, _))) => reply::bulk(out, &v),
        (true, None) => reply::null(out),
        (false, _) if go => reply::ok(out),
        (false, _) => reply::null(out),
    }
}

/// SETNX, SETEX, PSETEX.
pub fn set_variant<B: Backend>(
    cmd: &str,
    args: &[&[u8]],
    out: &mut Vec<u8>,
    b: &mut B,
    now: Clock,
) {
    let key = args[1];
    if cmd == "setnx" {
        let present = b.with_key(key, |s| s.peek(key, now).is_some());
        if present {
            reply::int(out, 0);
        } else if put(b, key, args[2], Deadline::Never, out, now) {
            reply::int(out, 1);
        }
        return;
    }
    let Some(d) = set_expiry(args[2], cmd == "setex", cmd, out, now) else {
        return;
    };
    if put(b, key, args[3], d, out, now) {
        reply::ok(out);
    }
}

/// GET, GETSET, GETDEL, STRLEN, TYPE.
pub fn read<B: Backend>(cmd: &str, args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let key = args[1];
    let v = b.with_key(key, |s| s.get(key, now).map(|it| it.value.clone()));
    match cmd {
        "strlen" => reply::int(out, v.map_or(0, |v| v.len() as i64)),
        "type" => reply::simple(out, if v.is_some() { b"string" } else { b"none" }),
        "getset" => {
            if put(b, key, args[2], Deadline::Never, &mut Vec::new(), now) {
                reply::opt_bulk(out, v.as_deref());
            } else {
                reply::error(out, TOO_BIG);
            }
        }
        _ => {
            if cmd == "getdel" && v.is_some() {
                b.with_key(key, |s| s.remove(key, now));
            }
            reply::opt_bulk(out, v.as_deref());
        }
    }
}

/// APPEND key value: the new length; the deadline is kept.
pub fn append<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let key = args[1];
    let r = b.with_key(key, |s| {
        let (mut v, flags, d) = match s.peek(key, now) {
            Some(it) => (core::mem::take(&mut it.value), it.flags, it.deadline),
            None => (Vec::new(), 0, Deadline::Never),
        };
        v.extend_from_slice(args[2]);
        let n = v.len();
        s.insert(key, v, flags, d, now).map(|_| n)
    });
    match r {
        Some(n) => reply::int(out, n as i64),
        None => reply::error(out, TOO_BIG),
    }
}

/// INCR, DECR, INCRBY, DECRBY.
pub fn incr<B: Backend>(cmd: &str, args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let key = args[1];
    let delta = match cmd {
        "incr" => 1,
        "decr" => -1,
        _ => match redis_i64(args[2]) {
            Some(d) if cmd == "incrby" => d,
            Some(d) => match d.checked_neg() {
                Some(n) => n,
                None => return reply::error(out, b"ERR decrement would overflow"),
            },
            None => return reply::error(out, NOT_INT),
        },
    };
    match b.with_key(key, |s| s.redis_incr(key, delta, now)) {
        Ok(n) => reply::int(out, n),
        Err(DeltaError::Overflow) => {
            reply::error(out, b"ERR increment or decrement would overflow")
        }
        Err(_) => reply::error(out, NOT_INT),
    }
}

/// MGET key..., its reply at most `max_reply` bytes (else an error, nothing else).
pub fn mget<B: Backend>(
    args: &[&[u8]],
    out: &mut Vec<u8>,
    b: &mut B,
    now: Clock,
    max_reply: usize,
) {
    let start = out.len();
    reply::array(out, args.len() - 1);
    for &key in &args[1..] {
        let over = b.with_key(key, |s| match s.get(key, now) {
            Some(it) if out.len() - start + it.value.len() + 32 > max_reply => true,
            Some(it) => {
                reply::bulk(out, &it.value);
                false
            }
            None => {
                reply::null(out);
                false
            }
        });
        if over {
            out.truncate(start);
            return reply::error(out, REPLY_TOO_LARGE);
        }
    }
}

/// MGET's answer when its reply would pass the per-command limit.
pub const REPLY_TOO_LARGE: &[u8] =
    b"ERR reply too large: the values asked for exceed the server's per-command reply limit";

/// MSET key value [key value ...]. Each pair is stored under its shard's lock in turn: not
/// atomic across shards (the one difference from Redis, see the crate doc).
pub fn mset<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    if args.len().is_multiple_of(2) {
        return reply::arity(out, "mset");
    }
    if args[1..]
        .chunks(2)
        .any(|kv| !b.with_key(kv[0], |s| s.fits(kv[0].len(), kv[1].len())))
    {
        return reply::error(out, TOO_BIG);
    }
    for kv in args[1..].chunks(2) {
        put(b, kv[0], kv[1], Deadline::Never, out, now);
    }
    reply::ok(out);
}

/// DEL/UNLINK (count removed) and EXISTS (count present, repeats counted).
pub fn del_exists<B: Backend>(cmd: &str, args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let mut n = 0;
    for &key in &args[1..] {
        let hit = b.with_key(key, |s| {
            if cmd == "exists" {
                s.peek(key, now).is_some()
            } else {
                s.remove(key, now).is_some()
            }
        });
        n += i64::from(hit);
    }
    reply::int(out, n);
}

/// EXPIRE/PEXPIRE key time [NX|XX|GT|LT].
pub fn expire<B: Backend>(cmd: &str, args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for &o in &args[3..] {
        match () {
            _ if eq(o, "nx") => nx = true,
            _ if eq(o, "xx") => xx = true,
            _ if eq(o, "gt") => gt = true,
            _ if eq(o, "lt") => lt = true,
            _ => {
                let mut m = b"ERR Unsupported option ".to_vec();
                m.extend_from_slice(o);
                return reply::error(out, &m);
            }
        }
    }
    if nx && (xx || gt || lt) {
        return reply::error(
            out,
            b"ERR NX and XX, GT or LT options at the same time are not compatible",
        );
    }
    if gt && lt {
        return reply::error(
            out,
            b"ERR GT and LT options at the same time are not compatible",
        );
    }
    let Some(n) = redis_i64(args[2]) else {
        return reply::error(out, NOT_INT);
    };
    let ms = if cmd == "expire" {
        n.checked_mul(1000)
    } else {
        Some(n)
    };
    let Some(when) = ms.and_then(|m| m.checked_add(now_ms(now))) else {
        return invalid_expire(out, cmd);
    };
    let key = args[1];
    let r = b.with_key(key, |s| {
        let cur = s.deadline(key, now)?;
        let cur_ms = match cur {
            Deadline::Never => None,
            Deadline::At(at) => Some((at / 1_000_000) as i64),
        };
        let allowed = match () {
            _ if nx => cur_ms.is_none(),
            _ if xx && cur_ms.is_none() => false,
            _ if gt => cur_ms.is_some_and(|c| when > c),
            _ if lt => cur_ms.is_none_or(|c| when < c),
            _ => true,
        };
        if !allowed {
            return Some(false);
        }
        if when <= now_ms(now) {
            s.remove(key, now);
        } else {
            s.set_deadline(key, Deadline::At(when as u64 * 1_000_000), now);
        }
        Some(true)
    });
    reply::int(out, i64::from(r == Some(true)));
}

/// PERSIST key: 1 if a deadline was removed.
pub fn persist<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let key = args[1];
    let had = b.with_key(key, |s| match s.deadline(key, now) {
        Some(Deadline::At(_)) => s.set_deadline(key, Deadline::Never, now),
        _ => false,
    });
    reply::int(out, i64::from(had));
}

/// TTL/PTTL: -2 absent, -1 no deadline, else the time left (TTL rounds to the nearest second).
pub fn ttl<B: Backend>(cmd: &str, args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let key = args[1];
    let r = match b.with_key(key, |s| s.deadline(key, now)) {
        None => -2,
        Some(Deadline::Never) => -1,
        Some(d) => {
            let ms = (d.remaining_ns(now).unwrap_or(0) / 1_000_000) as i64;
            if cmd == "ttl" { (ms + 500) / 1000 } else { ms }
        }
    };
    reply::int(out, r);
}

/// KEYS pattern (order unspecified, as in Redis).
pub fn keys<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let pat = args[1];
    // Redis lists every key for a lone `*` without matching (so the empty key is included).
    let all = pat == b"*";
    let mut found: Vec<Vec<u8>> = Vec::new();
    b.for_each_store(|s| {
        s.for_each_live(now, |it| {
            if all || glob::matches(pat, &it.key, false) {
                found.push(it.key.to_vec());
            }
        })
    });
    reply::array(out, found.len());
    for k in &found {
        reply::bulk(out, k);
    }
}

/// DBSIZE: live keys.
pub fn dbsize<B: Backend>(out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let mut n = 0;
    b.for_each_store(|s| n += s.count_live(now).0);
    reply::int(out, n as i64);
}

/// FLUSHDB/FLUSHALL [ASYNC|SYNC].
pub fn flush<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B) {
    if args.len() > 2
        || args
            .get(1)
            .is_some_and(|a| !eq(a, "async") && !eq(a, "sync"))
    {
        return reply::error(out, SYNTAX);
    }
    b.for_each_store(|s| s.clear());
    reply::ok(out);
}
