//! RESP2 reply encoders: simple strings, errors, integers, bulk strings (and the null bulk),
//! array headers.

use crate::numeric::{push_i64, push_u64};
use alloc::vec::Vec;

/// `+OK`.
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// `+<s>`.
pub fn simple(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// `-<msg>`; `\r` and `\n` inside become spaces (as Redis's `addReplyErrorFormat`).
pub fn error(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(b'-');
    out.extend(
        msg.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `:<n>`.
pub fn int(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_i64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    push_u64(out, b.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// `$-1` (nil).
pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `*<n>`.
pub fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_u64(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// The reply to a command that does not exist (Redis 7's wording, including the trailing
/// space after the arguments; name and arguments are cut at 128 bytes as Redis does).
pub fn unknown_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let cut = |s: &[u8], n: usize| -> usize {
        let z = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        z.min(n)
    };
    let mut m = Vec::with_capacity(200);
    m.extend_from_slice(b"ERR unknown command '");
    let name = args.first().copied().unwrap_or_default();
    m.extend_from_slice(&name[..cut(name, 128)]);
    m.extend_from_slice(b"', with args beginning with: ");
    let mut len = 0;
    for a in args.iter().skip(1) {
        if len >= 128 {
            break;
        }
        let n = cut(a, 128 - len);
        m.push(b'\'');
        m.extend_from_slice(&a[..n]);
        m.extend_from_slice(b"' ");
        len += n + 3;
    }
    error(out, &m);
}

/// `ERR wrong number of arguments for '<name>' command`.
pub fn arity(out: &mut Vec<u8>, name: &str) {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"ERR wrong number of arguments for '");
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(b"' command");
    error(out, &m);
}

/// A bulk string, or nil for `None`.
pub fn opt_bulk(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => bulk(out, b),
        None => null(out),
    }
}
