//! The per-core stack end to end: ARP, ICMP echo, UDP receive/send/reply in place, shared ARP
//! cache across cores, transmit failures and statistics.

mod common;

use ferrix_net::arp::{ArpOp, ArpPacket};
use ferrix_net::corpus::{CaptureTx, Endpoints};
use ferrix_net::eth::{ETHERTYPE_ARP, ETHERTYPE_IPV4, EthFrame};
use ferrix_net::icmp::{ICMP_ECHO_REPLY, ICMP_HEADER_LEN};
use ferrix_net::ipv4::{IPPROTO_ICMP, IPPROTO_UDP, Ipv4Packet};
use ferrix_net::stack::UDP_PAYLOAD_OFFSET;
use ferrix_net::udp::UdpPacket;
use ferrix_net::{
    ArpConfig, ArpTable, BindError, DropReason, IfConfig, MacAddr, NetStack, SendError, checksum,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

const S: u64 = 1_000_000_000;

fn parse_udp(frame: &[u8]) -> (EthFrame<'_>, Ipv4Packet<'_>, UdpPacket<'_>) {
    let eth = EthFrame::parse(frame).unwrap();
    assert_eq!(eth.ethertype, ETHERTYPE_IPV4);
    let ip = Ipv4Packet::parse(eth.payload, 1500).unwrap();
    assert_eq!(ip.protocol, IPPROTO_UDP);
    let udp = UdpPacket::parse(ip.payload, ip.src, ip.dst).unwrap();
    (eth, ip, udp)
}

fn parse_arp(frame: &[u8]) -> (EthFrame<'_>, ArpPacket) {
    let eth = EthFrame::parse(frame).unwrap();
    assert_eq!(eth.ethertype, ETHERTYPE_ARP);
    assert_eq!(frame.len(), 60, "padded to the Ethernet minimum");
    (eth, ArpPacket::parse(eth.payload).unwrap())
}

#[test]
fn answers_ping() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    assert!(
        s.receive(&ep.ping(0x1234, 9, b"abcdefgh"), 5, &mut tx)
            .is_none()
    );
    let [reply] = &tx.frames[..] else {
        panic!("{} frames", tx.frames.len())
    };
    let eth = EthFrame::parse(reply).unwrap();
    assert_eq!((eth.dst, eth.src), (ep.client_mac, ep.server_mac));
    let ip = Ipv4Packet::parse(eth.payload, 1500).unwrap();
    assert_eq!(
        (ip.src, ip.dst, ip.protocol),
        (ep.server_ip, ep.client_ip, IPPROTO_ICMP)
    );
    assert!(checksum::verify(ip.payload));
    assert_eq!(ip.payload[0], ICMP_ECHO_REPLY);
    assert_eq!(&ip.payload[4..8], &[0x12, 0x34, 0, 9]);
    assert_eq!(&ip.payload[ICMP_HEADER_LEN..], b"abcdefgh");
    assert_eq!(s.stats().tx_packets, 1);
    assert_eq!(s.stats().total_drops(), 0);
}

#[test]
fn answers_arp_and_learns_the_sender() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    s.receive(&ep.arp_request(ep.server_ip), S, &mut tx);
    let (eth, arp) = parse_arp(&tx.frames[0]);
    assert_eq!((eth.dst, eth.src), (ep.client_mac, ep.server_mac));
    assert_eq!(arp.op, ArpOp::Reply);
    assert_eq!(
        (arp.sender_mac, arp.sender_ip),
        (ep.server_mac, ep.server_ip)
    );
    assert_eq!(
        (arp.target_mac, arp.target_ip),
        (ep.client_mac, ep.client_ip)
    );
    assert_eq!(s.arp_table().lookup(ep.client_ip, S), Some(ep.client_mac));
    // A request for someone else teaches us nothing new.
    let other = Endpoints {
        client_ip: Ipv4Addr::new(10, 0, 0, 50),
        ..ep
    };
    s.receive(&other.arp_request(Ipv4Addr::new(10, 0, 0, 60)), S, &mut tx);
    assert_eq!(s.arp_table().lookup(other.client_ip, S), None);
    assert_eq!(s.stats().drops(DropReason::ArpNotForUs), 1);
    assert_eq!(tx.frames.len(), 1);
}

#[test]
fn udp_receive_and_reply_in_place() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    let mut frame = ep.udp(b"hello, server");
    let d = s.receive(&frame, 0, &mut tx).unwrap();
    assert_eq!(d.src, SocketAddrV4::new(ep.client_ip, ep.client_port));
    assert_eq!(d.dst, SocketAddrV4::new(ep.server_ip, ep.server_port));
    assert_eq!(d.payload, b"hello, server");
    assert_eq!(d.payload_offset, UDP_PAYLOAD_OFFSET);
    frame[UDP_PAYLOAD_OFFSET..UDP_PAYLOAD_OFFSET + 5].copy_from_slice(b"HELLO");
    let len = s.udp_reply_in_place(&mut frame, 5).unwrap();
    assert_eq!(len, UDP_PAYLOAD_OFFSET + 5);
    let (eth, ip, udp) = parse_udp(&frame[..len]);
    assert_eq!((eth.dst, eth.src), (ep.client_mac, ep.server_mac));
    assert_eq!((ip.src, ip.dst), (ep.server_ip, ep.client_ip));
    assert_eq!(
        (udp.src_port, udp.dst_port),
        (ep.server_port, ep.client_port)
    );
    assert_eq!(udp.payload, b"HELLO");
    assert_ne!(&frame[40..42], &[0, 0], "checksum computed");
    assert_eq!(s.stats().tx_packets, 1);
    // The reply is acceptable to the client's own stack.
    let mut client = NetStack::new(
        IfConfig {
            mac: ep.client_mac,
            ip: ep.client_ip,
            ..ep.server_config()
        },
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    client.bind_udp(ep.client_port).unwrap();
    assert_eq!(
        client.receive(&frame[..len], 0, &mut tx).unwrap().payload,
        b"HELLO"
    );
}

#[test]
fn reply_in_place_refuses_what_it_cannot_rewrite() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut frame = ep.udp(b"abc");
    assert_eq!(
        s.udp_reply_in_place(&mut frame, 4),
        Err(SendError::PayloadTooLarge)
    );
    assert_eq!(
        s.udp_reply_in_place(&mut frame[..41], 0),
        Err(SendError::NotUdp)
    );
    let mut ping = ep.ping(1, 1, b"0123456789");
    assert_eq!(s.udp_reply_in_place(&mut ping, 1), Err(SendError::NotUdp));
    let mut big = vec![0u8; 3000];
    big[..frame.len()].copy_from_slice(&frame);
    assert_eq!(
        s.udp_reply_in_place(&mut big, 1473),
        Err(SendError::PayloadTooLarge)
    );
    assert_eq!(s.udp_reply_in_place(&mut big, 1472), Ok(1514));
}

#[test]
fn send_resolves_parks_one_frame_and_flushes_on_reply() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    let client = SocketAddrV4::new(ep.client_ip, ep.client_port);
    assert_eq!(s.send_udp(7, client, b"first", 0, &mut tx), Ok(()));
    let (eth, arp) = parse_arp(&tx.frames[0]);
    assert_eq!(eth.dst, MacAddr::BROADCAST);
    assert_eq!((arp.op, arp.target_ip), (ArpOp::Request, ep.client_ip));
    assert_eq!(
        s.send_udp(7, client, b"second", 1, &mut tx),
        Err(SendError::ArpPending)
    );
    assert_eq!(s.stats().drops(DropReason::ArpPending), 1);
    assert_eq!(tx.frames.len(), 1, "no second request within a second");
    // The reply arrives: the parked frame goes out with the learnt MAC.
    assert!(s.receive(&ep.arp_reply(), 2, &mut tx).is_none());
    assert_eq!(tx.frames.len(), 2);
    let (eth, ip, udp) = parse_udp(&tx.frames[1]);
    assert_eq!((eth.dst, eth.src), (ep.client_mac, ep.server_mac));
    assert_eq!((ip.src, ip.dst), (ep.server_ip, ep.client_ip));
    assert_eq!(
        (udp.src_port, udp.dst_port, udp.payload),
        (7, ep.client_port, &b"first"[..])
    );
    // Now resolved: sent directly.
    assert_eq!(s.send_udp(7, client, b"third", 3, &mut tx), Ok(()));
    assert_eq!(parse_udp(&tx.frames[2]).2.payload, b"third");
    // After the entry ages out it is resolved again.
    let later = ArpConfig::default().max_age_ns + 10;
    assert_eq!(s.send_udp(7, client, b"fourth", later, &mut tx), Ok(()));
    assert_eq!(parse_arp(&tx.frames[3]).1.op, ArpOp::Request);
}

#[test]
fn routing_gateway_broadcast_and_errors() {
    let ep = Endpoints::default();
    let gw = Ipv4Addr::new(10, 0, 0, 254);
    let cfg = IfConfig {
        gateway: Some(gw),
        ..ep.server_config()
    };
    let mut s = NetStack::new(cfg, Arc::new(ArpTable::new(ArpConfig::default())));
    let mut tx = common::tx();
    let far = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 53);
    s.send_udp(1000, far, b"q", 0, &mut tx).unwrap();
    assert_eq!(parse_arp(&tx.frames[0]).1.target_ip, gw);
    let bcast = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 255), 9);
    s.send_udp(1000, bcast, b"all", 0, &mut tx).unwrap();
    assert_eq!(parse_udp(&tx.frames[1]).0.dst, MacAddr::BROADCAST);
    let mcast = SocketAddrV4::new(Ipv4Addr::new(239, 129, 1, 2), 9);
    s.send_udp(1000, mcast, b"group", 0, &mut tx).unwrap();
    assert_eq!(
        parse_udp(&tx.frames[2]).0.dst,
        MacAddr([1, 0, 0x5e, 1, 1, 2])
    );

    let mut s = common::server(&ep);
    assert_eq!(s.send_udp(1, far, b"", 0, &mut tx), Err(SendError::NoRoute));
    let zero = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9);
    assert_eq!(
        s.send_udp(1, zero, b"", 0, &mut tx),
        Err(SendError::InvalidAddress)
    );
    assert_eq!(
        s.send_udp(0, bcast, b"", 0, &mut tx),
        Err(SendError::InvalidAddress)
    );
    assert_eq!(
        s.send_udp(1, bcast, &[0; 1473], 0, &mut tx),
        Err(SendError::PayloadTooLarge)
    );
    assert!(s.send_udp(1, bcast, &[0; 1472], 0, &mut tx).is_ok());
    assert_eq!(tx.frames.last().unwrap().len(), 1514);
}

#[test]
fn tx_full_is_counted() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = CaptureTx {
        full: true,
        ..CaptureTx::default()
    };
    s.receive(&ep.ping(1, 1, b"x"), 0, &mut tx);
    let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 9);
    assert_eq!(
        s.send_udp(1, bcast, b"x", 0, &mut tx),
        Err(SendError::TxFull)
    );
    assert!(!s.announce(&mut tx));
    assert_eq!(s.stats().drops(DropReason::TxFull), 3);
    assert_eq!(s.stats().tx_packets, 0);
}

#[test]
fn announce_is_a_gratuitous_request() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    assert!(s.announce(&mut tx));
    let (eth, arp) = parse_arp(&tx.frames[0]);
    assert_eq!((eth.dst, eth.src), (MacAddr::BROADCAST, ep.server_mac));
    assert_eq!(arp.op, ArpOp::Request);
    assert_eq!((arp.sender_ip, arp.target_ip), (ep.server_ip, ep.server_ip));
    assert_eq!(arp.target_mac, MacAddr::ZERO);
    // Our own announcement coming back is not a conflict.
    s.receive(&tx.frames[0].clone(), 0, &mut tx);
    assert_eq!(s.stats().drops(DropReason::ArpConflict), 0);
    assert_eq!(s.stats().drops(DropReason::ArpNotForUs), 1);
}

#[test]
fn cores_share_the_arp_cache() {
    let ep = Endpoints::default();
    let table = Arc::new(ArpTable::new(ArpConfig::default()));
    let mut core0 = NetStack::new(ep.server_config(), table.clone());
    let mut core1 = NetStack::new(ep.server_config(), table);
    let (mut tx0, mut tx1) = (common::tx(), common::tx());
    let client = SocketAddrV4::new(ep.client_ip, ep.client_port);
    core0
        .send_udp(7, client, b"from core 0", 0, &mut tx0)
        .unwrap();
    assert_eq!(tx0.frames.len(), 1);
    // The ARP reply lands on core 1 (RSS does not hash ARP): core 1 sends core 0's frame.
    core1.receive(&ep.arp_reply(), 1, &mut tx1);
    assert_eq!(parse_udp(&tx1.frames[0]).2.payload, b"from core 0");
    core0.send_udp(7, client, b"direct", 2, &mut tx0).unwrap();
    assert_eq!(parse_udp(&tx0.frames[1]).0.dst, ep.client_mac);
    let mut total = core0.stats().clone();
    total.merge(core1.stats());
    assert_eq!(total.tx_packets, 3);
}

#[test]
fn bind_rules() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    assert_eq!(s.bind_udp(0), Err(BindError::PortZero));
    assert_eq!(s.bind_udp(ep.server_port), Err(BindError::InUse));
    assert!(s.bind_udp(65535).is_ok() && s.is_bound(65535));
    assert!(s.unbind_udp(ep.server_port));
    assert!(!s.unbind_udp(ep.server_port));
    let mut tx = common::tx();
    assert!(s.receive(&ep.udp(b"x"), 0, &mut tx).is_none());
    assert_eq!(s.stats().drops(DropReason::UdpNoPort), 1);
}

#[test]
fn broadcast_udp_is_delivered_and_padding_ignored() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    let mut f = ep.udp(b"x");
    f.resize(60, 0); // Ethernet padding
    assert_eq!(s.receive(&f, 0, &mut tx).unwrap().payload, b"x");
    let mut client = NetStack::new(
        IfConfig {
            mac: ep.client_mac,
            ip: ep.client_ip,
            ..ep.server_config()
        },
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, ep.server_port);
    client
        .send_udp(ep.client_port, bcast, b"to all", 0, &mut tx)
        .unwrap();
    let frame = tx.frames.pop().unwrap();
    let d = s.receive(&frame, 0, &mut tx).unwrap();
    assert_eq!((d.dst, d.payload), (bcast, &b"to all"[..]));
}

#[test]
fn stats_display_lists_nonzero_counters() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    s.receive(&ep.ping(1, 1, b""), 0, &mut tx);
    s.receive(&ep.udp_to(ep.unbound_port, b""), 0, &mut tx);
    let text = s.stats().to_string();
    assert!(text.contains("rx_packets 2\n"), "{text}");
    assert!(text.contains("tx_packets 1\n"), "{text}");
    assert!(text.contains("drop.udp_no_port 1\n"), "{text}");
    assert!(!text.contains("drop.ip_checksum"), "{text}");
}

#[test]
fn checksum_offload_both_ways() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    // Receive: a datagram with a wrong UDP checksum is dropped unless the NIC vouched for it.
    let mut bad = ep.udp(b"offload");
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // payload changed after the checksum was computed
    assert!(s.receive(&bad, 1, &mut tx).is_none());
    assert_eq!(s.stats().drops(DropReason::UdpChecksum), 1);
    assert!(s.receive_checked(&bad, true, 1, &mut tx).is_some());
    // Transmit: with offload on, the reply carries the pseudo-header sum for the NIC to finish.
    s.set_tx_checksum_offload(true);
    let mut frame = ep.udp(b"offload");
    let len = s.udp_reply_in_place(&mut frame, 7).unwrap();
    let eth = EthFrame::parse(&frame[..len]).unwrap();
    let ip = Ipv4Packet::parse(eth.payload, 1500).unwrap();
    assert!(
        UdpPacket::parse(ip.payload, ip.src, ip.dst).is_err(),
        "partial sum is not a valid checksum"
    );
    let mut c = checksum::Checksum::new();
    c.add_bytes(ip.payload);
    let mut done = ip.payload.to_vec();
    let sum = match c.finish() {
        0 => 0xffff,
        v => v,
    };
    done[6..8].copy_from_slice(&sum.to_be_bytes());
    assert!(
        UdpPacket::parse(&done, ip.src, ip.dst).is_ok(),
        "the NIC's completion is valid"
    );
}

/// A UDP datagram from the client to a group (its MAC and address).
fn to_group(ep: &Endpoints, group: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + payload.len()];
    ferrix_net::stack::write_udp_frame(
        &mut f,
        ferrix_net::igmp::group_mac(group),
        ep.client_mac,
        ep.client_ip,
        group,
        1,
        ep.client_port,
        ep.server_port,
        payload,
    );
    f
}

/// An IGMPv2 query for `group` (0.0.0.0: general) to all-hosts, with Router Alert.
fn igmp_query(ep: &Endpoints, group: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 32];
    let all = ferrix_net::igmp::ALL_HOSTS;
    ferrix_net::eth::write_header(
        &mut f,
        ferrix_net::igmp::group_mac(all),
        ep.client_mac,
        ETHERTYPE_IPV4,
    );
    // A report's layout (24-byte header, RA, TTL 1) with the query's type and addresses.
    ferrix_net::igmp::write_report(&mut f[14..], ep.client_ip, all, 1).unwrap();
    let m = &mut f[14 + 24..];
    m[0] = ferrix_net::igmp::TYPE_QUERY;
    m[1] = 100;
    m[2..4].fill(0);
    m[4..8].copy_from_slice(&group.octets());
    let s = checksum::checksum(m);
    m[2..4].copy_from_slice(&s.to_be_bytes());
    f
}

fn reports(tx: &CaptureTx) -> Vec<Ipv4Addr> {
    tx.frames
        .iter()
        .map(|f| {
            let eth = EthFrame::parse(f).unwrap();
            let ip = Ipv4Packet::parse_with_options(eth.payload, 1500).unwrap();
            let m = ferrix_net::igmp::Igmp::parse(ip.payload).unwrap();
            assert_eq!(m.kind, ferrix_net::igmp::TYPE_V2_REPORT);
            assert_eq!((ip.dst, ip.ttl), (m.group, 1));
            assert_eq!(eth.dst, ferrix_net::igmp::group_mac(m.group));
            m.group
        })
        .collect()
}

#[test]
fn a_joined_group_is_received_and_reported() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    let g = Ipv4Addr::new(224, 123, 123, 123);
    assert!(s.receive(&to_group(&ep, g, b"hi"), S, &mut tx).is_none());
    assert_eq!(s.stats().drops(DropReason::DstMac), 1, "not joined yet");
    s.join_group(g, &mut tx).unwrap();
    assert_eq!(reports(&tx), [g], "an unsolicited report on join");
    s.join_group(g, &mut tx).unwrap();
    assert_eq!(tx.frames.len(), 1, "joining twice reports once");
    let f = to_group(&ep, g, b"hi");
    let d = s.receive(&f, S, &mut tx).unwrap();
    assert_eq!(d.payload, b"hi");
    assert_eq!(*d.dst.ip(), g);
    // Another group on the same MAC (the low 23 bits agree) is still not ours.
    let other = Ipv4Addr::new(225, 123, 123, 123);
    assert!(s.receive(&to_group(&ep, other, b"x"), S, &mut tx).is_none());
    assert_eq!(s.stats().drops(DropReason::IpNotForUs), 1);
}

#[test]
fn queries_are_answered_for_joined_groups_only() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    let (g1, g2) = (Ipv4Addr::new(224, 1, 1, 1), Ipv4Addr::new(239, 2, 2, 2));
    // Before any join, all-hosts frames are not ours.
    assert!(
        s.receive(&igmp_query(&ep, Ipv4Addr::UNSPECIFIED), S, &mut tx)
            .is_none()
    );
    assert_eq!(s.stats().drops(DropReason::DstMac), 1);
    s.join_group(g1, &mut tx).unwrap();
    s.join_group(g2, &mut tx).unwrap();
    tx.frames.clear();
    s.receive(&igmp_query(&ep, Ipv4Addr::UNSPECIFIED), S, &mut tx);
    assert_eq!(reports(&tx), [g1, g2], "a general query: every group");
    tx.frames.clear();
    s.receive(&igmp_query(&ep, g2), S, &mut tx);
    assert_eq!(reports(&tx), [g2], "a group query: that group");
    tx.frames.clear();
    s.receive(&igmp_query(&ep, Ipv4Addr::new(224, 9, 9, 9)), S, &mut tx);
    assert!(tx.frames.is_empty());
    assert_eq!(s.stats().drops(DropReason::IgmpIgnored), 1);
    let mut bad = igmp_query(&ep, g1);
    bad[14 + 24 + 7] ^= 1;
    s.receive(&bad, S, &mut tx);
    assert_eq!(s.stats().drops(DropReason::IgmpMalformed), 1);
    assert!(tx.frames.is_empty());
}

#[test]
fn groups_are_checked_and_bounded() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    use ferrix_net::stack::{GroupError, MAX_GROUPS};
    for bad in [Ipv4Addr::new(10, 0, 0, 9), ferrix_net::igmp::ALL_HOSTS] {
        assert_eq!(s.join_group(bad, &mut tx), Err(GroupError::NotMulticast));
    }
    for i in 0..MAX_GROUPS {
        s.join_group(Ipv4Addr::new(239, 0, 0, i as u8 + 1), &mut tx)
            .unwrap();
    }
    assert_eq!(
        s.join_group(Ipv4Addr::new(239, 1, 0, 1), &mut tx),
        Err(GroupError::Full)
    );
    assert_eq!(s.groups().len(), MAX_GROUPS);
    // A ping to a group is not answered.
    let mut ping = ep.ping(1, 1, b"x");
    ping[30..34].copy_from_slice(&[239, 0, 0, 1]);
    ping[0..6].copy_from_slice(&ferrix_net::igmp::group_mac(Ipv4Addr::new(239, 0, 0, 1)).0);
    ferrix_net::corpus::fix_ip_checksum(&mut ping);
    tx.frames.clear();
    s.receive(&ping, S, &mut tx);
    assert!(tx.frames.is_empty());
    assert_eq!(s.stats().drops(DropReason::IcmpBroadcast), 1);
}
