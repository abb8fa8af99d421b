//! The 8-byte R2P2 header (spec `shared/spec/r2p2.md`, "Header"): a bounds-checked parser that
//! honours a larger `header_size`, and an encoder into a caller's buffer.

/// `magic`: the first byte of every R2P2 packet.
pub const MAGIC: u8 = 0xCC;
/// Length of the header this implementation writes (`header_size`).
pub const HEADER_LEN: usize = 8;
/// Flag F: first packet of a message.
pub const FLAG_FIRST: u8 = 0x80;
/// Flag L: last packet of a message.
pub const FLAG_LAST: u8 = 0x40;

/// Message type (high nibble of `type_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MsgType {
    /// Request packets (REQ0 and REQn).
    Request = 0,
    /// Reply packets, server to client.
    Response = 1,
    /// Server to router after each reply.
    Feedback = 2,
    /// "REQRDY": the server took REQ0 of a multi-packet request.
    Ack = 3,
    /// The request was refused (flow or admission control).
    Drop = 4,
    /// HovercRaft consensus request.
    RaftReq = 5,
    /// HovercRaft consensus reply.
    RaftRep = 6,
    /// HovercRaft message that needs no reply.
    RaftMsg = 7,
    /// **Extension** (type 8): selective acknowledgement asking for the missing packets of a
    /// multi-packet message; see [`super::sack`].
    Sack = 8,
}

impl MsgType {
    /// The type for a nibble value, None for values nobody assigned.
    pub fn from_nibble(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Request,
            1 => Self::Response,
            2 => Self::Feedback,
            3 => Self::Ack,
            4 => Self::Drop,
            5 => Self::RaftReq,
            6 => Self::RaftRep,
            7 => Self::RaftMsg,
            8 => Self::Sack,
            _ => return None,
        })
    }
}

/// Routing policy (low nibble of `type_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Policy {
    /// Load-balance REQ0 over the server set.
    LbRoute = 0,
    /// Always the same target ("sticky"). The reference marks RESPONSE and ACK with it.
    FixedRoute = 1,
    /// HovercRaft: totally ordered, may modify state.
    ReplicatedRoute = 2,
    /// HovercRaft: totally ordered, read-only.
    ReplicatedRouteNoSe = 3,
}

impl Policy {
    /// The policy for a nibble value, None for unassigned values.
    pub fn from_nibble(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::LbRoute,
            1 => Self::FixedRoute,
            2 => Self::ReplicatedRoute,
            3 => Self::ReplicatedRouteNoSe,
            _ => return None,
        })
    }
}

/// Why a datagram is not a usable R2P2 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 8 bytes, or fewer than `header_size`.
    Truncated,
    /// First byte is not [`MAGIC`].
    BadMagic,
    /// `header_size` below 8.
    BadHeaderSize,
    /// Message type nibble not assigned.
    UnknownType,
    /// Policy nibble not assigned.
    UnknownPolicy,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MsgType,
    /// Routing policy.
    pub policy: Policy,
    /// F and L flags (other bits are carried but unused).
    pub flags: u8,
    /// Request id, scoped to the client's (IP, port).
    pub rid: u16,
    /// First packet: total packets of the message; later packets: their index.
    pub p_order: u16,
}

impl Header {
    /// True if F is set.
    pub fn is_first(&self) -> bool {
        self.flags & FLAG_FIRST != 0
    }

    /// True if L is set.
    pub fn is_last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }

    /// Parses `dgram` (a UDP payload); returns the header and the R2P2 payload (which starts at
    /// `header_size`).
    pub fn parse(dgram: &[u8]) -> Result<(Header, &[u8]), HeaderError> {
        let h = dgram
            .first_chunk::<HEADER_LEN>()
            .ok_or(HeaderError::Truncated)?;
        if h[0] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let hs = usize::from(h[1]);
        if hs < HEADER_LEN {
            return Err(HeaderError::BadHeaderSize);
        }
        let payload = dgram.get(hs..).ok_or(HeaderError::Truncated)?;
        let msg_type = MsgType::from_nibble(h[2] >> 4).ok_or(HeaderError::UnknownType)?;
        let policy = Policy::from_nibble(h[2] & 0x0F).ok_or(HeaderError::UnknownPolicy)?;
        Ok((
            Header {
                msg_type,
                policy,
                flags: h[3],
                rid: u16::from_be_bytes([h[4], h[5]]),
                p_order: u16::from_be_bytes([h[6], h[7]]),
            },
            payload,
        ))
    }

    /// The 8 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let rid = self.rid.to_be_bytes();
        let po = self.p_order.to_be_bytes();
        [
            MAGIC,
            HEADER_LEN as u8,
            ((self.msg_type as u8) << 4) | self.policy as u8,
            self.flags,
            rid[0],
            rid[1],
            po[0],
            po[1],
        ]
    }

    /// A one-packet message header (F|L, p_order 1).
    pub fn single(msg_type: MsgType, policy: Policy, rid: u16) -> Header {
        Header {
            msg_type,
            policy,
            flags: FLAG_FIRST | FLAG_LAST,
            rid,
            p_order: 1,
        }
    }
}
