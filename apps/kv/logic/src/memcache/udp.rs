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

/// Buffers one core reuses from datagram to datagram, so a warm request allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    reply: Vec<u8>,
    dgram: Vec<u8>,
}

/// Largest buffer a [`Scratch`] keeps between datagrams (a 1 MiB reply does not pin 1 MiB per
/// core for ever).
const SCRATCH_KEEP: usize = 64 * 1024;

impl Scratch {
    /// The last reply datagram [`handle_datagram_in`] produced (header included): a caller
    /// that sends it itself (in place of the request) can skip it in `send`, see
    /// [`is_last`].
    pub fn last_datagram(&self) -> &[u8] {
        &self.dgram
    }
}

/// Execute one request datagram; push each reply datagram through `send`. Returns the number
/// of reply datagrams (0 when the request was dropped or needs no reply).
pub fn handle_datagram<B: Backend>(
    datagram: &[u8],
    cfg: &UdpConfig,
    b: &mut B,
    now: Clock,
    send: impl FnMut(&[u8]),
) -> usize {
    handle_datagram_in(&mut Scratch::default(), datagram, cfg, b, now, send)
}

/// Whether reply datagram `dg` (header included) is the last of its reply.
pub fn is_last(dg: &[u8]) -> bool {
    Frame::parse(dg).is_some_and(|f| f.sequence.saturating_add(1) >= f.total)
}

/// [`handle_datagram`] with buffers kept in `scratch` across calls; after it returns a
/// positive count, [`Scratch::last_datagram`] holds the last datagram (also passed to `send`).
pub fn handle_datagram_in<B: Backend>(
    scratch: &mut Scratch,
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
        max_reply: cfg.max_reply,
    };
    let Scratch { reply, dgram } = scratch;
    reply.clear();
    if payload.first() == Some(&MAGIC_REQUEST) {
        Binary::new(limits).feed(payload, reply, b, now);
    } else {
        Ascii::new(limits).feed(payload, reply, b, now);
    }
    let chunk = cfg.max_datagram.max(FRAME_HEADER_LEN + 1) - FRAME_HEADER_LEN;
    let n = reply.len().div_ceil(chunk).min(usize::from(u16::MAX));
    for (i, part) in reply.chunks(chunk).take(n).enumerate() {
        dgram.clear();
        Frame {
            request_id: f.request_id,
            sequence: i as u16,
            total: n as u16,
        }
        .write(dgram);
        dgram.extend_from_slice(part);
        send(dgram);
    }
    // A large reply does not pin its buffer for ever (datagrams stay below `max_datagram`).
    if reply.capacity() > SCRATCH_KEEP {
        *reply = Vec::new();
    }
    n
}
