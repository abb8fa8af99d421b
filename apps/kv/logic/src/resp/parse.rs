//! The RESP2 request parser: multibulk arrays (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) and inline
//! commands (a line split like Redis's `sdssplitargs`: spaces separate, `"..."` with `\n \r \t
//! \b \a \\ \" \xHH` escapes, `'...'` with `\'`). Errors are Redis 7's protocol errors, after
//! which Redis (and we) close the connection.

use alloc::borrow::Cow;
use alloc::vec::Vec;

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline command or count line.
pub const INLINE_MAX: usize = 64 * 1024;
/// Redis's limit on the number of elements of a request array.
pub const MULTIBULK_MAX: i64 = 1024 * 1024;

/// The result of parsing the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole command yet.
    Incomplete,
    /// A command and the bytes it took.
    Command(Vec<Cow<'a, [u8]>>, usize),
    /// Bytes that hold no command (an empty line, `*0`, `*-1`).
    Nothing(usize),
    /// A protocol error: reply with it and close.
    Error(&'static str),
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let cr = buf.get(from..)?.iter().position(|&c| c == b'\r')? + from;
    if cr + 1 >= buf.len() {
        return None;
    }
    Some((&buf[from..cr], cr + 2))
}

fn number(s: &[u8]) -> Option<i64> {
    crate::numeric::redis_i64(s)
}

/// Parse one command at the front of `buf`; bulk strings longer than `max_bulk` are refused.
pub fn parse(buf: &[u8], max_bulk: usize) -> Parsed<'_> {
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'*') => multibulk(buf, max_bulk),
        Some(_) => inline(buf),
    }
}

fn multibulk(buf: &[u8], max_bulk: usize) -> Parsed<'_> {
    let Some((count, mut pos)) = line(buf, 1) else {
        if buf.len() > INLINE_MAX {
            return Parsed::Error("ERR Protocol error: too big mbulk count string");
        }
        return Parsed::Incomplete;
    };
    let n = match number(count) {
        Some(n) if n <= MULTIBULK_MAX => n,
        _ => return Parsed::Error("ERR Protocol error: invalid multibulk length"),
    };
    if n <= 0 {
        return Parsed::Nothing(pos);
    }
    let mut args = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        match buf.get(pos) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(_) => return Parsed::Error(expected_dollar(buf[pos])),
        }
        let Some((len, data)) = line(buf, pos + 1) else {
            if buf.len() - pos > INLINE_MAX {
                return Parsed::Error("ERR Protocol error: too big bulk count string");
            }
            return Parsed::Incomplete;
        };
        let len = match number(len) {
            Some(l) if l >= 0 && (l as u64) <= max_bulk as u64 => l as usize,
            _ => return Parsed::Error("ERR Protocol error: invalid bulk length"),
        };
        // Redis skips the two bytes after the data without checking them.
        if buf.len() < data + len + 2 {
            return Parsed::Incomplete;
        }
        args.push(Cow::Borrowed(&buf[data..data + len]));
        pos = data + len + 2;
    }
    Parsed::Command(args, pos)
}

fn expected_dollar(c: u8) -> &'static str {
    // Redis prints the byte it found; we name the common ones and fall back to a generic form.
    match c {
        b':' => "ERR Protocol error: expected '$', got ':'",
        b'+' => "ERR Protocol error: expected '$', got '+'",
        b'-' => "ERR Protocol error: expected '$', got '-'",
        b'*' => "ERR Protocol error: expected '$', got '*'",
        b'\r' => "ERR Protocol error: expected '$', got '\r'",
        b'\n' => "ERR Protocol error: expected '$', got '\n'",
        b' ' => "ERR Protocol error: expected '$', got ' '",
        _ if c.is_ascii_digit() => "ERR Protocol error: expected '$', got a digit",
        _ => "ERR Protocol error: expected '$'",
    }
}

fn inline(buf: &[u8]) -> Parsed<'_> {
    let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Parsed::Error("ERR Protocol error: too big inline request");
        }
        return Parsed::Incomplete;
    };
    let l = &buf[..nl];
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    match split_args(l) {
        None => Parsed::Error("ERR Protocol error: unbalanced quotes in request"),
        Some(a) if a.is_empty() => Parsed::Nothing(nl + 1),
        Some(a) => Parsed::Command(a, nl + 1),
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `sdssplitargs`: `None` on unbalanced quotes or a closing quote not followed by a space.
/// A NUL byte ends the line (Redis works on a C string here).
pub fn split_args(l: &[u8]) -> Option<Vec<Cow<'_, [u8]>>> {
    let l = &l[..l.iter().position(|&c| c == 0).unwrap_or(l.len())];
    let at = |i: usize| l.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < l.len() && crate::numeric::is_c_space(l[p]) {
            p += 1;
        }
        if p >= l.len() {
            return Some(args);
        }
        let start = p;
        let (mut inq, mut insq) = (false, false);
        let mut cur: Vec<u8> = Vec::new();
        let mut plain = true;
        loop {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' && hex(at(p + 2)).is_some() {
                    if let (Some(h), Some(lo)) = (hex(at(p + 2)), hex(at(p + 3))) {
                        cur.push(h * 16 + lo);
                        p += 3;
                    } else {
                        cur.push(b'x');
                        p += 1;
                    }
                } else if c == b'\\' && p + 1 < l.len() {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        o => o,
                    });
                } else if c == b'"' {
                    if p + 1 < l.len() && !crate::numeric::is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if p >= l.len() {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < l.len() && !crate::numeric::is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if p >= l.len() {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if p >= l.len() || matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            } else if c == b'"' {
                inq = true;
                plain = false;
            } else if c == b'\'' {
                insq = true;
                plain = false;
            } else {
                cur.push(c);
            }
            p += 1;
        }
        if plain {
            args.push(Cow::Borrowed(&l[start..p]));
        } else {
            args.push(Cow::Owned(cur));
        }
    }
}
