//! UDP (RFC 768): a validating zero-copy parser and an in-buffer header writer.

use crate::checksum::Checksum;
use crate::ipv4::IPPROTO_UDP;
use crate::stats::DropReason;
use core::net::Ipv4Addr;

/// Length of the UDP header: ports, length, checksum.
pub const UDP_HEADER_LEN: usize = 8;

/// A validated UDP datagram, borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The payload (exactly `length - 8` bytes).
    pub payload: &'a [u8],
}

impl<'a> UdpPacket<'a> {
    /// Parses `seg` (the IP payload of a datagram from `src` to `dst`). The length field must lie
    /// in `8..=seg.len()` (bytes beyond it are ignored, as IP allows); a non-zero checksum must
    /// verify (zero means "not computed", RFC 768).
    pub fn parse(seg: &'a [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Self, DropReason> {
        Self::parse_with(seg, src, dst, true)
    }

    /// [`parse`](Self::parse), verifying the checksum only if `verify` (the NIC may have
    /// validated it already: receive checksum offload).
    pub fn parse_with(
        seg: &'a [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify: bool,
    ) -> Result<Self, DropReason> {
        let h = seg
            .first_chunk::<UDP_HEADER_LEN>()
            .ok_or(DropReason::UdpTruncated)?;
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        if len < UDP_HEADER_LEN || len > seg.len() {
            return Err(DropReason::UdpLength);
        }
        let seg = seg.get(..len).ok_or(DropReason::UdpLength)?;
        if verify && u16::from_be_bytes([h[6], h[7]]) != 0 {
            let mut c = Checksum::new();
            // len <= seg.len() <= u16::MAX because it came from a 16-bit field.
            c.add_pseudo_header(src, dst, IPPROTO_UDP, len as u16);
            c.add_bytes(seg);
            if c.finish() != 0 {
                return Err(DropReason::UdpChecksum);
            }
        }
        Ok(UdpPacket {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
            payload: seg.get(UDP_HEADER_LEN..).unwrap_or_default(),
        })
    }
}

/// Writes the UDP header into `seg`, which holds the whole datagram (8 header bytes followed by
/// the payload, already in place): ports, length `seg.len()` and the checksum over the
/// pseudo-header. Returns false (writing nothing) if `seg` is shorter than 8 or longer than
/// 65,535 bytes.
pub fn write_header(
    seg: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
) -> bool {
    let Ok(len) = u16::try_from(seg.len()) else {
        return false;
    };
    let Some(h) = seg.first_chunk_mut::<UDP_HEADER_LEN>() else {
        return false;
    };
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h[6..8].copy_from_slice(&[0, 0]);
    let mut c = Checksum::new();
    c.add_pseudo_header(src, dst, IPPROTO_UDP, len);
    c.add_bytes(seg);
    // A computed zero is sent as all ones; zero on the wire means "no checksum" (RFC 768).
    let sum = match c.finish() {
        0 => 0xffff,
        s => s,
    };
    if let Some(f) = seg.get_mut(6..8) {
        f.copy_from_slice(&sum.to_be_bytes());
    }
    true
}

/// Like [`write_header`] for transmit checksum offload: the checksum field gets the folded,
/// uncomplemented pseudo-header sum and the NIC completes the checksum over the whole datagram
/// (virtio `VIRTIO_NET_HDR_F_NEEDS_CSUM` with `csum_offset` [`UDP_CHECKSUM_OFFSET`]).
pub fn write_header_partial(
    seg: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
) -> bool {
    let Ok(len) = u16::try_from(seg.len()) else {
        return false;
    };
    let Some(h) = seg.first_chunk_mut::<UDP_HEADER_LEN>() else {
        return false;
    };
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[4..6].copy_from_slice(&len.to_be_bytes());
    let mut c = Checksum::new();
    c.add_pseudo_header(src, dst, IPPROTO_UDP, len);
    h[6..8].copy_from_slice(&c.sum16().to_be_bytes());
    true
}

/// Offset of the checksum field inside the UDP header.
pub const UDP_CHECKSUM_OFFSET: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_checksum_completed_by_the_nic_equals_the_full_one() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let mut full = [0u8; 8 + 13];
        full[8..].copy_from_slice(b"hello, ferrix");
        let mut part = full;
        assert!(write_header(&mut full, src, dst, 7, 4000));
        assert!(write_header_partial(&mut part, src, dst, 7, 4000));
        // What the NIC does: checksum everything from the UDP header on (the field holds the
        // pseudo-header sum) and store the complement.
        let mut c = Checksum::new();
        c.add_bytes(&part);
        let done = match c.finish() {
            0 => 0xffff,
            s => s,
        };
        part[6..8].copy_from_slice(&done.to_be_bytes());
        assert_eq!(part, full);
        assert!(UdpPacket::parse(&full, src, dst).is_ok());
    }

    #[test]
    fn offloaded_receive_skips_verification() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut seg = [0u8; 8 + 4];
        assert!(write_header(&mut seg, src, dst, 1, 2));
        seg[6] ^= 0xff; // corrupt the checksum
        assert_eq!(
            UdpPacket::parse(&seg, src, dst).unwrap_err(),
            DropReason::UdpChecksum
        );
        assert!(UdpPacket::parse_with(&seg, src, dst, false).is_ok());
    }

    /// A UDP datagram (127.0.0.1:40000 -> 127.0.0.1:7777, "hello ferrix") captured on Linux
    /// loopback. Loopback leaves the checksum partial (CHECKSUM_PARTIAL): the field holds the
    /// folded pseudo-header sum, 0xfe27. The full checksum, 0xc0df, was computed separately
    /// with a straightforward RFC 1071 implementation.
    const CAPTURED: [u8; 20] = [
        0x9c, 0x40, 0x1e, 0x61, 0x00, 0x14, 0xfe, 0x27, b'h', b'e', b'l', b'l', b'o', b' ', b'f',
        b'e', b'r', b'r', b'i', b'x',
    ];
    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

    #[test]
    fn checksum_matches_linux_and_reference() {
        let mut c = Checksum::new();
        c.add_pseudo_header(LO, LO, IPPROTO_UDP, 20);
        assert_eq!(c.sum16(), 0xfe27, "Linux's partial checksum");
        let mut seg = CAPTURED;
        assert!(write_header(&mut seg, LO, LO, 40000, 7777));
        assert_eq!(&seg[6..8], &0xc0dfu16.to_be_bytes());
        assert_eq!(&seg[..6], &CAPTURED[..6]);
        let p = UdpPacket::parse(&seg, LO, LO).unwrap();
        assert_eq!(
            (p.src_port, p.dst_port, p.payload),
            (40000, 7777, &b"hello ferrix"[..])
        );
        // The partial value does not verify as a full checksum.
        assert_eq!(
            UdpPacket::parse(&CAPTURED, LO, LO),
            Err(DropReason::UdpChecksum)
        );
    }

    #[test]
    fn zero_checksum_accepted_and_lengths_checked() {
        let mut seg = CAPTURED;
        seg[6..8].copy_from_slice(&[0, 0]);
        assert!(UdpPacket::parse(&seg, LO, LO).is_ok());
        assert_eq!(
            UdpPacket::parse(&seg[..7], LO, LO),
            Err(DropReason::UdpTruncated)
        );
        assert_eq!(
            UdpPacket::parse(&seg[..19], LO, LO),
            Err(DropReason::UdpLength)
        );
        seg[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::parse(&seg, LO, LO), Err(DropReason::UdpLength));
        // A shorter length field is fine: the rest is ignored.
        seg[4..6].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(UdpPacket::parse(&seg, LO, LO).unwrap().payload, b"he");
        assert!(!write_header(&mut [0u8; 7], LO, LO, 1, 2));
    }
}
