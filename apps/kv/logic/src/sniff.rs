//! Which protocol a connection speaks, told from its first bytes, for a port that serves
//! Redis and memcached both (the guest has one TCP listener):
//!
//! - `*` is RESP (a multibulk command: what `redis-cli`, `redis-benchmark` and every Redis
//!   client library send);
//! - 0x80 is memcached's binary protocol;
//! - otherwise the first word decides: memcached's ASCII commands are lowercase and memcached
//!   knows no other spelling (`GET` is an `ERROR` there), so a first word that is exactly one
//!   of [`MEMCACHED_COMMANDS`] is memcached ASCII, and anything else is a Redis *inline*
//!   command (`PING`, `ping`, `SET k v`, typed at telnet; Redis ignores case). The one overlap,
//!   a lowercase inline command that memcached also has (`get k`, `set ...`, `incr k`), reads
//!   as memcached: start the guest with `proto=resp` to serve Redis only.
//!
//! Blank lines before the first word are skipped over for the decision (they stay in the input
//! for the codec).

/// The protocols a shared port tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp,
    Memcache,
}

/// memcached's ASCII commands (the classic ones and the meta commands).
pub const MEMCACHED_COMMANDS: &[&[u8]] = &[
    b"get",
    b"gets",
    b"gat",
    b"gats",
    b"set",
    b"add",
    b"replace",
    b"append",
    b"prepend",
    b"cas",
    b"delete",
    b"incr",
    b"decr",
    b"touch",
    b"flush_all",
    b"version",
    b"stats",
    b"verbosity",
    b"quit",
    b"mg",
    b"ms",
    b"md",
    b"mn",
    b"ma",
    b"me",
];

/// Words longer than this cannot be a memcached command: decided without waiting for more.
const LONGEST: usize = 16;

/// The protocol of a connection whose first received bytes are `input`; `None` while that
/// cannot be told yet (nothing but blank lines, or a first word still arriving).
pub fn sniff(input: &[u8]) -> Option<Protocol> {
    let start = input.iter().position(|&c| c != b'\r' && c != b'\n')?;
    let rest = &input[start..];
    match rest[0] {
        b'*' => return Some(Protocol::Resp),
        0x80 => return Some(Protocol::Memcache),
        _ => {}
    }
    let end = rest
        .iter()
        .position(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
    let word = match end {
        Some(e) => &rest[..e],
        None if rest.len() <= LONGEST => return None,
        None => return Some(Protocol::Resp),
    };
    if MEMCACHED_COMMANDS.contains(&word) {
        Some(Protocol::Memcache)
    } else {
        Some(Protocol::Resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn first_bytes_decide() {
        use Protocol::*;
        for (input, want) in [
            (&b""[..], None),
            (b"\r\n\r\n", None),
            (b"ge", None),
            (b"get", None),
            (b"*1\r\n$4\r\nPING\r\n", Some(Resp)),
            (b"*", Some(Resp)),
            (b"\x80\x00", Some(Memcache)),
            (b"get k\r\n", Some(Memcache)),
            (b"gets a b\r\n", Some(Memcache)),
            (b"\r\nset k 0 0 1\r\nx\r\n", Some(Memcache)),
            (b"stats\r\n", Some(Memcache)),
            (b"quit\n", Some(Memcache)),
            (b"mg k v\r\n", Some(Memcache)),
            (b"PING\r\n", Some(Resp)),
            (b"ping\r\n", Some(Resp)),
            (b"GET k\r\n", Some(Resp)),
            (b"Set k v\r\n", Some(Resp)),
            (b"INCR n\r\n", Some(Resp)),
            (b"getx k\r\n", Some(Resp)),
            (b"\x01\x02 garbage\r\n", Some(Resp)),
            (b"averyveryverylongword", Some(Resp)),
        ] {
            assert_eq!(sniff(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn a_prefix_never_decides_differently_from_the_whole() {
        for whole in [
            &b"get k\r\n"[..],
            b"PING\r\n",
            b"flush_all\r\n",
            b"\r\nverbosity 1\r\n",
            b"flush_allx\r\n",
        ] {
            let full = sniff(whole);
            for n in 0..whole.len() {
                if let Some(p) = sniff(&whole[..n]) {
                    assert_eq!(Some(p), full, "{:?} at {n}", String::from_utf8_lossy(whole));
                }
            }
        }
    }
}
