//! Ethernet II framing (IEEE 802.3 with an EtherType, RFC 894): the MAC address type, a
//! zero-copy header view and a header writer. Frames reach us without preamble or FCS.

use crate::stats::DropReason;
use core::fmt;

/// Destination MAC + source MAC + EtherType.
pub const ETH_HEADER_LEN: usize = 14;
/// The standard Ethernet MTU (IEEE 802.3 payload size, RFC 894).
pub const ETH_MTU: usize = 1500;
/// Smallest frame without FCS (IEEE 802.3: 64 bytes minus the 4-byte FCS); shorter frames are
/// padded by the sender, so the IP total length may be less than the frame.
pub const ETH_MIN_FRAME: usize = 60;

/// EtherType of IPv4 (IEEE registry, RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an IEEE 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of an IEEE 802.1ad (QinQ) service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// EtherType of IPv6 (RFC 2464); counted as an unknown EtherType for now.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (the unknown target hardware address of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for a group address (I/G bit set): multicast and broadcast.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Reads a MAC address from the first 6 bytes of `b`, if present.
    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        b.get(..6)?.try_into().ok().map(MacAddr)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A parsed Ethernet II header and the payload it frames (borrowed, no copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthFrame<'a> {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// EtherType.
    pub ethertype: u16,
    /// Everything after the header (may include Ethernet padding).
    pub payload: &'a [u8],
}

impl<'a> EthFrame<'a> {
    /// Parses the header of `frame`. VLAN-tagged frames are refused ([`DropReason::Vlan`]):
    /// ferrix drives its NIC directly and does not configure VLANs.
    pub fn parse(frame: &'a [u8]) -> Result<Self, DropReason> {
        let (hdr, payload) = frame
            .split_first_chunk::<ETH_HEADER_LEN>()
            .ok_or(DropReason::EthTruncated)?;
        let ethertype = u16::from_be_bytes([hdr[12], hdr[13]]);
        if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
            return Err(DropReason::Vlan);
        }
        Ok(EthFrame {
            dst: MacAddr([hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5]]),
            src: MacAddr([hdr[6], hdr[7], hdr[8], hdr[9], hdr[10], hdr[11]]),
            ethertype,
            payload,
        })
    }
}

/// Writes an Ethernet II header into the first [`ETH_HEADER_LEN`] bytes of `buf`; returns false
/// (writing nothing) if `buf` is shorter.
pub fn write_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> bool {
    let Some(hdr) = buf.first_chunk_mut::<ETH_HEADER_LEN>() else {
        return false;
    };
    hdr[0..6].copy_from_slice(&dst.0);
    hdr[6..12].copy_from_slice(&src.0);
    hdr[12..14].copy_from_slice(&ethertype.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut buf = [0u8; 20];
        let dst = MacAddr([1, 2, 3, 4, 5, 6]);
        let src = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert!(write_header(&mut buf, dst, src, ETHERTYPE_ARP));
        buf[14] = 0xaa;
        let f = EthFrame::parse(&buf).unwrap();
        assert_eq!((f.dst, f.src, f.ethertype), (dst, src, ETHERTYPE_ARP));
        assert_eq!(f.payload.len(), 6);
        assert_eq!(f.payload[0], 0xaa);
    }

    #[test]
    fn truncated_and_vlan() {
        assert_eq!(EthFrame::parse(&[0; 13]), Err(DropReason::EthTruncated));
        let mut buf = [0u8; 14];
        assert!(EthFrame::parse(&buf).unwrap().payload.is_empty());
        buf[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert_eq!(EthFrame::parse(&buf), Err(DropReason::Vlan));
        buf[12..14].copy_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
        assert_eq!(EthFrame::parse(&buf), Err(DropReason::Vlan));
        assert!(!write_header(
            &mut [0u8; 13],
            MacAddr::ZERO,
            MacAddr::ZERO,
            0
        ));
    }

    #[test]
    fn mac_display_and_flags() {
        let m = MacAddr([0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
        assert_eq!(m.to_string(), "52:54:00:ab:cd:ef");
        assert!(!m.is_multicast());
        assert!(MacAddr::BROADCAST.is_multicast() && MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
    }
}
