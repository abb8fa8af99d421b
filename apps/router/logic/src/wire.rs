//! What the router reads of a packet: the 8-byte R2P2 header without rejecting policy values
//! nobody assigned (the router counts them and falls back to its default policy), the FEEDBACK
//! body (reference part and the served-counter extension), and the DROP message it sends back.
//! Layouts: `shared/spec/r2p2.md`; the extension is the one `ferrix_net::r2p2::server` writes.

use core::net::{Ipv4Addr, SocketAddrV4};
use ferrix_net::r2p2::header::{FLAG_FIRST, FLAG_LAST, HEADER_LEN, MAGIC};
use ferrix_net::r2p2::server::DROP_PAYLOAD;

/// Message type REQUEST (high nibble).
pub const TYPE_REQUEST: u8 = 0;
/// Message type FEEDBACK.
pub const TYPE_FEEDBACK: u8 = 2;
/// Message type DROP.
pub const TYPE_DROP: u8 = 4;
/// Policy LB_ROUTE (low nibble): balance over the server set.
pub const POLICY_LB: u8 = 0;
/// Policy FIXED_ROUTE: always the master.
pub const POLICY_FIXED: u8 = 1;
/// Policy REPLICATED_ROUTE (HovercRaft: ordered, may write): the replicated group.
pub const POLICY_REPLICATED: u8 = 2;
/// Policy REPLICATED_ROUTE_NO_SE (HovercRaft: ordered, read-only): the replicated group.
pub const POLICY_REPLICATED_NO_SE: u8 = 3;

/// Length of the reference FEEDBACK body: `u16 rid, u16 client port, u32 client IP`.
pub const FEEDBACK_REF_LEN: usize = 8;
/// Length with the extension `u32 n, u64 served` appended.
pub const FEEDBACK_EXT_LEN: usize = 20;
/// Length of the DROP message the router sends: header + `DROP`.
pub const DROP_LEN: usize = HEADER_LEN + 4;

/// Why a datagram is not an R2P2 packet the router can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than 8 bytes or than its `header_size`.
    Truncated,
    /// First byte is not 0xCC.
    BadMagic,
    /// `header_size` below 8.
    BadHeaderSize,
    /// A FEEDBACK whose body is shorter than the reference's 8 bytes.
    ShortFeedback,
}

/// The header fields the router uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Message type nibble (0..=15, unassigned values included).
    pub msg_type: u8,
    /// Policy nibble (0..=15).
    pub policy: u8,
    /// F and L flags.
    pub flags: u8,
    /// Request id.
    pub rid: u16,
    /// Offset of the payload (`header_size`).
    pub payload_at: usize,
}

impl Head {
    /// Parses the header of `dgram`.
    #[inline]
    pub fn parse(dgram: &[u8]) -> Result<Head, Malformed> {
        let h = dgram
            .first_chunk::<HEADER_LEN>()
            .ok_or(Malformed::Truncated)?;
        if h[0] != MAGIC {
            return Err(Malformed::BadMagic);
        }
        let payload_at = usize::from(h[1]);
        if payload_at < HEADER_LEN {
            return Err(Malformed::BadHeaderSize);
        }
        if dgram.len() < payload_at {
            return Err(Malformed::Truncated);
        }
        Ok(Head {
            msg_type: h[2] >> 4,
            policy: h[2] & 0x0F,
            flags: h[3],
            rid: u16::from_be_bytes([h[4], h[5]]),
            payload_at,
        })
    }

    /// REQUEST with F set: the first packet of a request (REQ0).
    #[inline]
    pub fn is_req0(&self) -> bool {
        self.msg_type == TYPE_REQUEST && self.flags & FLAG_FIRST != 0
    }
}

/// The extension fields of a FEEDBACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedbackExt {
    /// The server's bound on outstanding requests (JBSQ's n); 0 asks for no new requests.
    pub n: u32,
    /// Requests the server has served so far, this one included.
    pub served: u64,
}

/// A FEEDBACK body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feedback {
    /// The completed request's id.
    pub rid: u16,
    /// The completed request's client. `0.0.0.0:0` marks a heartbeat: the server announces
    /// itself (joins, refreshes its membership, changes n) without completing a request.
    pub client: SocketAddrV4,
    /// Present when the server appends the extension.
    pub ext: Option<FeedbackExt>,
}

impl Feedback {
    /// Parses a FEEDBACK payload (the bytes after `header_size`). Longer bodies are fine (a
    /// later extension); bodies between 8 and 20 bytes are read as reference FEEDBACK.
    #[inline]
    pub fn parse(body: &[u8]) -> Result<Feedback, Malformed> {
        let b = body
            .first_chunk::<FEEDBACK_REF_LEN>()
            .ok_or(Malformed::ShortFeedback)?;
        let rid = u16::from_be_bytes([b[0], b[1]]);
        let port = u16::from_be_bytes([b[2], b[3]]);
        let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
        let ext = body.first_chunk::<FEEDBACK_EXT_LEN>().map(|e| FeedbackExt {
            n: u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
            served: u64::from_be_bytes([e[12], e[13], e[14], e[15], e[16], e[17], e[18], e[19]]),
        });
        Ok(Feedback {
            rid,
            client: SocketAddrV4::new(ip, port),
            ext,
        })
    }

    /// True for a heartbeat (no request completed).
    pub fn is_heartbeat(&self) -> bool {
        self.client.ip().is_unspecified() && self.client.port() == 0
    }

    /// Encodes a FEEDBACK packet (header + body, with the extension when `ext` is set).
    pub fn encode(&self, out: &mut [u8; HEADER_LEN + FEEDBACK_EXT_LEN]) -> usize {
        let rid = self.rid.to_be_bytes();
        out[..HEADER_LEN].copy_from_slice(&[
            MAGIC,
            HEADER_LEN as u8,
            TYPE_FEEDBACK << 4,
            FLAG_FIRST | FLAG_LAST,
            rid[0],
            rid[1],
            0,
            1,
        ]);
        out[8..10].copy_from_slice(&rid);
        out[10..12].copy_from_slice(&self.client.port().to_be_bytes());
        out[12..16].copy_from_slice(&self.client.ip().octets());
        match self.ext {
            Some(e) => {
                out[16..20].copy_from_slice(&e.n.to_be_bytes());
                out[20..28].copy_from_slice(&e.served.to_be_bytes());
                HEADER_LEN + FEEDBACK_EXT_LEN
            }
            None => HEADER_LEN + FEEDBACK_REF_LEN,
        }
    }
}

/// The DROP message for request `rid` (policy FIXED_ROUTE, F|L, payload `DROP`), as
/// `ferrix_net::r2p2::server` sends it and the client treats it.
pub fn drop_message(rid: u16) -> [u8; DROP_LEN] {
    let r = rid.to_be_bytes();
    let mut m = [
        MAGIC,
        HEADER_LEN as u8,
        (TYPE_DROP << 4) | POLICY_FIXED,
        FLAG_FIRST | FLAG_LAST,
        r[0],
        r[1],
        0,
        1,
        0,
        0,
        0,
        0,
    ];
    m[HEADER_LEN..].copy_from_slice(DROP_PAYLOAD);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrix_net::r2p2::server::{RequestMeta, feedback_body};
    use ferrix_net::r2p2::{Header, MsgType, Policy};

    #[test]
    fn golden_request_header() {
        // spec "Golden bytes": rid 7, one packet, payload 1234, LB_ROUTE.
        let p = [
            0xcc, 0x08, 0x00, 0xc0, 0x00, 0x07, 0x00, 0x01, b'1', b'2', b'3', b'4',
        ];
        let h = Head::parse(&p).unwrap();
        assert!(h.is_req0());
        assert_eq!((h.rid, h.policy, h.payload_at), (7, 0, 8));
        // REQ0 of a 3-packet request: F only.
        let p = [0xcc, 0x08, 0x00, 0x80, 0x00, 0x08, 0x00, 0x03];
        assert!(Head::parse(&p).unwrap().is_req0());
        // REQ1: no F.
        let p = [0xcc, 0x08, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01];
        assert!(!Head::parse(&p).unwrap().is_req0());
    }

    #[test]
    fn bad_headers() {
        assert_eq!(Head::parse(&[0xcc, 8, 0]), Err(Malformed::Truncated));
        assert_eq!(
            Head::parse(&[0xcd, 8, 0, 0, 0, 0, 0, 1]),
            Err(Malformed::BadMagic)
        );
        assert_eq!(
            Head::parse(&[0xcc, 7, 0, 0, 0, 0, 0, 1]),
            Err(Malformed::BadHeaderSize)
        );
        assert_eq!(
            Head::parse(&[0xcc, 12, 0, 0, 0, 0, 0, 1, 0]),
            Err(Malformed::Truncated)
        );
        // A larger header_size is honoured.
        let h = Head::parse(&[0xcc, 10, 0xf7, 0xc0, 0, 1, 0, 1, 9, 9, 1]).unwrap();
        assert_eq!((h.payload_at, h.msg_type, h.policy), (10, 15, 7));
    }

    #[test]
    fn reference_feedback_golden_bytes() {
        // Spec layout: header (type FEEDBACK) then u16 rid, u16 client port, u32 client IP.
        let p = [
            0xcc, 0x08, 0x20, 0xc0, 0x00, 0x07, 0x00, 0x01, // header
            0x00, 0x07, 0x1f, 0x90, 10, 0, 0, 5, // rid 7, port 8080, 10.0.0.5
        ];
        let h = Head::parse(&p).unwrap();
        assert_eq!(h.msg_type, TYPE_FEEDBACK);
        let fb = Feedback::parse(&p[h.payload_at..]).unwrap();
        assert_eq!(fb.rid, 7);
        assert_eq!(fb.client, "10.0.0.5:8080".parse().unwrap());
        assert_eq!(fb.ext, None);
        assert!(!fb.is_heartbeat());
        assert_eq!(Feedback::parse(&p[8..15]), Err(Malformed::ShortFeedback));
    }

    #[test]
    fn extension_matches_the_server_encoder() {
        let meta = RequestMeta {
            client: "192.168.1.9:4242".parse().unwrap(),
            rid: 513,
            policy: Policy::LbRoute,
        };
        let body = feedback_body(&meta, 3, 1_000_000_007);
        let fb = Feedback::parse(&body).unwrap();
        assert_eq!((fb.rid, fb.client), (513, meta.client));
        assert_eq!(
            fb.ext,
            Some(FeedbackExt {
                n: 3,
                served: 1_000_000_007
            })
        );
        let mut out = [0u8; 28];
        let n = fb.encode(&mut out);
        assert_eq!(&out[8..n], &body[..]);
        let (h, _) = Header::parse(&out[..n]).unwrap();
        assert_eq!(h.msg_type, MsgType::Feedback);
    }

    #[test]
    fn drop_message_is_what_clients_expect() {
        let m = drop_message(0x1234);
        let (h, payload) = Header::parse(&m).unwrap();
        assert_eq!(h, Header::single(MsgType::Drop, Policy::FixedRoute, 0x1234));
        assert_eq!(payload, b"DROP");
    }
}
