//! memcached over UDP: every datagram starts with an 8-byte frame header (request id,
//! sequence number, total datagrams, reserved; big-endian u16s). A request is one datagram
//! (total 1, sequence 0) holding complete ASCII or binary commands; the reply is split into
//! datagrams of at most [`UdpConfig::max_datagram`] bytes each (header included, memcached's
//! `UDP_MAX_PAYLOAD_SIZE` of 1400 by default), each carrying the request id, its sequence
//! number and the total. Multi-datagram requests, short or truncated datagrams are dropped
//! (no reply), as memcached drops them. Nothing is kept between datagrams.

use crate::conn::{Codec, Limits};
use crate::expiry::Clock;
use crate::memcache::{MAGIC_REQUEST, ascii::Ascii, binary::Binary};
use crate::sharded::Backend;
use alloc::vec::Vec;

/// The frame header's length.
pub const FRAME_HEADER_LEN: usize = 8;
/// memcached's `UDP_MAX_PAYLOAD_SIZE`.
pub const DEFAULT_MAX_DATAGRAM: usize = 1400;

/// UDP framing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// Largest reply datagram, frame header included (at least 9).
    pub max_datagram: usize,
    /// Largest reply before it is cut (replies longer than `u16::MAX` datagrams cannot be
    /// numbered anyway).
    pub max_reply: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            max_datagram: DEFAULT_MAX_DATAGRAM,
            max_reply: 4 * 1024 * 1024,
        }
    }
}

/// The frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Chosen by the client, echoed in every reply datagram.
    pub request_id: u16,
    /// This datagram's index.
    pub sequence: u16,
    /// Datagrams in the message.
    pub total: u16,
}

impl Frame {
    /// Parse the header at the front of a datagram.
    pub fn parse(d: &[u8]) -> Option<Frame> {
        let h = d.get(..FRAME_HEADER_LEN)?;
        let u = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Frame {
            request_id: u(0),
            sequence: u(2),
            total: u(4),
        })
    }

    /// Append the header.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request_id.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }
}

/// Execute one request datagram; push each reply datagram through `send`. Returns the number
/// of reply datagrams (0 when the request was dropped or needs no reply).
pub fn handle_datagram<B: Backend>(
    datagram: &[u8],
    cfg: &UdpConfig,
    b: &mut B,
    now: Clock,
    mut send: impl FnMut(&[u8]),
) -> usize {
    let Some(f) = Frame::parse(datagram) else {
        return 0;
    };
    if f.total != 1 || f.sequence != 0 {
        return 0;
    }
    let payload = &datagram[FRAME_HEADER_LEN..];
    let limits = Limits {
        max_output: cfg.max_reply,
        max_line: payload.len(),
    };
    let mut reply = Vec::new();
    if payload.first() == Some(&MAGIC_REQUEST) {
        Binary::new(limits).feed(payload, &mut reply, b, now);
    } else {
        Ascii::new(limits).feed(payload, &mut reply, b, now);
    }
    let chunk = cfg.max_datagram.max(FRAME_HEADER_LEN + 1) - FRAME_HEADER_LEN;
    let n = reply.len().div_ceil(chunk).min(usize::from(u16::MAX));
    let mut dgram = Vec::with_capacity(cfg.max_datagram);
    for (i, part) in reply.chunks(chunk).take(n).enumerate() {
        dgram.clear();
        Frame {
            request_id: f.request_id,
            sequence: i as u16,
            total: n as u16,
        }
        .write(&mut dgram);
        dgram.extend_from_slice(part);
        send(&dgram);
    }
    n
}
