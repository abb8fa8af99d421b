//! Frame builders for tests: valid frames between a client and a server, and the
//! malformed-frame corpus (each frame paired with the [`DropReason`] it must be counted under).
//!
//! Used by this crate's tests, the fuzz targets (as seeds) and integration tests that inject the
//! same frames into a real guest. Available with the `corpus` feature.
//!
//! The frames are built exactly as listed, without Ethernet padding: a path that pads short
//! frames to 60 bytes turns the truncated-IP case into another IP error.

use crate::arp::{ARP_OP_REQUEST, ArpOp, ArpPacket};
use crate::checksum;
use crate::config::IfConfig;
use crate::eth::{
    self, ETH_HEADER_LEN, ETH_MTU, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN,
    MacAddr,
};
use crate::icmp::{self, ICMP_ECHO_REQUEST};
use crate::ipv4::{IPPROTO_ICMP, IPPROTO_UDP, IPV4_DEFAULT_TTL, IPV4_HEADER_LEN, Ipv4Header};
use crate::stack::{TxQueue, write_udp_frame};
use crate::stats::DropReason;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

/// The two ends of the test traffic: a client sending to a server (the stack under test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The client's MAC.
    pub client_mac: MacAddr,
    /// The client's IP.
    pub client_ip: Ipv4Addr,
    /// The client's UDP port.
    pub client_port: u16,
    /// The server's MAC.
    pub server_mac: MacAddr,
    /// The server's IP.
    pub server_ip: Ipv4Addr,
    /// A UDP port bound on the server.
    pub server_port: u16,
    /// A UDP port not bound on the server.
    pub unbound_port: u16,
}

impl Default for Endpoints {
    /// 10.0.0.1 (02:00:00:00:00:01) port 40000 -> 10.0.0.2 (02:00:00:00:00:02), echo port 7,
    /// unbound port 9.
    fn default() -> Self {
        Endpoints {
            client_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            client_ip: Ipv4Addr::new(10, 0, 0, 1),
            client_port: 40000,
            server_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            server_ip: Ipv4Addr::new(10, 0, 0, 2),
            server_port: 7,
            unbound_port: 9,
        }
    }
}

/// One malformed frame and the reason it must be dropped for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Short description.
    pub name: &'static str,
    /// The frame.
    pub frame: Vec<u8>,
    /// The counter it must land in.
    pub expect: DropReason,
}

/// Recomputes the IPv4 header checksum of an Ethernet frame after a test mutated the header.
pub fn fix_ip_checksum(frame: &mut [u8]) {
    let Some(&vihl) = frame.get(ETH_HEADER_LEN) else {
        return;
    };
    let hl = usize::from(vihl & 0xf) * 4;
    let Some(h) = frame.get_mut(ETH_HEADER_LEN..ETH_HEADER_LEN + hl) else {
        return;
    };
    if let Some(c) = h.get_mut(10..12) {
        c.copy_from_slice(&[0, 0]);
    }
    let sum = checksum::checksum(h);
    if let Some(c) = h.get_mut(10..12) {
        c.copy_from_slice(&sum.to_be_bytes());
    }
}

impl Endpoints {
    /// The server's interface configuration (a /24, no gateway, MTU 1500).
    pub fn server_config(&self) -> IfConfig {
        IfConfig {
            mac: self.server_mac,
            ip: self.server_ip,
            prefix_len: 24,
            gateway: None,
            mtu: ETH_MTU,
        }
    }

    /// A valid UDP datagram from the client to `port` on the server.
    pub fn udp_to(&self, port: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; crate::stack::UDP_PAYLOAD_OFFSET + payload.len()];
        write_udp_frame(
            &mut f,
            self.server_mac,
            self.client_mac,
            self.client_ip,
            self.server_ip,
            1,
            self.client_port,
            port,
            payload,
        );
        f
    }

    /// A valid UDP datagram from the client to the bound server port.
    pub fn udp(&self, payload: &[u8]) -> Vec<u8> {
        self.udp_to(self.server_port, payload)
    }

    /// A valid IPv4 frame from the client to the server carrying `l4` as `protocol`.
    pub fn ipv4(&self, protocol: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ETH_HEADER_LEN + IPV4_HEADER_LEN + l4.len()];
        eth::write_header(&mut f, self.server_mac, self.client_mac, ETHERTYPE_IPV4);
        let h = Ipv4Header {
            src: self.client_ip,
            dst: self.server_ip,
            protocol,
            ttl: IPV4_DEFAULT_TTL,
            ident: 1,
            payload_len: u16::try_from(l4.len()).unwrap_or(u16::MAX),
        };
        if let Some(b) = f.get_mut(ETH_HEADER_LEN..) {
            h.write(b);
        }
        if let Some(b) = f.get_mut(ETH_HEADER_LEN + IPV4_HEADER_LEN..) {
            b.copy_from_slice(l4);
        }
        f
    }

    /// An ICMP echo message of type `icmp_type` (8 = request).
    pub fn icmp_echo(icmp_type: u8, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; icmp::ICMP_HEADER_LEN + data.len()];
        icmp::write_echo(&mut m, icmp_type, ident, seq, data);
        m
    }

    /// A valid ICMP echo request from the client to the server.
    pub fn ping(&self, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
        self.ipv4(
            IPPROTO_ICMP,
            &Self::icmp_echo(ICMP_ECHO_REQUEST, ident, seq, data),
        )
    }

    /// An ARP request from the client asking for `target_ip` (broadcast).
    pub fn arp_request(&self, target_ip: Ipv4Addr) -> Vec<u8> {
        self.arp(ArpOp::Request, MacAddr::BROADCAST, MacAddr::ZERO, target_ip)
    }

    /// An ARP reply from the client to the server (the client is at `client_mac`).
    pub fn arp_reply(&self) -> Vec<u8> {
        self.arp(
            ArpOp::Reply,
            self.server_mac,
            self.server_mac,
            self.server_ip,
        )
    }

    fn arp(
        &self,
        op: ArpOp,
        eth_dst: MacAddr,
        target_mac: MacAddr,
        target_ip: Ipv4Addr,
    ) -> Vec<u8> {
        let mut f = vec![0u8; ETH_HEADER_LEN + crate::arp::ARP_LEN];
        eth::write_header(&mut f, eth_dst, self.client_mac, ETHERTYPE_ARP);
        let p = ArpPacket {
            op,
            sender_mac: self.client_mac,
            sender_ip: self.client_ip,
            target_mac,
            target_ip,
        };
        if let Some(b) = f.get_mut(ETH_HEADER_LEN..) {
            p.write(b);
        }
        f
    }

    /// The malformed-frame corpus: one frame per way to be wrong, each with the reason it
    /// must be counted under by a server configured as [`server_config`](Self::server_config)
    /// with `server_port` bound.
    pub fn malformed(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        let mut add = |name, frame, expect| {
            cases.push(Case {
                name,
                frame,
                expect,
            })
        };
        let udp = self.udp(b"corpus");
        let ping = self.ping(1, 1, b"corpus");
        let arp = self.arp_request(self.server_ip);
        const IP: usize = ETH_HEADER_LEN;
        const L4: usize = ETH_HEADER_LEN + IPV4_HEADER_LEN;

        // Ethernet.
        add(
            "eth truncated",
            udp[..ETH_HEADER_LEN - 1].to_vec(),
            DropReason::EthTruncated,
        );
        let mut f = udp.clone();
        f[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        add("vlan tagged", f, DropReason::Vlan);
        let mut f = udp.clone();
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        add("ipv6 ethertype", f, DropReason::Ethertype);
        let mut f = udp.clone();
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        add("other dst mac", f, DropReason::DstMac);
        let mut f = udp.clone();
        f[6] |= 1;
        add("multicast src mac", f, DropReason::SrcMac);
        add(
            "oversize frame",
            self.udp(&[0u8; ETH_MTU]),
            DropReason::Oversize,
        );

        // ARP.
        add(
            "arp truncated",
            arp[..ETH_HEADER_LEN + 20].to_vec(),
            DropReason::ArpTruncated,
        );
        let mut f = arp.clone();
        f[IP + 1] = 6;
        add("arp not ethernet", f, DropReason::ArpUnsupported);
        let mut f = arp.clone();
        f[IP + 7] = 3;
        add("arp opcode 3", f, DropReason::ArpOp);
        add(
            "arp for another ip",
            self.arp_request(Ipv4Addr::new(10, 0, 0, 77)),
            DropReason::ArpNotForUs,
        );
        let mut f = arp.clone();
        f[IP + 14..IP + 18].copy_from_slice(&self.server_ip.octets());
        add("arp claiming our ip", f, DropReason::ArpConflict);
        debug_assert_eq!(
            u16::from_be_bytes([arp[IP + 6], arp[IP + 7]]),
            ARP_OP_REQUEST
        );

        // IPv4.
        add(
            "ip truncated",
            udp[..IP + 10].to_vec(),
            DropReason::IpTruncated,
        );
        let mut f = udp.clone();
        f[IP] = 0x65;
        add("ip version 6", f, DropReason::IpVersion);
        let mut f = udp.clone();
        f[IP] = 0x44;
        add("ip header length 16", f, DropReason::BadLength);
        let mut f = udp.clone();
        f[IP + 10] ^= 0xff;
        add("bad ip checksum", f, DropReason::IpChecksum);
        let mut f = udp.clone();
        let total = (f.len() - IP + 2) as u16;
        f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
        fix_ip_checksum(&mut f);
        add("ip total length beyond frame", f, DropReason::BadLength);
        let mut f = udp.clone();
        f[IP + 2..IP + 4].copy_from_slice(&12u16.to_be_bytes());
        fix_ip_checksum(&mut f);
        add("ip total length below header", f, DropReason::BadLength);
        let mut f = udp.clone();
        f[IP + 2..IP + 4].copy_from_slice(&1600u16.to_be_bytes());
        fix_ip_checksum(&mut f);
        add("ip total length over mtu", f, DropReason::Oversize);
        let mut f = udp.clone();
        // IHL 6: a 4-byte NOP/EOL option, the UDP header starts 4 bytes later.
        f.splice(L4..L4, [1, 1, 1, 0]);
        f[IP] = 0x46;
        let total = (f.len() - IP) as u16;
        f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
        fix_ip_checksum(&mut f);
        add("ip options", f, DropReason::IpOptions);
        let mut f = udp.clone();
        f[IP + 6] = 0x20; // MF
        fix_ip_checksum(&mut f);
        add("first fragment", f, DropReason::IpFragment);
        let mut f = udp.clone();
        f[IP + 6..IP + 8].copy_from_slice(&185u16.to_be_bytes());
        fix_ip_checksum(&mut f);
        add("last fragment", f, DropReason::IpFragment);
        let mut f = udp.clone();
        f[IP + 12..IP + 16].copy_from_slice(&[255; 4]);
        fix_ip_checksum(&mut f);
        add("broadcast source", f, DropReason::IpSrc);
        let mut f = udp.clone();
        f[IP + 16..IP + 20].copy_from_slice(&[10, 0, 0, 77]);
        fix_ip_checksum(&mut f);
        add("ip for another host", f, DropReason::IpNotForUs);
        add("tcp", self.ipv4(6, &[0u8; 20]), DropReason::IpProtocol);

        // ICMP.
        add(
            "icmp truncated",
            self.ipv4(IPPROTO_ICMP, &[8, 0, 0xf7, 0xff]),
            DropReason::IcmpTruncated,
        );
        let mut f = ping.clone();
        f[L4 + 2] ^= 0x55;
        add("bad icmp checksum", f, DropReason::IcmpChecksum);
        add(
            "icmp echo reply",
            self.ipv4(IPPROTO_ICMP, &Self::icmp_echo(0, 1, 1, b"x")),
            DropReason::IcmpType,
        );
        let mut f = ping.clone();
        // The server's subnet broadcast address (the config is always a /24).
        let bcast = self
            .server_config()
            .subnet_broadcast()
            .unwrap_or(Ipv4Addr::BROADCAST);
        f[IP + 16..IP + 20].copy_from_slice(&bcast.octets());
        f[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
        fix_ip_checksum(&mut f);
        add("broadcast ping", f, DropReason::IcmpBroadcast);

        // UDP.
        add(
            "udp truncated",
            self.ipv4(IPPROTO_UDP, &[0, 1, 0, 7]),
            DropReason::UdpTruncated,
        );
        let mut f = udp.clone();
        let ulen = (f.len() - L4 + 1) as u16;
        f[L4 + 4..L4 + 6].copy_from_slice(&ulen.to_be_bytes());
        add("udp length beyond ip payload", f, DropReason::UdpLength);
        let mut f = udp.clone();
        f[L4 + 6] ^= 0x01;
        add("bad udp checksum", f, DropReason::UdpChecksum);
        let mut f = udp.clone();
        if let Some(last) = f.last_mut() {
            *last ^= 0x80;
        }
        add("udp payload corrupted", f, DropReason::UdpChecksum);
        add(
            "udp to unbound port",
            self.udp_to(self.unbound_port, b"x"),
            DropReason::UdpNoPort,
        );
        cases
    }
}

/// A [`TxQueue`] that records every frame (or refuses them all while `full`).
#[derive(Clone, Debug, Default)]
pub struct CaptureTx {
    /// Frames transmitted so far.
    pub frames: Vec<Vec<u8>>,
    /// When true, `transmit` fails as if the ring were full.
    pub full: bool,
}

impl TxQueue for CaptureTx {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        if self.full {
            return false;
        }
        let mut buf = vec![0u8; len];
        fill(&mut buf);
        self.frames.push(buf);
        true
    }
}

/// An R2P2 transport that drops every datagram, counting its bytes (so a benchmark's sends are
/// not optimised away): for benchmarks, instruction counts and fuzzing.
#[derive(Default, Debug)]
pub struct NullTransport(pub usize);

impl crate::r2p2::Transport for NullTransport {
    #[inline]
    fn send(
        &mut self,
        _dst: core::net::SocketAddrV4,
        parts: &[&[u8]],
    ) -> Result<(), crate::r2p2::SendFailed> {
        self.0 += parts.iter().map(|p| p.len()).sum::<usize>();
        Ok(())
    }
}

/// An R2P2 clock stopped at a fixed time (nanoseconds).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub u64);

impl crate::r2p2::Clock for FixedClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_distinct_and_named_uniquely() {
        let cases = Endpoints::default().malformed();
        let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cases.len());
        for (i, a) in cases.iter().enumerate() {
            for b in &cases[i + 1..] {
                assert_ne!(a.frame, b.frame, "{} and {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn fix_ip_checksum_is_total() {
        fix_ip_checksum(&mut []);
        fix_ip_checksum(&mut [0u8; 15]);
        let mut f = Endpoints::default().udp(b"x");
        let orig = f.clone();
        f[ETH_HEADER_LEN + 10] ^= 0xff;
        fix_ip_checksum(&mut f);
        assert_eq!(f, orig);
    }
}
