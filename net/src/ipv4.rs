//! IPv4 headers (RFC 791): a validating zero-copy parser and a header writer.
//!
//! ferrix does not reassemble: fragments are dropped ([`DropReason::IpFragment`]); headers with
//! options are dropped too ([`DropReason::IpOptions`]), which fixes every accepted header at 20
//! bytes and lets replies be built in place. Received TTLs are not checked: a host must not drop
//! a datagram for its TTL (RFC 1122 §3.2.1.7); sent datagrams carry [`IPV4_DEFAULT_TTL`].

use crate::checksum::{self, Checksum};
use crate::stats::DropReason;
use core::net::Ipv4Addr;

/// Length of an IPv4 header without options (RFC 791: IHL = 5).
pub const IPV4_HEADER_LEN: usize = 20;
/// IP version 4.
pub const IPV4_VERSION: u8 = 4;
/// Protocol number of ICMP (IANA "Assigned Internet Protocol Numbers", RFC 792).
pub const IPPROTO_ICMP: u8 = 1;
/// Protocol number of IGMP (RFC 2236).
pub const IPPROTO_IGMP: u8 = 2;
/// Protocol number of UDP (RFC 768).
pub const IPPROTO_UDP: u8 = 17;
/// TTL of datagrams we send (RFC 1700 / IANA recommended default).
pub const IPV4_DEFAULT_TTL: u8 = 64;
/// Don't Fragment flag (RFC 791), set on everything we send: we never fragment.
pub const IPV4_FLAG_DF: u16 = 0x4000;
/// More Fragments flag (RFC 791).
pub const IPV4_FLAG_MF: u16 = 0x2000;
/// Mask of the fragment offset field (RFC 791).
pub const IPV4_FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A validated IPv4 datagram without options, borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// Time to live as received.
    pub ttl: u8,
    /// Identification field.
    pub ident: u16,
    /// The payload, exactly `total length - 20` bytes (Ethernet padding cut off).
    pub payload: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Parses and validates the datagram in `data` (the Ethernet payload), whose total length
    /// may be at most `mtu`. Checks, in order: truncation, version, header length, size against
    /// the MTU, total length against the data, header checksum, options, fragmentation.
    pub fn parse(data: &'a [u8], mtu: usize) -> Result<Self, DropReason> {
        Self::parse_inner(data, mtu, false)
    }

    /// [`Self::parse`] that accepts a header with options (skipping them: `payload` starts
    /// after the options). Only for protocols that need options, such as IGMP's Router Alert
    /// (RFC 2113); everything in-place reply paths handle goes through [`Self::parse`].
    pub fn parse_with_options(data: &'a [u8], mtu: usize) -> Result<Self, DropReason> {
        Self::parse_inner(data, mtu, true)
    }

    fn parse_inner(data: &'a [u8], mtu: usize, options: bool) -> Result<Self, DropReason> {
        let h = data
            .first_chunk::<IPV4_HEADER_LEN>()
            .ok_or(DropReason::IpTruncated)?;
        if h[0] >> 4 != IPV4_VERSION {
            return Err(DropReason::IpVersion);
        }
        let header_len = usize::from(h[0] & 0x0f) * 4;
        if header_len < IPV4_HEADER_LEN {
            return Err(DropReason::BadLength);
        }
        let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if total_len > mtu {
            return Err(DropReason::Oversize);
        }
        if total_len < header_len || total_len > data.len() {
            return Err(DropReason::BadLength);
        }
        let header = data.get(..header_len).ok_or(DropReason::BadLength)?;
        let ok = match header.first_chunk::<IPV4_HEADER_LEN>() {
            Some(h20) if header_len == IPV4_HEADER_LEN => checksum::checksum20(h20) == 0,
            _ => checksum::verify(header),
        };
        if !ok {
            return Err(DropReason::IpChecksum);
        }
        if header_len != IPV4_HEADER_LEN && !options {
            return Err(DropReason::IpOptions);
        }
        let flags_frag = u16::from_be_bytes([h[6], h[7]]);
        if flags_frag & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK) != 0 {
            return Err(DropReason::IpFragment);
        }
        let payload = data
            .get(header_len..total_len)
            .ok_or(DropReason::BadLength)?;
        Ok(Ipv4Packet {
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            protocol: h[9],
            ttl: h[8],
            ident: u16::from_be_bytes([h[4], h[5]]),
            payload,
        })
    }
}

/// The fields of an IPv4 header we send (no options, DF set, TOS 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Length of the payload that follows the header.
    pub payload_len: u16,
}

impl Ipv4Header {
    /// Writes the header (checksum included) into the first 20 bytes of `buf`. Returns false,
    /// writing nothing, if `buf` is shorter or the total length would not fit in 16 bits.
    pub fn write(&self, buf: &mut [u8]) -> bool {
        let Some(total) = self.payload_len.checked_add(IPV4_HEADER_LEN as u16) else {
            return false;
        };
        let Some(h) = buf.first_chunk_mut::<IPV4_HEADER_LEN>() else {
            return false;
        };
        h[0] = (IPV4_VERSION << 4) | (IPV4_HEADER_LEN / 4) as u8;
        h[1] = 0;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        h[6..8].copy_from_slice(&IPV4_FLAG_DF.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.protocol;
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum20(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        true
    }
}

/// The header checksum of a 20-byte header whose checksum field is ignored (treated as zero).
pub fn header_checksum(h: &[u8; IPV4_HEADER_LEN]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(&h[..10]);
    c.add_bytes(&h[12..]);
    c.finish()
}

/// True for addresses that can never be a sender: unspecified, limited broadcast, multicast.
pub fn is_bad_source(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_broadcast() || a.is_multicast()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header of an ICMP echo request captured on Linux loopback (127.0.0.1 to
    /// itself, 56 bytes, DF, TTL 64).
    const CAPTURED: [u8; 20] = [
        0x45, 0x00, 0x00, 0x38, 0xd2, 0x2f, 0x40, 0x00, 0x40, 0x01, 0x6a, 0x93, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01,
    ];

    fn packet(header: &[u8]) -> Vec<u8> {
        let mut v = header.to_vec();
        v.resize(0x38, 0);
        v
    }

    #[test]
    fn parses_captured_header() {
        assert_eq!(header_checksum(&CAPTURED), 0x6a93);
        let v = packet(&CAPTURED);
        let p = Ipv4Packet::parse(&v, 1500).unwrap();
        assert_eq!(p.src, Ipv4Addr::LOCALHOST);
        assert_eq!(p.dst, Ipv4Addr::LOCALHOST);
        assert_eq!((p.protocol, p.ttl, p.ident), (IPPROTO_ICMP, 64, 0xd22f));
        assert_eq!(p.payload.len(), 36);
    }

    #[test]
    fn writer_reproduces_captured_header() {
        let h = Ipv4Header {
            src: Ipv4Addr::LOCALHOST,
            dst: Ipv4Addr::LOCALHOST,
            protocol: IPPROTO_ICMP,
            ttl: 64,
            ident: 0xd22f,
            payload_len: 36,
        };
        let mut b = [0u8; 20];
        assert!(h.write(&mut b));
        assert_eq!(b, CAPTURED);
        assert!(!h.write(&mut [0u8; 19]));
        let big = Ipv4Header {
            payload_len: u16::MAX,
            ..h
        };
        assert!(!big.write(&mut b));
    }

    #[test]
    fn drop_reasons() {
        let ok = packet(&CAPTURED);
        assert_eq!(
            Ipv4Packet::parse(&ok[..19], 1500),
            Err(DropReason::IpTruncated)
        );
        assert_eq!(
            Ipv4Packet::parse(&ok[..0x37], 1500),
            Err(DropReason::BadLength)
        );
        assert_eq!(Ipv4Packet::parse(&ok, 0x37), Err(DropReason::Oversize));
        let mut v = ok.clone();
        v[0] = 0x65;
        assert_eq!(Ipv4Packet::parse(&v, 1500), Err(DropReason::IpVersion));
        let mut v = ok.clone();
        v[0] = 0x44;
        assert_eq!(Ipv4Packet::parse(&v, 1500), Err(DropReason::BadLength));
        let mut v = ok.clone();
        v[11] ^= 1;
        assert_eq!(Ipv4Packet::parse(&v, 1500), Err(DropReason::IpChecksum));
        let mut v = ok.clone();
        v[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Packet::parse(&v, 1500), Err(DropReason::BadLength));
    }

    fn fix_checksum(v: &mut [u8]) {
        let hl = usize::from(v[0] & 0xf) * 4;
        v[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&v[..hl]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn options_and_fragments() {
        let mut v = packet(&CAPTURED);
        v[0] = 0x46;
        fix_checksum(&mut v);
        assert_eq!(Ipv4Packet::parse(&v, 1500), Err(DropReason::IpOptions));
        for ff in [IPV4_FLAG_MF, 1, IPV4_FLAG_DF | 0x100] {
            let mut v = packet(&CAPTURED);
            v[6..8].copy_from_slice(&ff.to_be_bytes());
            fix_checksum(&mut v);
            assert_eq!(Ipv4Packet::parse(&v, 1500), Err(DropReason::IpFragment));
        }
    }

    #[test]
    fn sources() {
        assert!(is_bad_source(Ipv4Addr::BROADCAST));
        assert!(is_bad_source(Ipv4Addr::new(224, 0, 0, 1)));
        assert!(is_bad_source(Ipv4Addr::UNSPECIFIED));
        assert!(!is_bad_source(Ipv4Addr::new(10, 0, 0, 1)));
    }
}
