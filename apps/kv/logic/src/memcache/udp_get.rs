//! The memcached UDP fast path: a datagram holding exactly one single-key ASCII `get` is
//! answered in its own buffer, without the general codec's line splitting, reply vector and
//! copies. The reply is byte for byte what [`handle_datagram`](super::udp::handle_datagram)
//! sends (a test checks both on random input); anything else (other commands, several keys,
//! keys with unusual bytes, replies that need more than one datagram) returns `None` and goes
//! the general way.

use crate::expiry::Clock;
use crate::memcache::udp::{FRAME_HEADER_LEN, Frame, UdpConfig};
use crate::numeric::digits;
use crate::sharded::Backend;
use crate::store::KEY_MAX_LENGTH;

/// The key of a datagram's payload if it is exactly `get <key>\r\n` with a key of 1 to 250
/// bytes, each a printable ASCII character other than space.
fn single_get_key(payload: &[u8]) -> Option<&[u8]> {
    let key = payload.strip_prefix(b"get ")?.strip_suffix(b"\r\n")?;
    (!key.is_empty() && key.len() <= KEY_MAX_LENGTH && plain(key)).then_some(key)
}

/// Whether every byte of `s` is printable ASCII other than space (0x21..=0x7e), eight at a
/// time: a byte below 0x21 borrows into its top bit when 0x21 is subtracted, one above 0x7e
/// carries into it when 0x01 is added; bytes with the top bit already set fail either way.
fn plain(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let word_ok = |w: u64| {
        let low = w.wrapping_sub(0x21 * ONES) & !w;
        let high = w.wrapping_add(ONES) | w;
        (low | high) & TOPS == 0
    };
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if !word_ok(u64::from_le_bytes(w)) {
            return false;
        }
    }
    // The tail, padded with a byte that passes.
    let rest = chunks.remainder();
    let mut w = [b'a'; 8];
    w[..rest.len()].copy_from_slice(rest);
    word_ok(u64::from_le_bytes(w))
}

/// Answers the request datagram in `buf[..len]` in place if it is a single-key `get` whose
/// reply fits one datagram of `cfg.max_datagram` bytes (and `buf`): the reply's length, or
/// None (nothing done to the store or `buf`: use the general path).
pub fn get_in_place<B: Backend>(
    buf: &mut [u8],
    len: usize,
    cfg: &UdpConfig,
    b: &mut B,
    now: Clock,
) -> Option<usize> {
    let req = buf.get(..len)?;
    let f = Frame::parse(req)?;
    if f.total != 1 || f.sequence != 0 {
        return None;
    }
    let klen = single_get_key(&req[FRAME_HEADER_LEN..])?.len();
    let cap = cfg.max_datagram.min(buf.len());
    // The request's key stays where it is (after the header and "get "), read while the
    // reply's tail is written past it; the reply's head, which overlaps it, comes last.
    let key_end = FRAME_HEADER_LEN + GET.len() + klen;
    if key_end > cap {
        return None;
    }
    let (head, tail) = buf[..cap].split_at_mut(key_end);
    let key = &head[FRAME_HEADER_LEN + GET.len()..];
    let mut fd = [0u8; 20];
    let mut ld = [0u8; 20];
    let (mut fi, mut li) = (20, 20);
    // Offsets from the start of the reply.
    let line_end =
        |fi: usize, li: usize| FRAME_HEADER_LEN + VALUE.len() + klen + (20 - fi) + (20 - li) + 4;
    let hit = b.with_hashed_key(key, |s, h| {
        // A hit whose reply would not fit one datagram is declined, uncounted: the general
        // path then does the lookup (once).
        let found = s.get_if(key, h, now, |it| match it {
            None => FRAME_HEADER_LEN + END.len() <= cap,
            Some(it) => {
                fi = digits(it.flags.into(), &mut fd);
                li = digits(it.value.len() as u64, &mut ld);
                line_end(fi, li) + it.value.len() + 2 + END.len() <= cap
            }
        })?;
        // The value and what follows it, all past the key (a line is longer than "get ").
        Some(match found {
            Some(it) => {
                let v = line_end(fi, li) - key_end;
                let vend = v + it.value.len();
                tail[v..vend].copy_from_slice(&it.value);
                tail[vend..vend + 2].copy_from_slice(b"\r\n");
                (true, vend + 2)
            }
            None => (false, 0),
        })
    })?;
    let n = match hit {
        (true, at) => {
            tail[at..at + END.len()].copy_from_slice(END);
            // The head: the key moves right by the length difference of "VALUE " and "get ".
            let buf = &mut buf[..cap];
            let k0 = FRAME_HEADER_LEN + GET.len();
            buf.copy_within(k0..k0 + klen, FRAME_HEADER_LEN + VALUE.len());
            let mut p = FRAME_HEADER_LEN + VALUE.len() + klen;
            for part in [&b" "[..], &fd[fi..], b" ", &ld[li..], b"\r\n"] {
                buf[p..p + part.len()].copy_from_slice(part);
                p += part.len();
            }
            buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + VALUE.len()].copy_from_slice(VALUE);
            key_end + at + END.len()
        }
        (false, _) => {
            buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + END.len()].copy_from_slice(END);
            FRAME_HEADER_LEN + END.len()
        }
    };
    // The reply header: the request's id, sequence 0 of 1.
    buf[2..FRAME_HEADER_LEN].copy_from_slice(&[0, 0, 0, 1, 0, 0]);
    Some(n)
}

const GET: &[u8] = b"get ";
const VALUE: &[u8] = b"VALUE ";
const END: &[u8] = b"END\r\n";

#[cfg(test)]
mod tests {
    #[test]
    fn plain_is_the_bytewise_rule() {
        for b in 0..=255u8 {
            for pos in 0..11 {
                let mut s = [b'k'; 11];
                s[pos] = b;
                assert_eq!(
                    super::plain(&s),
                    (0x21..=0x7e).contains(&b),
                    "byte {b:#x} at {pos}"
                );
            }
        }
    }
}
