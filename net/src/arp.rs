//! ARP packets (RFC 826) for Ethernet/IPv4 only: a parser and a writer. The shared address
//! table lives in [`arp_table`](crate::arp_table); the protocol logic in [`stack`](crate::stack).

use crate::eth::MacAddr;
use crate::stats::DropReason;
use core::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet (RFC 826 with hln = 6, pln = 4).
pub const ARP_LEN: usize = 28;
/// Hardware type Ethernet (RFC 826, IANA "Hardware Types").
pub const ARP_HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4 (the IPv4 EtherType).
pub const ARP_PTYPE_IPV4: u16 = 0x0800;
/// Opcode "request" (RFC 826).
pub const ARP_OP_REQUEST: u16 = 1;
/// Opcode "reply" (RFC 826).
pub const ARP_OP_REPLY: u16 = 2;

/// Request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    /// Who has `target_ip`?
    Request,
    /// `sender_ip` is at `sender_mac`.
    Reply,
}

impl ArpOp {
    fn code(self) -> u16 {
        match self {
            ArpOp::Request => ARP_OP_REQUEST,
            ArpOp::Reply => ARP_OP_REPLY,
        }
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

fn ip_at(b: &[u8; ARP_LEN], at: usize) -> Ipv4Addr {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    Ipv4Addr::from(a)
}

fn mac_at(b: &[u8; ARP_LEN], at: usize) -> MacAddr {
    b.get(at..)
        .and_then(MacAddr::from_slice)
        .unwrap_or_default()
}

impl ArpPacket {
    /// Parses an ARP packet (the Ethernet payload; trailing padding is ignored).
    pub fn parse(data: &[u8]) -> Result<Self, DropReason> {
        let b = data
            .first_chunk::<ARP_LEN>()
            .ok_or(DropReason::ArpTruncated)?;
        let htype = u16::from_be_bytes([b[0], b[1]]);
        let ptype = u16::from_be_bytes([b[2], b[3]]);
        if htype != ARP_HTYPE_ETHERNET || ptype != ARP_PTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
            return Err(DropReason::ArpUnsupported);
        }
        let op = match u16::from_be_bytes([b[6], b[7]]) {
            ARP_OP_REQUEST => ArpOp::Request,
            ARP_OP_REPLY => ArpOp::Reply,
            _ => return Err(DropReason::ArpOp),
        };
        Ok(ArpPacket {
            op,
            sender_mac: mac_at(b, 8),
            sender_ip: ip_at(b, 14),
            target_mac: mac_at(b, 18),
            target_ip: ip_at(b, 24),
        })
    }

    /// Writes the packet into the first [`ARP_LEN`] bytes of `buf`; false if `buf` is shorter.
    pub fn write(&self, buf: &mut [u8]) -> bool {
        let Some(b) = buf.first_chunk_mut::<ARP_LEN>() else {
            return false;
        };
        b[0..2].copy_from_slice(&ARP_HTYPE_ETHERNET.to_be_bytes());
        b[2..4].copy_from_slice(&ARP_PTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.code().to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request laid out by hand from RFC 826: who has 10.0.2.15? tell 10.0.2.2.
    const KNOWN_REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02, 0x0a,
        0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x02, 0x0f,
    ];

    #[test]
    fn parse_known_request_and_roundtrip() {
        let p = ArpPacket::parse(&KNOWN_REQUEST).unwrap();
        assert_eq!(p.op, ArpOp::Request);
        assert_eq!(p.sender_mac, MacAddr([0x52, 0x55, 0x0a, 0, 2, 2]));
        assert_eq!(p.sender_ip, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(p.target_mac, MacAddr::ZERO);
        assert_eq!(p.target_ip, Ipv4Addr::new(10, 0, 2, 15));
        let mut out = [0u8; 28];
        assert!(p.write(&mut out));
        assert_eq!(out, KNOWN_REQUEST);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            ArpPacket::parse(&KNOWN_REQUEST[..27]),
            Err(DropReason::ArpTruncated)
        );
        let mut b = KNOWN_REQUEST;
        b[1] = 6; // IEEE 802 hardware type
        assert_eq!(ArpPacket::parse(&b), Err(DropReason::ArpUnsupported));
        let mut b = KNOWN_REQUEST;
        b[5] = 16;
        assert_eq!(ArpPacket::parse(&b), Err(DropReason::ArpUnsupported));
        let mut b = KNOWN_REQUEST;
        b[7] = 3; // RARP request
        assert_eq!(ArpPacket::parse(&b), Err(DropReason::ArpOp));
        assert!(
            !ArpPacket::parse(&KNOWN_REQUEST)
                .unwrap()
                .write(&mut [0; 27])
        );
    }
}
