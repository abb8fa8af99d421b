//! Property tests: hostile bytes never panic any parser or the stack, and every header type
//! round-trips through its writer and parser.

mod common;

use ferrix_net::arp::{ArpOp, ArpPacket};
use ferrix_net::corpus::Endpoints;
use ferrix_net::eth::{self, EthFrame, MacAddr};
use ferrix_net::icmp::{self, EchoRequest, ICMP_ECHO_REQUEST};
use ferrix_net::ipv4::{Ipv4Header, Ipv4Packet};
use ferrix_net::udp::{self, UdpPacket};
use ferrix_net::{IfConfig, checksum};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}
fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from_bits)
}
/// A valid frame of some kind with a few bytes overwritten at random.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    let ep = Endpoints::default();
    let mut seeds = vec![
        ep.udp(b"seed payload"),
        ep.ping(1, 2, b"seed"),
        ep.arp_request(ep.server_ip),
        ep.arp_reply(),
    ];
    seeds.extend(ep.malformed().into_iter().map(|c| c.frame));
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(mut f, edits, cut, do_cut)| {
            for (i, b) in edits {
                if !f.is_empty() {
                    let i = i.index(f.len());
                    f[i] = b;
                }
            }
            if do_cut && !f.is_empty() {
                f.truncate(cut.index(f.len()));
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..1600), a in ip(), b in ip(), mtu in 0usize..3000) {
        let _ = EthFrame::parse(&data);
        let _ = ArpPacket::parse(&data);
        let _ = Ipv4Packet::parse(&data, mtu);
        let _ = EchoRequest::parse(&data);
        let _ = UdpPacket::parse(&data, a, b);
        let _ = checksum::checksum(&data);
        let mut tokens = String::from_utf8_lossy(&data).into_owned();
        tokens.insert_str(0, "ferrix.ip=");
        let _ = IfConfig::from_cmdline(tokens.split(' '), MacAddr::ZERO);
    }

    #[test]
    fn stack_never_panics_on_random_bytes(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..8), now in any::<u64>()) {
        let ep = Endpoints::default();
        let mut s = common::server(&ep);
        let mut tx = common::tx();
        for mut f in frames {
            let _ = s.receive(&f, now, &mut tx);
            let n = f.len();
            let _ = s.udp_reply_in_place(&mut f, n / 2);
        }
        prop_assert!(s.stats().total_drops() <= s.stats().rx_packets);
    }

    #[test]
    fn stack_never_panics_on_mutated_frames(frames in prop::collection::vec(mutated_frame(), 1..16), now in any::<u64>()) {
        let ep = Endpoints::default();
        let mut s = common::server(&ep);
        let mut tx = common::tx();
        for mut f in frames {
            let before = s.stats().total_drops();
            let delivered = s.receive(&f, now, &mut tx).map(|d| d.payload.len());
            let dropped = s.stats().total_drops() - before;
            // A frame is counted under at most one reason, and never when delivered.
            prop_assert!(dropped <= 1);
            if let Some(n) = delivered {
                prop_assert_eq!(dropped, 0);
                let len = s.udp_reply_in_place(&mut f, n).unwrap();
                prop_assert!(UdpPacket::parse(&f[34..len], ep.server_ip, ep.client_ip).is_ok());
            }
        }
    }

    #[test]
    fn eth_roundtrip(dst in mac(), src in mac(), et in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(et != eth::ETHERTYPE_VLAN && et != eth::ETHERTYPE_QINQ);
        let mut f = vec![0u8; eth::ETH_HEADER_LEN + payload.len()];
        prop_assert!(eth::write_header(&mut f, dst, src, et));
        f[eth::ETH_HEADER_LEN..].copy_from_slice(&payload);
        let p = EthFrame::parse(&f).unwrap();
        prop_assert_eq!((p.dst, p.src, p.ethertype, p.payload), (dst, src, et, &payload[..]));
    }

    #[test]
    fn arp_roundtrip(req in any::<bool>(), sm in mac(), si in ip(), tm in mac(), ti in ip()) {
        let p = ArpPacket { op: if req { ArpOp::Request } else { ArpOp::Reply }, sender_mac: sm, sender_ip: si, target_mac: tm, target_ip: ti };
        let mut b = [0u8; 28];
        prop_assert!(p.write(&mut b));
        prop_assert_eq!(ArpPacket::parse(&b), Ok(p));
    }

    #[test]
    fn ipv4_roundtrip(src in ip(), dst in ip(), protocol in any::<u8>(), ttl in any::<u8>(), ident in any::<u16>(), payload_len in 0u16..1480) {
        let h = Ipv4Header { src, dst, protocol, ttl, ident, payload_len };
        let mut b = vec![0u8; 20 + usize::from(payload_len)];
        prop_assert!(h.write(&mut b));
        let p = Ipv4Packet::parse(&b, 1500).unwrap();
        prop_assert_eq!((p.src, p.dst, p.protocol, p.ttl, p.ident, p.payload.len()), (src, dst, protocol, ttl, ident, usize::from(payload_len)));
    }

    #[test]
    fn icmp_roundtrip(ident in any::<u16>(), seq in any::<u16>(), data in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut m = vec![0u8; 8 + data.len()];
        prop_assert!(icmp::write_echo(&mut m, ICMP_ECHO_REQUEST, ident, seq, &data));
        let e = EchoRequest::parse(&m).unwrap();
        prop_assert_eq!((e.ident, e.seq, e.data), (ident, seq, &data[..]));
    }

    #[test]
    fn udp_roundtrip(src in ip(), dst in ip(), sp in any::<u16>(), dp in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut seg = vec![0u8; 8 + payload.len()];
        seg[8..].copy_from_slice(&payload);
        prop_assert!(udp::write_header(&mut seg, src, dst, sp, dp));
        prop_assert_ne!(&seg[6..8], &[0, 0]);
        let u = UdpPacket::parse(&seg, src, dst).unwrap();
        prop_assert_eq!((u.src_port, u.dst_port, u.payload), (sp, dp, &payload[..]));
        // Any single corrupted payload bit is caught.
        if !payload.is_empty() {
            seg[8] ^= 1;
            prop_assert!(UdpPacket::parse(&seg, src, dst).is_err());
        }
    }

    #[test]
    fn checksum_matches_16bit_reference(data in prop::collection::vec(any::<u8>(), 0..2000), split in any::<prop::sample::Index>()) {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let w = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(w);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let reference = !(sum as u16);
        prop_assert_eq!(checksum::checksum(&data), reference);
        // Summing in two pieces (split at an even offset) gives the same result.
        let at = split.index(data.len() + 1) & !1;
        let mut c = checksum::Checksum::new();
        c.add_bytes(&data[..at]);
        c.add_bytes(&data[at..]);
        prop_assert_eq!(c.finish(), reference);
    }
}
