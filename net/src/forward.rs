//! Forwarding a received UDP/IPv4 frame to another host in place: new Ethernet addresses, new
//! IPv4 destination and UDP destination port, the source IP and port kept (an R2P2 router
//! sends a client's REQ0 on to a server this way, and the server replies to the client
//! directly). Both checksums are updated incrementally (RFC 1624, eqn. 3), so the cost does not
//! depend on the payload and a frame whose UDP checksum is a partial (offload) sum stays one.

use crate::eth::{ETH_HEADER_LEN, MacAddr};
use crate::ipv4::IPV4_HEADER_LEN;
use crate::udp::UDP_HEADER_LEN;
use core::net::SocketAddrV4;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const IPPROTO_UDP: u8 = 17;
/// IPv4 header at offset 14, UDP header at 34, payload at 42 (no IP options).
const IP: usize = ETH_HEADER_LEN;
const UDP: usize = ETH_HEADER_LEN + IPV4_HEADER_LEN;

/// The frame is not one this rewrite handles: IPv4 without options, carrying UDP, at least
/// 42 bytes, not a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotForwardable;

/// One's-complement update of checksum `hc` for a field changing from `old` to `new` (both as
/// 16-bit words): HC' = ~(~HC + ~m + m').
#[inline]
fn update(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u32::from(!hc);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrites `frame` to go from `src_mac` to `dst_mac` and to `dst` (IPv4 destination and UDP
/// destination port), keeping its source IP and port, TTL and payload. A UDP checksum of 0
/// ("none") stays 0; a computed 0 is sent as 0xFFFF (RFC 768).
#[inline]
pub fn retarget_udp(
    frame: &mut [u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
    dst: SocketAddrV4,
) -> Result<(), NotForwardable> {
    let h = frame
        .first_chunk_mut::<{ UDP + UDP_HEADER_LEN }>()
        .ok_or(NotForwardable)?;
    // Ethertype, version 4 + IHL 5, protocol UDP, no fragment (MF clear, offset 0).
    if h[12..14] != ETHERTYPE_IPV4
        || h[IP] != 0x45
        || h[IP + 9] != IPPROTO_UDP
        || h[IP + 6] & 0x3f != 0
        || h[IP + 7] != 0
    {
        return Err(NotForwardable);
    }
    h[0..6].copy_from_slice(&dst_mac.0);
    h[6..12].copy_from_slice(&src_mac.0);
    let new_ip = dst.ip().octets();
    let mut old_ip = [0u8; 4];
    old_ip.copy_from_slice(&h[IP + 16..IP + 20]);
    let new_port = dst.port().to_be_bytes();
    let old_port = [h[UDP + 2], h[UDP + 3]];
    let ip_sum = u16::from_be_bytes([h[IP + 10], h[IP + 11]]);
    h[IP + 10..IP + 12].copy_from_slice(&update(ip_sum, &old_ip, &new_ip).to_be_bytes());
    h[IP + 16..IP + 20].copy_from_slice(&new_ip);
    let udp_sum = u16::from_be_bytes([h[UDP + 6], h[UDP + 7]]);
    if udp_sum != 0 {
        let mut old = [0u8; 6];
        old[..4].copy_from_slice(&old_ip);
        old[4..].copy_from_slice(&old_port);
        let mut new = [0u8; 6];
        new[..4].copy_from_slice(&new_ip);
        new[4..].copy_from_slice(&new_port);
        let s = match update(udp_sum, &old, &new) {
            0 => 0xffff,
            s => s,
        };
        h[UDP + 6..UDP + 8].copy_from_slice(&s.to_be_bytes());
    }
    h[UDP + 2..UDP + 4].copy_from_slice(&new_port);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;
    use crate::stack::write_udp_frame;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> alloc::vec::Vec<u8> {
        let mut f = alloc::vec![0u8; UDP + UDP_HEADER_LEN + payload.len()];
        assert!(write_udp_frame(
            &mut f,
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            *src.ip(),
            *dst.ip(),
            77,
            src.port(),
            dst.port(),
            payload,
        ));
        f
    }

    proptest! {
        /// The rewritten frame equals a frame written from scratch for the new destination
        /// (same ident, TTL, payload), checksums included.
        #[test]
        fn equals_a_fresh_frame(
            s in any::<u32>(), sp in 1u16.., d in any::<u32>(), dp in 1u16..,
            n in any::<u32>(), np in 1u16.., payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (src, dst, new) = (
                SocketAddrV4::new(Ipv4Addr::from(s), sp),
                SocketAddrV4::new(Ipv4Addr::from(d), dp),
                SocketAddrV4::new(Ipv4Addr::from(n), np),
            );
            let mut f = frame(src, dst, &payload);
            let mut want = frame(src, new, &payload);
            want[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
            want[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 8]);
            retarget_udp(&mut f, MacAddr([2, 0, 0, 0, 0, 8]), MacAddr([2, 0, 0, 0, 0, 9]), new).unwrap();
            prop_assert_eq!(&f[..IP + 10], &want[..IP + 10]);
            prop_assert_eq!(&f[IP + 12..UDP + 6], &want[IP + 12..UDP + 6]);
            // Equal as checksums (0x0000 and 0xffff are both "sum zero" in the IP header).
            prop_assert!(checksum::verify(&f[IP..UDP]));
            let mut ps = checksum::Checksum::new();
            ps.add_pseudo_header(*src.ip(), *new.ip(), IPPROTO_UDP, (UDP_HEADER_LEN + payload.len()) as u16);
            ps.add_bytes(&f[UDP..]);
            prop_assert_eq!(ps.finish(), 0);
        }
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        let src: SocketAddrV4 = "10.0.0.1:5000".parse().unwrap();
        let dst: SocketAddrV4 = "10.0.0.2:8000".parse().unwrap();
        let m = MacAddr([2, 0, 0, 0, 0, 1]);
        let good = frame(src, dst, b"x");
        assert_eq!(
            retarget_udp(&mut good[..41].to_vec(), m, m, dst),
            Err(NotForwardable)
        );
        for (at, v) in [
            (12, 0x86),
            (IP, 0x46),
            (IP + 9, 6),
            (IP + 6, 0x20),
            (IP + 7, 1),
        ] {
            let mut f = good.clone();
            f[at] = v;
            assert_eq!(retarget_udp(&mut f, m, m, dst), Err(NotForwardable), "{at}");
        }
        // No UDP checksum: stays none.
        let mut f = good.clone();
        f[UDP + 6..UDP + 8].copy_from_slice(&[0, 0]);
        retarget_udp(&mut f, m, m, "10.0.0.3:8001".parse().unwrap()).unwrap();
        assert_eq!(&f[UDP + 6..UDP + 8], &[0, 0]);
        assert!(checksum::verify(&f[IP..UDP]));
    }
}
