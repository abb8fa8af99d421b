//! RESP2, the Redis protocol, on the shared store: [`Resp`] is a connection's codec (streaming
//! parse of multibulk and inline commands, pipelining, back-pressure), [`execute`] runs one
//! parsed command (also used by [`crate::r2p2`]). Error strings are Redis 7.0's, checked
//! against the real server by tests/diff_redis.rs.

pub mod admin;
pub mod glob;
pub mod parse;
pub mod reply;
pub mod strings;
pub mod table;

use crate::conn::{Codec, Limits, Progress};
use crate::expiry::Clock;
use crate::sharded::Backend;
use alloc::vec::Vec;
use parse::{Parsed, parse};
use table::{arity_ok, lookup};

/// Run one command (`args[0]` the name). Returns true if the connection should close after
/// the reply (QUIT).
pub fn execute<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B, now: Clock) -> bool {
    execute_limited(args, out, b, now, crate::conn::DEFAULT_MAX_REPLY)
}

/// [`execute`] with a multi-key read's reply bounded by `max_reply` bytes
/// ([`Limits::max_reply`](crate::Limits)).
pub fn execute_limited<B: Backend>(
    args: &[&[u8]],
    out: &mut Vec<u8>,
    b: &mut B,
    now: Clock,
    max_reply: usize,
) -> bool {
    let Some(spec) = args.first().and_then(|n| lookup(n)) else {
        reply::unknown_command(out, args);
        return false;
    };
    if !arity_ok(spec, args.len()) {
        reply::arity(out, spec.name);
        return false;
    }
    let name = spec.name;
    match name {
        "get" | "getset" | "getdel" | "strlen" | "type" => strings::read(name, args, out, b, now),
        "set" => strings::set(args, out, b, now),
        "setnx" | "setex" | "psetex" => strings::set_variant(name, args, out, b, now),
        "append" => strings::append(args, out, b, now),
        "incr" | "decr" | "incrby" | "decrby" => strings::incr(name, args, out, b, now),
        "mget" => strings::mget(args, out, b, now, max_reply),
        "mset" => strings::mset(args, out, b, now),
        "del" | "unlink" | "exists" => strings::del_exists(name, args, out, b, now),
        "expire" | "pexpire" => strings::expire(name, args, out, b, now),
        "persist" => strings::persist(args, out, b, now),
        "ttl" | "pttl" => strings::ttl(name, args, out, b, now),
        "keys" => strings::keys(args, out, b, now),
        "dbsize" => strings::dbsize(out, b, now),
        "flushdb" | "flushall" => strings::flush(args, out, b),
        "info" => admin::info(out, b, now),
        "select" => admin::select(args, out),
        "ping" => admin::ping(args, out),
        "echo" => reply::bulk(out, args[1]),
        "command" => admin::command(args, out),
        "config" => admin::config(args, out, b),
        "client" => admin::client(args, out),
        _ => {
            // quit
            reply::ok(out);
            return true;
        }
    }
    false
}

/// One RESP connection.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    limits: Limits,
}

impl Resp {
    /// A connection with these limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl Codec for Resp {
    fn feed<B: Backend>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        b: &mut B,
        now: Clock,
    ) -> Progress {
        let mut p = Progress::default();
        let max_bulk = b.item_size_max();
        while p.consumed < input.len() {
            if out.len() >= self.limits.max_output {
                p.blocked = true;
                break;
            }
            match parse(&input[p.consumed..], max_bulk) {
                Parsed::Incomplete => break,
                Parsed::Nothing(n) => p.consumed += n,
                Parsed::Error(e) => {
                    reply::error(out, e.as_bytes());
                    p.consumed = input.len();
                    p.close = true;
                    break;
                }
                Parsed::Command(args, n) => {
                    p.consumed += n;
                    let argv: Vec<&[u8]> = args.iter().map(|a| &**a).collect();
                    if execute_limited(&argv, out, b, now, self.limits.max_reply) {
                        p.close = true;
                        break;
                    }
                }
            }
        }
        p
    }
}
