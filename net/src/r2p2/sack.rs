//! **Extension** SACK (message type 8, thesis table 9.1): the receiver of a multi-packet
//! message that made no progress for an RTO asks the sender for the packets it lacks.
//!
//! Header: type SACK, policy FIXED_ROUTE, F|L, p_order 1, the message's rid. Body (big-endian):
//! `u16 tail_from` (resend every packet with index >= this; `0xFFFF`: none), then up to
//! [`MAX_LISTED`] `u16` packet indices (0 = the first packet) to resend. A client sends it to
//! the server a reply came from; a server sends it to the client of a partial request (and a
//! client whose REQ0 went unanswered simply resends REQ0). It is sent only when enabled
//! (`sack` in the client and server configs): a reference peer does not know type 8.

use alloc::vec::Vec;

/// `tail_from` value meaning "no tail".
pub const NO_TAIL: u16 = 0xFFFF;
/// Most indices listed in one SACK.
pub const MAX_LISTED: usize = 64;

/// Builds a SACK body.
pub fn encode(tail_from: Option<u16>, missing: impl Iterator<Item = u16>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 * MAX_LISTED);
    out.extend_from_slice(&tail_from.unwrap_or(NO_TAIL).to_be_bytes());
    for i in missing.take(MAX_LISTED) {
        out.extend_from_slice(&i.to_be_bytes());
    }
    out
}

/// The packet indices below `count` a SACK body asks for (in order, possibly repeated); None
/// if the body is malformed (odd length, or shorter than 2 bytes).
pub fn wanted(body: &[u8], count: u16) -> Option<Vec<u16>> {
    if body.len() < 2 || !body.len().is_multiple_of(2) || body.len() > 2 + 2 * MAX_LISTED {
        return None;
    }
    let mut words = body
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    let tail = words.next()?;
    let mut out: Vec<u16> = words.filter(|&i| i < count).collect();
    if tail != NO_TAIL {
        out.extend(tail..count);
    }
    Some(out)
}
