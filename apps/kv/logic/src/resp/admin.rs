//! The connection and server commands: PING, ECHO, SELECT (database 0 only), INFO, COMMAND
//! (COUNT, DOCS, INFO, LIST: what redis-cli asks at connect), CONFIG GET (what
//! redis-benchmark asks at connect: `save`, `appendonly`), CONFIG SET/RESETSTAT, CLIENT.

use crate::expiry::Clock;
use crate::numeric::push_u64;
use crate::resp::glob;
use crate::resp::reply;
use crate::resp::table::{COMMANDS, Spec, lookup};
use crate::sharded::Backend;
use alloc::vec::Vec;

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn unknown_sub(out: &mut Vec<u8>, sub: &[u8], cmd: &str) {
    let mut m = b"ERR unknown subcommand '".to_vec();
    m.extend_from_slice(&sub[..sub.len().min(128)]);
    m.extend_from_slice(b"'. Try ");
    m.extend_from_slice(cmd.as_bytes());
    m.extend_from_slice(b" HELP.");
    reply::error(out, &m);
}

/// PING [message].
pub fn ping(args: &[&[u8]], out: &mut Vec<u8>) {
    match args.len() {
        1 => reply::simple(out, b"PONG"),
        2 => reply::bulk(out, args[1]),
        _ => reply::arity(out, "ping"),
    }
}

/// SELECT index: only database 0 exists.
pub fn select(args: &[&[u8]], out: &mut Vec<u8>) {
    match crate::numeric::redis_i64(args[1]) {
        None => reply::error(out, b"ERR value is not an integer or out of range"),
        Some(0) => reply::ok(out),
        Some(_) => reply::error(out, b"ERR DB index is out of range"),
    }
}

/// INFO [section]: a few Redis-named fields (server, clients, memory, stats, keyspace).
pub fn info<B: Backend>(out: &mut Vec<u8>, b: &mut B, now: Clock) {
    let (s, items, bytes) = b.totals();
    let mut with_ttl = 0;
    b.for_each_store(|st| with_ttl += st.count_live(now).1);
    let mut t = Vec::with_capacity(512);
    let field = |t: &mut Vec<u8>, k: &str, v: u64| {
        t.extend_from_slice(k.as_bytes());
        t.push(b':');
        push_u64(t, v);
        t.extend_from_slice(b"\r\n");
    };
    t.extend_from_slice(b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n");
    t.extend_from_slice(b"server_name:ferrix-kv\r\n");
    field(&mut t, "uptime_in_seconds", now.now_ns / 1_000_000_000);
    t.extend_from_slice(b"\r\n# Memory\r\n");
    field(&mut t, "used_memory", bytes as u64);
    field(&mut t, "maxmemory", b.mem_limit() as u64);
    t.extend_from_slice(b"maxmemory_policy:allkeys-lru\r\n\r\n# Stats\r\n");
    field(&mut t, "keyspace_hits", s.get_hits);
    field(&mut t, "keyspace_misses", s.get_misses);
    field(&mut t, "evicted_keys", s.evictions);
    field(&mut t, "expired_keys", s.expired);
    t.extend_from_slice(b"\r\n# Keyspace\r\n");
    if items > 0 {
        t.extend_from_slice(b"db0:keys=");
        push_u64(&mut t, items as u64);
        t.extend_from_slice(b",expires=");
        push_u64(&mut t, with_ttl as u64);
        t.extend_from_slice(b",avg_ttl=0\r\n");
    }
    reply::bulk(out, &t);
}

fn command_entry(out: &mut Vec<u8>, s: &Spec) {
    reply::array(out, 10);
    reply::bulk(out, s.name.as_bytes());
    reply::int(out, s.arity.into());
    let flag: &[u8] = if s.readonly { b"readonly" } else { b"write" };
    reply::array(out, 1);
    reply::simple(out, flag);
    reply::int(out, s.first_key.into());
    reply::int(out, s.last_key.into());
    reply::int(out, s.step.into());
    for _ in 0..4 {
        reply::array(out, 0); // ACL categories, tips, key specs, subcommands
    }
}

/// COMMAND [COUNT | DOCS [name...] | INFO [name...] | LIST].
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    let Some(sub) = args.get(1) else {
        reply::array(out, COMMANDS.len());
        COMMANDS.iter().for_each(|s| command_entry(out, s));
        return;
    };
    if eq(sub, "count") && args.len() == 2 {
        reply::int(out, COMMANDS.len() as i64);
    } else if eq(sub, "docs") {
        // No documentation: an empty map (redis-cli then shows no hints).
        reply::array(out, 0);
    } else if eq(sub, "info") {
        let names = &args[2..];
        if names.is_empty() {
            reply::array(out, COMMANDS.len());
            COMMANDS.iter().for_each(|s| command_entry(out, s));
        } else {
            reply::array(out, names.len());
            for n in names {
                match lookup(n) {
                    Some(s) => command_entry(out, s),
                    None => reply::null(out),
                }
            }
        }
    } else if eq(sub, "list") && args.len() == 2 {
        reply::array(out, COMMANDS.len());
        COMMANDS
            .iter()
            .for_each(|s| reply::bulk(out, s.name.as_bytes()));
    } else {
        unknown_sub(out, sub, "COMMAND");
    }
}

/// CONFIG GET pattern... | SET | RESETSTAT.
pub fn config<B: Backend>(args: &[&[u8]], out: &mut Vec<u8>, b: &mut B) {
    let sub = args[1];
    if eq(sub, "get") {
        if args.len() < 3 {
            return reply::arity(out, "config|get");
        }
        let mut maxmem = Vec::new();
        push_u64(&mut maxmem, b.mem_limit() as u64);
        let params: [(&str, &[u8]); 5] = [
            ("save", b""),
            ("appendonly", b"no"),
            ("databases", b"1"),
            ("maxmemory", &maxmem),
            ("maxmemory-policy", b"allkeys-lru"),
        ];
        let hits: Vec<&(&str, &[u8])> = params
            .iter()
            .filter(|(k, _)| {
                args[2..]
                    .iter()
                    .any(|p| glob::matches(p, k.as_bytes(), true))
            })
            .collect();
        reply::array(out, hits.len() * 2);
        for (k, v) in hits {
            reply::bulk(out, k.as_bytes());
            reply::bulk(out, v);
        }
    } else if eq(sub, "set") {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return reply::arity(out, "config|set");
        }
        let mut m = b"ERR Unknown option or number of arguments for CONFIG SET - '".to_vec();
        m.extend_from_slice(&args[2][..args[2].len().min(128)]);
        m.push(b'\'');
        reply::error(out, &m);
    } else if eq(sub, "resetstat") && args.len() == 2 {
        reply::ok(out);
    } else {
        unknown_sub(out, sub, "CONFIG");
    }
}

/// CLIENT SETNAME/SETINFO (accepted, ignored), GETNAME (nil), ID (1).
pub fn client(args: &[&[u8]], out: &mut Vec<u8>) {
    let sub = args[1];
    if (eq(sub, "setname") && args.len() == 3) || (eq(sub, "setinfo") && args.len() == 4) {
        reply::ok(out);
    } else if eq(sub, "getname") && args.len() == 2 {
        reply::null(out);
    } else if eq(sub, "id") && args.len() == 2 {
        reply::int(out, 1);
    } else {
        unknown_sub(out, sub, "CLIENT");
    }
}
