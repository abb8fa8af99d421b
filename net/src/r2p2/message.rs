//! Messages as packets: splitting a payload into R2P2 packets (spec "Sizes": 1464 bytes per
//! packet, a multi-packet request's REQ0 carries only 14) and reassembling one from packets that
//! may arrive in any order, duplicated (**extension**: the reference drops the whole message on
//! an out-of-order packet).

use super::header::{FLAG_FIRST, FLAG_LAST, Header, MsgType, Policy};
use alloc::vec::Vec;

/// Payload bytes per packet: 1472 - 8 (1500 MTU - 20 IP - 8 UDP - 8 R2P2).
pub const MAX_PAYLOAD: usize = 1464;
/// Payload of REQ0 in a multi-packet request, so that it is a 64-byte frame.
pub const REQ0_PAYLOAD: usize = 14;

/// The packets of one message: their count and, for each index, its header and payload range.
#[derive(Clone, Copy, Debug)]
pub struct Packetizer {
    msg_type: MsgType,
    policy: Policy,
    rid: u16,
    len: usize,
    first: usize,
    count: u16,
}

impl Packetizer {
    /// Plans a message of `len` bytes. Requests longer than [`MAX_PAYLOAD`] get a short
    /// [`REQ0_PAYLOAD`]-byte first packet; other messages fill every packet. None if it would
    /// take more than `max_packets` packets.
    pub fn new(
        msg_type: MsgType,
        policy: Policy,
        rid: u16,
        len: usize,
        max_packets: u16,
    ) -> Option<Self> {
        let first = if len <= MAX_PAYLOAD {
            len
        } else if msg_type == MsgType::Request {
            REQ0_PAYLOAD
        } else {
            MAX_PAYLOAD
        };
        let count = 1 + (len - first).div_ceil(MAX_PAYLOAD);
        let count = u16::try_from(count).ok().filter(|&c| c <= max_packets)?;
        Some(Packetizer {
            msg_type,
            policy,
            rid,
            len,
            first,
            count,
        })
    }

    /// Number of packets.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Header and payload byte range of packet `index` (0 = the first), None past the end.
    pub fn packet(&self, index: u16) -> Option<(Header, core::ops::Range<usize>)> {
        if index >= self.count {
            return None;
        }
        let i = usize::from(index);
        let start = if i == 0 {
            0
        } else {
            self.first + (i - 1) * MAX_PAYLOAD
        };
        let end = if i == 0 {
            self.first
        } else {
            (start + MAX_PAYLOAD).min(self.len)
        };
        let mut flags = 0;
        if index == 0 {
            flags |= FLAG_FIRST;
        }
        if index + 1 == self.count {
            flags |= FLAG_LAST;
        }
        let header = Header {
            msg_type: self.msg_type,
            policy: self.policy,
            flags,
            rid: self.rid,
            p_order: if index == 0 { self.count } else { index },
        };
        Some((header, start..end))
    }
}

/// What one packet did to a [`Reassembly`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Stored; the message is not complete yet.
    Stored,
    /// Stored; every packet is now in.
    Complete,
    /// Already had this index: ignored.
    Duplicate,
    /// Contradicts what earlier packets said (index past the total, two totals, F without
    /// total): ignored.
    Inconsistent,
}

/// A message being put together from packets in any order.
#[derive(Clone, Debug, Default)]
pub struct Reassembly {
    total: Option<u16>,
    parts: Vec<Option<Vec<u8>>>,
    received: u16,
}

impl Reassembly {
    /// The index of a packet from its header: 0 for the first, `p_order` otherwise.
    pub fn index_of(h: &Header) -> u16 {
        if h.is_first() { 0 } else { h.p_order }
    }

    /// Adds one packet; packets with an index at or past `max_packets` are inconsistent.
    pub fn add(&mut self, h: &Header, payload: &[u8], max_packets: u16) -> Added {
        let index = Self::index_of(h);
        let mut total = self.total;
        if h.is_first() {
            if h.p_order == 0 || (h.p_order == 1) != h.is_last() {
                return Added::Inconsistent;
            }
            if total.is_some_and(|t| t != h.p_order) {
                return Added::Inconsistent;
            }
            total = Some(h.p_order);
        } else if index == 0 {
            return Added::Inconsistent;
        }
        if h.is_last() {
            let Some(t) = index.checked_add(1) else {
                return Added::Inconsistent;
            };
            if total.is_some_and(|k| k != t) {
                return Added::Inconsistent;
            }
            total = Some(t);
        }
        if index >= max_packets
            || total.is_some_and(|t| {
                t > max_packets
                    || index >= t
                    || (index + 1 == t && !h.is_last())
                    || self.parts.len() > usize::from(t)
            })
        {
            return Added::Inconsistent;
        }
        let i = usize::from(index);
        if self.parts.len() <= i {
            self.parts.resize(i + 1, None);
        }
        if self.parts[i].is_some() {
            return Added::Duplicate;
        }
        self.parts[i] = Some(payload.to_vec());
        self.total = total;
        self.received += 1;
        if self.is_complete() {
            Added::Complete
        } else {
            Added::Stored
        }
    }

    /// True when the total is known and every packet is in.
    pub fn is_complete(&self) -> bool {
        self.total == Some(self.received)
    }

    /// Packets received so far.
    pub fn received(&self) -> u16 {
        self.received
    }

    /// The total packet count, once the first or last packet told it.
    pub fn total(&self) -> Option<u16> {
        self.total
    }

    /// Indices not received yet below the highest index seen (or the total, if known).
    pub fn missing(&self) -> impl Iterator<Item = u16> + '_ {
        let end = self.total.map_or(self.parts.len(), usize::from);
        (0..end).filter_map(|i| match self.parts.get(i) {
            Some(Some(_)) => None,
            _ => u16::try_from(i).ok(),
        })
    }

    /// Number of packet slots known so far (highest index seen + 1, or the total).
    pub fn known_len(&self) -> u16 {
        self.total
            .unwrap_or(u16::try_from(self.parts.len()).unwrap_or(u16::MAX))
    }

    /// The whole message, in order (empty parts for anything missing).
    pub fn into_payload(self) -> Vec<u8> {
        let len = self.parts.iter().flatten().map(Vec::len).sum();
        let mut out = Vec::with_capacity(len);
        for p in self.parts.into_iter().flatten() {
            out.extend_from_slice(&p);
        }
        out
    }
}
