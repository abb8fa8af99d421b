//! The Redis command table: name, arity (Redis's convention: `n` exactly n arguments counting
//! the name, `-n` at least n), whether the command only reads (R2P2's read policy, HovercRaft
//! later), and the flags COMMAND reports.

/// One command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Lowercase name, as Redis prints it in errors.
    pub name: &'static str,
    /// Arity in Redis's convention.
    pub arity: i32,
    /// Reads only (never changes the store).
    pub readonly: bool,
    /// The first key argument (0: none), for COMMAND.
    pub first_key: i32,
    /// The last key argument (-1: the last argument), for COMMAND.
    pub last_key: i32,
    /// The step between key arguments, for COMMAND.
    pub step: i32,
}

const fn c(name: &'static str, arity: i32, readonly: bool, keys: (i32, i32, i32)) -> Spec {
    Spec {
        name,
        arity,
        readonly,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
    }
}

const NONE: (i32, i32, i32) = (0, 0, 0);
const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);

/// Every command served.
pub const COMMANDS: &[Spec] = &[
    c("get", 2, true, ONE),
    c("set", -3, false, ONE),
    c("setnx", 3, false, ONE),
    c("setex", 4, false, ONE),
    c("psetex", 4, false, ONE),
    c("getset", 3, false, ONE),
    c("getdel", 2, false, ONE),
    c("append", 3, false, ONE),
    c("strlen", 2, true, ONE),
    c("del", -2, false, ALL),
    c("unlink", -2, false, ALL),
    c("exists", -2, true, ALL),
    c("type", 2, true, ONE),
    c("incr", 2, false, ONE),
    c("decr", 2, false, ONE),
    c("incrby", 3, false, ONE),
    c("decrby", 3, false, ONE),
    c("mget", -2, true, ALL),
    c("mset", -3, false, (1, -1, 2)),
    c("expire", -3, false, ONE),
    c("pexpire", -3, false, ONE),
    c("persist", 2, false, ONE),
    c("ttl", 2, true, ONE),
    c("pttl", 2, true, ONE),
    c("keys", 2, true, NONE),
    c("dbsize", 1, true, NONE),
    c("flushdb", -1, false, NONE),
    c("flushall", -1, false, NONE),
    c("info", -1, true, NONE),
    c("select", 2, true, NONE),
    c("ping", -1, true, NONE),
    c("echo", 2, true, NONE),
    c("command", -1, true, NONE),
    c("config", -2, true, NONE),
    c("client", -2, true, NONE),
    c("quit", -1, true, NONE),
];

/// The spec of a command name (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether the argument count fits the arity.
pub fn arity_ok(spec: &Spec, argc: usize) -> bool {
    let argc = argc as i64;
    let a = i64::from(spec.arity);
    if a >= 0 { argc == a } else { argc >= -a }
}

/// Whether a command (by name) only reads. Unknown commands are not read-only.
pub fn is_read_only(name: &[u8]) -> bool {
    lookup(name).is_some_and(|s| s.readonly)
}
