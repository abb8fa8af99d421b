//! Receive-side scaling: the Toeplitz hash over a frame's IPv4 flow (Microsoft's RSS
//! specification, implemented once in `ferrix_abi::rss`), the 128-entry indirection table and
//! the choice of RX queue pair.
//!
//! * IPv4 TCP/UDP (not a fragment): hash over src addr, dst addr, src port, dst port.
//! * Other IPv4 (including fragments): hash over src addr, dst addr.
//! * Anything else (ARP, IPv6, malformed): pair 0.

pub use ferrix_abi::rss::{INDIRECTION_ENTRIES, MICROSOFT_RSS_KEY, toeplitz};

/// The hash input of an Ethernet frame's IPv4 flow, or `None` for a non-IPv4 frame
/// (`ferrix_abi::rss::flow_input` as a vector).
pub fn flow_input(frame: &[u8]) -> Option<Vec<u8>> {
    ferrix_abi::rss::flow_input(frame).map(|(v, n)| v[..n].to_vec())
}

/// The indirection table and key of one device.
#[derive(Clone, Debug)]
pub struct Steering {
    key: Vec<u8>,
    table: [u16; INDIRECTION_ENTRIES],
}

impl Steering {
    /// Steering over `pairs` active queue pairs with `key`.
    pub fn new(key: Vec<u8>, pairs: u16) -> Self {
        let mut s = Steering {
            key,
            table: [0; INDIRECTION_ENTRIES],
        };
        s.set_pairs(pairs);
        s
    }

    /// Maps the table round-robin over `pairs` (at least 1).
    pub fn set_pairs(&mut self, pairs: u16) {
        let pairs = pairs.max(1);
        for (i, e) in self.table.iter_mut().enumerate() {
            *e = (i % usize::from(pairs)) as u16;
        }
    }

    /// The indirection table (entry = queue pair).
    pub fn table(&self) -> &[u16; INDIRECTION_ENTRIES] {
        &self.table
    }

    /// The queue pair that receives `frame`.
    pub fn pair_for(&self, frame: &[u8]) -> u16 {
        match ferrix_abi::rss::frame_hash(&self.key, frame) {
            Some(h) => self.table[h as usize & (INDIRECTION_ENTRIES - 1)],
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrix_abi::rss::IPPROTO_UDP;

    fn input(src: [u8; 4], dst: [u8; 4], ports: Option<(u16, u16)>) -> Vec<u8> {
        let mut v = src.to_vec();
        v.extend_from_slice(&dst);
        if let Some((s, d)) = ports {
            v.extend_from_slice(&s.to_be_bytes());
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    /// Microsoft's IPv4 verification suite: (dst, dst port, src, src port, IPv4 hash,
    /// IPv4-with-TCP hash; the same for UDP).
    #[test]
    fn microsoft_vectors() {
        let vectors = [
            (
                [161, 142, 100, 80],
                1766,
                [66, 9, 149, 187],
                2794,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                [65, 69, 140, 83],
                4739,
                [199, 92, 111, 2],
                14230,
                0xd718_262a,
                0xc626_b0ea,
            ),
            (
                [12, 22, 207, 184],
                38024,
                [24, 19, 198, 95],
                12898,
                0xd2d0_a5de,
                0x5c2b_394a,
            ),
            (
                [209, 142, 163, 6],
                2217,
                [38, 27, 205, 30],
                48228,
                0x8298_9176,
                0xafc7_327f,
            ),
            (
                [202, 188, 127, 2],
                1303,
                [153, 39, 163, 191],
                44251,
                0x5d18_09c5,
                0x10e8_28a2,
            ),
        ];
        for (dst, dport, src, sport, ip_hash, l4_hash) in vectors {
            assert_eq!(
                toeplitz(&MICROSOFT_RSS_KEY, &input(src, dst, None)),
                ip_hash
            );
            let with_ports = input(src, dst, Some((sport, dport)));
            assert_eq!(toeplitz(&MICROSOFT_RSS_KEY, &with_ports), l4_hash);
        }
    }

    /// An Ethernet + IPv4 + UDP frame (checksums zero).
    pub(crate) fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, IPPROTO_UDP, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn frame_flow_input() {
        let f = udp_frame([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766);
        let i = flow_input(&f).unwrap();
        assert_eq!(toeplitz(&MICROSOFT_RSS_KEY, &i), 0x51cc_c178);
        let mut frag = f.clone();
        frag[14 + 6] = 0x20; // MF: ports are not hashed
        assert_eq!(flow_input(&frag).unwrap().len(), 8);
        let mut icmp = f.clone();
        icmp[14 + 9] = 1;
        assert_eq!(
            toeplitz(&MICROSOFT_RSS_KEY, &flow_input(&icmp).unwrap()),
            0x323e_8fc2
        );
        let mut arp = f.clone();
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(flow_input(&arp), None);
        assert_eq!(flow_input(&f[..20]), None);
        let mut bad_ihl = f.clone();
        bad_ihl[14] = 0x44;
        assert_eq!(flow_input(&bad_ihl), None);
    }

    #[test]
    fn indirection_round_robin() {
        let mut s = Steering::new(MICROSOFT_RSS_KEY.to_vec(), 3);
        assert_eq!(&s.table()[..7], &[0, 1, 2, 0, 1, 2, 0]);
        s.set_pairs(1);
        assert!(s.table().iter().all(|&e| e == 0));
        s.set_pairs(0);
        assert!(s.table().iter().all(|&e| e == 0));
        s.set_pairs(16);
        assert_eq!(s.table()[127], 15);
        let f = udp_frame([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766);
        assert_eq!(s.pair_for(&f), (0x51cc_c178u32 & 127) as u16 % 16);
        assert_eq!(s.pair_for(&[0u8; 10]), 0);
    }
}
