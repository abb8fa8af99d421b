//! Number parsing and printing as the two servers do it.
//!
//! memcached parses command-line numbers and incr/decr values with C's `strtoull`/`strtol`
//! wrapped in `safe_strto*` (util.c): leading whitespace and a sign are accepted, the digits
//! must be followed by whitespace or the end, overflow is an error, and a negative number is
//! refused for the unsigned forms. Redis parses integers strictly (`string2ll`): an optional
//! `-`, no leading zeros, no `+`, no spaces, within `i64`.

use alloc::vec::Vec;

/// C's `isspace` in the "C" locale.
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `strtoull`-style: skip spaces, optional sign, digits. Returns (magnitude, negative, bytes
/// used) or `None` on overflow; `used == 0` means no digits.
fn c_parse(s: &[u8]) -> Option<(u64, bool, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        return Some((0, false, 0));
    }
    Some((v, neg, i))
}

/// memcached's `safe_strtoull` on a whole token or value: `None` if not a number.
/// A value with no digits but starting with a space parses as 0 (C's behaviour, kept).
pub fn mc_strtoull(s: &[u8]) -> Option<u64> {
    let (mag, neg, used) = c_parse(s)?;
    if used == 0 {
        return if s.first().is_some_and(|&b| is_c_space(b)) {
            Some(0)
        } else {
            None
        };
    }
    if used < s.len() && !is_c_space(s[used]) {
        return None;
    }
    let v = if neg { mag.wrapping_neg() } else { mag };
    // util.c: a "negative" result (as signed) from a string containing '-' is refused.
    if neg && (v as i64) < 0 {
        return None;
    }
    Some(v)
}

/// memcached's `safe_strtoul` into 32 bits (client flags).
pub fn mc_strtoul32(s: &[u8]) -> Option<u32> {
    let v = mc_strtoull(s)?;
    u32::try_from(v).ok()
}

/// memcached's `safe_strtol` into `i32` (exptimes, lengths).
pub fn mc_strtol32(s: &[u8]) -> Option<i32> {
    let (mag, neg, used) = c_parse(s)?;
    if used == 0 || (used < s.len() && !is_c_space(s[used])) {
        return None;
    }
    let v = i64::try_from(mag).ok()?;
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// Redis's `string2ll`: strict decimal `i64`.
pub fn redis_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Append the decimal digits of `v`.
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let i = digits(v, &mut buf);
    out.extend_from_slice(&buf[i..]);
}

/// Writes the decimal digits of `v` at the end of `d`; the index of the first one.
pub fn digits(mut v: u64, d: &mut [u8; 20]) -> usize {
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

/// Append the decimal digits of `v` with a `-` when negative.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn memcached_numbers() {
        assert_eq!(mc_strtoull(b"12"), Some(12));
        assert_eq!(mc_strtoull(b" 12"), Some(12));
        assert_eq!(mc_strtoull(b"+5"), Some(5));
        assert_eq!(mc_strtoull(b"99 "), Some(99));
        assert_eq!(mc_strtoull(b"12a"), None);
        assert_eq!(mc_strtoull(b"-5"), None);
        assert_eq!(mc_strtoull(b"-0"), Some(0));
        assert_eq!(mc_strtoull(b""), None);
        assert_eq!(mc_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(mc_strtoull(b"18446744073709551616"), None);
        assert_eq!(mc_strtoull(b"1.5"), None);
        assert_eq!(mc_strtoul32(b"4294967295"), Some(u32::MAX));
        assert_eq!(mc_strtoul32(b"0x1"), None);
        assert_eq!(mc_strtol32(b"-1"), Some(-1));
        assert_eq!(mc_strtol32(b"2147483648"), None);
        assert_eq!(mc_strtol32(b"abc"), None);
    }

    #[test]
    fn redis_numbers() {
        assert_eq!(redis_i64(b"0"), Some(0));
        assert_eq!(redis_i64(b"-12"), Some(-12));
        assert_eq!(redis_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(redis_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"01"[..],
            b"+1",
            b" 1",
            b"-0",
            b"",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(redis_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn printing() {
        let mut v = vec![];
        push_u64(&mut v, 0);
        v.push(b' ');
        push_u64(&mut v, u64::MAX);
        v.push(b' ');
        push_i64(&mut v, i64::MIN);
        assert_eq!(v, b"0 18446744073709551615 -9223372036854775808");
    }
}
