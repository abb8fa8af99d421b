//! IGMPv2 (RFC 2236), the host side: the messages a group member sends and answers.
//!
//! A ferrix host that joins a group ([`crate::NetStack::join_group`]) sends an unsolicited
//! Membership Report for it, and answers a Membership Query (general, to 224.0.0.1, or for
//! one of its groups) with a report per group, so that a snooping switch or a multicast
//! router keeps forwarding the group to it. Reports are sent at once rather than after the
//! random delay RFC 2236 §3 asks for (the delay only thins out duplicate reports on a
//! segment; a switch that snoops needs every member's). Leave messages are not sent: ferrix
//! never leaves a group it joined.
//!
//! Every IGMPv2 message is 8 bytes: type, max response time, checksum (over the 8 bytes),
//! group address. Reports go to the group itself with TTL 1 and the Router Alert option
//! (RFC 2113), which makes their IPv4 header 24 bytes.

use crate::checksum;
use crate::eth::MacAddr;
use crate::stats::DropReason;
use core::net::Ipv4Addr;

/// Length of an IGMPv2 message.
pub const IGMP_LEN: usize = 8;
/// Membership Query.
pub const TYPE_QUERY: u8 = 0x11;
/// Version 1 Membership Report.
pub const TYPE_V1_REPORT: u8 = 0x12;
/// Version 2 Membership Report.
pub const TYPE_V2_REPORT: u8 = 0x16;
/// Leave Group.
pub const TYPE_LEAVE: u8 = 0x17;
/// The all-hosts group (general queries go there).
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// IPv4 header with the 4-byte Router Alert option.
pub const REPORT_IP_HEADER_LEN: usize = 24;

/// A validated IGMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Igmp {
    /// Message type.
    pub kind: u8,
    /// The group: 0.0.0.0 in a general query.
    pub group: Ipv4Addr,
}

impl Igmp {
    /// Parses the IGMP message in an IPv4 payload: at least 8 bytes (an IGMPv3 query is
    /// longer; its first 8 bytes read as a v2 query, RFC 3376 §7.1), checksum over the whole
    /// payload.
    pub fn parse(payload: &[u8]) -> Result<Igmp, DropReason> {
        let m = payload
            .first_chunk::<IGMP_LEN>()
            .ok_or(DropReason::IgmpMalformed)?;
        if !checksum::verify(payload) {
            return Err(DropReason::IgmpMalformed);
        }
        Ok(Igmp {
            kind: m[0],
            group: Ipv4Addr::new(m[4], m[5], m[6], m[7]),
        })
    }

    /// True for a query this host must answer for `group`: general, or for that group.
    pub fn queries(&self, group: Ipv4Addr) -> bool {
        self.kind == TYPE_QUERY && (self.group.is_unspecified() || self.group == group)
    }
}

/// The Ethernet address of an IPv4 group (RFC 1112 §6.4: 01:00:5e and its low 23 bits).
pub fn group_mac(group: Ipv4Addr) -> MacAddr {
    let [_, b, c, d] = group.octets();
    MacAddr([0x01, 0x00, 0x5e, b & 0x7f, c, d])
}

/// Writes an IGMPv2 Membership Report for `group` from `src_ip` as an IPv4 datagram (24-byte
/// header with Router Alert, TTL 1, then the 8-byte message) into `buf`; returns its length
/// (32), or None if `buf` is shorter.
pub fn write_report(
    buf: &mut [u8],
    src_ip: Ipv4Addr,
    group: Ipv4Addr,
    ident: u16,
) -> Option<usize> {
    let len = REPORT_IP_HEADER_LEN + IGMP_LEN;
    let b = buf.get_mut(..len)?;
    b.fill(0);
    b[0] = 0x46; // version 4, IHL 6
    b[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    b[4..6].copy_from_slice(&ident.to_be_bytes());
    b[8] = 1; // TTL 1: link-local
    b[9] = crate::ipv4::IPPROTO_IGMP;
    b[12..16].copy_from_slice(&src_ip.octets());
    b[16..20].copy_from_slice(&group.octets());
    b[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // Router Alert, RFC 2113
    let ip_sum = checksum::checksum(&b[..REPORT_IP_HEADER_LEN]);
    b[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let m = &mut b[REPORT_IP_HEADER_LEN..];
    m[0] = TYPE_V2_REPORT;
    m[4..8].copy_from_slice(&group.octets());
    let sum = checksum::checksum(m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::Ipv4Packet;

    #[test]
    fn a_report_parses_back_as_ipv4_with_options_and_igmp() {
        let mut buf = [0u8; 64];
        let g = Ipv4Addr::new(224, 123, 123, 123);
        let n = write_report(&mut buf, Ipv4Addr::new(10, 0, 0, 2), g, 7).unwrap();
        assert_eq!(n, 32);
        assert_eq!(
            Ipv4Packet::parse(&buf[..n], 1500),
            Err(DropReason::IpOptions)
        );
        let ip = Ipv4Packet::parse_with_options(&buf[..n], 1500).unwrap();
        assert_eq!((ip.dst, ip.ttl, ip.protocol), (g, 1, 2));
        let m = Igmp::parse(ip.payload).unwrap();
        assert_eq!(
            m,
            Igmp {
                kind: TYPE_V2_REPORT,
                group: g
            }
        );
        assert!(!m.queries(g));
    }

    #[test]
    fn queries_general_and_specific() {
        let mut q = [TYPE_QUERY, 100, 0, 0, 0, 0, 0, 0];
        let s = checksum::checksum(&q);
        q[2..4].copy_from_slice(&s.to_be_bytes());
        let m = Igmp::parse(&q).unwrap();
        let g = Ipv4Addr::new(224, 1, 2, 3);
        assert!(m.queries(g));
        let mut q2 = [TYPE_QUERY, 100, 0, 0, 224, 9, 9, 9];
        let s = checksum::checksum(&q2);
        q2[2..4].copy_from_slice(&s.to_be_bytes());
        let m2 = Igmp::parse(&q2).unwrap();
        assert!(!m2.queries(g));
        assert!(m2.queries(Ipv4Addr::new(224, 9, 9, 9)));
    }

    #[test]
    fn truncated_or_bad_checksum_is_malformed() {
        assert_eq!(Igmp::parse(&[0x11; 7]), Err(DropReason::IgmpMalformed));
        assert_eq!(
            Igmp::parse(&[TYPE_QUERY, 0, 0, 0, 0, 0, 0, 0]),
            Err(DropReason::IgmpMalformed)
        );
    }

    #[test]
    fn group_macs_keep_the_low_23_bits() {
        assert_eq!(
            group_mac(Ipv4Addr::new(224, 123, 123, 123)).0,
            [1, 0, 0x5e, 0x7b, 0x7b, 0x7b]
        );
        assert_eq!(
            group_mac(Ipv4Addr::new(239, 255, 1, 2)).0,
            [1, 0, 0x5e, 0x7f, 1, 2]
        );
    }
}
