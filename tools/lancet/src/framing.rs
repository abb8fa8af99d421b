//! Response framing for the stream protocols: how many bytes the first complete response in a
//! buffer occupies (`None` = need more bytes). Responses are hostile input: every length is
//! bounds-checked, nothing panics.

fn find(buf: &[u8], pat: &[u8]) -> Option<usize> {
    buf.windows(pat.len()).position(|w| w == pat)
}

/// memcached ASCII: a single line (`STORED`, `END`, errors) or
/// `VALUE k f n\r\n<n bytes>\r\nEND\r\n` for a single-key get.
pub fn memcached(buf: &[u8]) -> Option<usize> {
    let line = find(buf, b"\r\n")?;
    if !buf.starts_with(b"VALUE ") {
        return Some(line + 2);
    }
    let header = std::str::from_utf8(&buf[..line]).ok()?;
    let bytes: usize = header.split_whitespace().nth(3)?.parse().ok()?;
    let total = (line + 2).checked_add(bytes)?.checked_add(2 + 5)?;
    (buf.len() >= total).then_some(total)
}

/// memcached binary protocol: a 24-byte header whose bytes 8..12 are the body length (big
/// endian), then the body.
pub fn memcached_binary(buf: &[u8]) -> Option<usize> {
    let body = u32::from_be_bytes(buf.get(8..12)?.try_into().ok()?);
    let total = 24usize.checked_add(usize::try_from(body).ok()?)?;
    (buf.len() >= total).then_some(total)
}

/// Redis RESP2 reply to GET/SET: simple string, error, integer, or bulk string (`$-1` = nil).
pub fn redis(buf: &[u8]) -> Option<usize> {
    let line = find(buf, b"\r\n")?;
    match buf.first()? {
        b'+' | b'-' | b':' => Some(line + 2),
        b'$' => {
            let n: i64 = std::str::from_utf8(&buf[1..line]).ok()?.parse().ok()?;
            if n < 0 {
                return Some(line + 2);
            }
            let total = (line + 2)
                .checked_add(usize::try_from(n).ok()?)?
                .checked_add(2)?;
            (buf.len() >= total).then_some(total)
        }
        // Anything else is a protocol error: consume the line so the stream makes progress.
        _ => Some(line + 2),
    }
}

/// HTTP/1.1 response with a `Content-Length` body (no chunked encoding).
pub fn http(buf: &[u8]) -> Option<usize> {
    let head = find(buf, b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..head]).ok()?;
    let len = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let total = head.checked_add(len)?;
    (buf.len() >= total).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_framing() {
        assert_eq!(memcached(b"STORED\r\nEND"), Some(8));
        assert_eq!(memcached(b"END\r\n"), Some(5));
        assert_eq!(memcached(b"VALUE k 0 3\r\nabc\r\nEN"), None);
        assert_eq!(memcached(b"VALUE k 0 3\r\nabc\r\nEND\r\nX"), Some(23));
        assert_eq!(memcached(b"VALUE k 0 3"), None);
        assert_eq!(memcached(b"VALUE k 0 99999999999999999999999\r\n"), None);
    }

    #[test]
    fn redis_framing() {
        assert_eq!(redis(b"+OK\r\n+OK"), Some(5));
        assert_eq!(redis(b"$-1\r\n"), Some(5));
        assert_eq!(redis(b"$3\r\nabc\r\n"), Some(9));
        assert_eq!(redis(b"$3\r\nab"), None);
        assert_eq!(redis(b"-ERR x\r\n"), Some(8));
        assert_eq!(redis(b"$99999999999999999999\r\n"), None);
    }

    #[test]
    fn http_framing() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiHTTP";
        assert_eq!(http(r), Some(r.len() - 4));
        assert_eq!(http(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(27));
        assert_eq!(
            http(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"),
            None
        );
    }
}
