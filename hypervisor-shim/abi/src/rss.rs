//! Receive-side scaling shared by guest drivers and the shim's devices: the Toeplitz hash of
//! Microsoft's RSS specification, the hash input of an Ethernet frame's IPv4 flow, the default
//! key and the indirection table size. One implementation, so a flow's queue is the same in the
//! shim's virtio-net device, the ixgbe device model and the drivers' tests.
//!
//! * IPv4 TCP/UDP (not a fragment): hash over src addr, dst addr, src port, dst port.
//! * Other IPv4 (including fragments): hash over src addr, dst addr.
//! * Anything else (ARP, IPv6, malformed): no hash.

/// The default Toeplitz key from Microsoft's "Verifying the RSS Hash Calculation": the shim's
/// virtio-net device hashes with it unless configured otherwise, and the guest's drivers
/// program it into devices that take an RSS configuration (VIRTIO_NET_F_RSS, the 82599 RSSRK).
pub const MICROSOFT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
/// Entries of the indirection table both sides use (entry i -> queue pair i mod pairs).
pub const INDIRECTION_ENTRIES: usize = 128;

const ETHERTYPE_IPV4: u16 = 0x0800;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
const ETH_HLEN: usize = 14;

/// The Toeplitz hash of `input` under `key`. The key must be at least `input.len() + 4`
/// bytes long; input bits beyond the key use a zero key window (never the case for the
/// 12-byte IPv4 input and a 40-byte key).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let key_bit = |i: usize| -> u32 {
        key.get(i / 8)
            .map_or(0, |b| u32::from((b >> (7 - (i % 8))) & 1))
    };
    // The 32-bit window of the key starting at bit 0.
    let mut window: u32 = (0..32).fold(0, |w, i| (w << 1) | key_bit(i));
    let mut hash = 0u32;
    for (byte_index, byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | key_bit(byte_index * 8 + bit + 32);
        }
    }
    hash
}

/// The IPv4 flow of a frame, as RSS sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Flow {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// IP protocol number.
    pub proto: u8,
    /// (source, destination) ports of an unfragmented TCP or UDP datagram.
    pub ports: Option<(u16, u16)>,
    /// Offset of the L4 header from the start of the frame.
    pub l4_offset: usize,
}

impl Ipv4Flow {
    /// Parses the Ethernet + IPv4 headers of `frame` (None: not IPv4, or malformed).
    pub fn parse(frame: &[u8]) -> Option<Ipv4Flow> {
        let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        if ethertype != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = frame.get(ETH_HLEN..)?;
        let first = *ip.first()?;
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 || ip.len() < ihl {
            return None;
        }
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        let fragment = frag & 0x3fff != 0; // MF set or a non-zero offset
        let proto = ip[9];
        let ports = match ip.get(ihl..ihl + 4) {
            Some(p) if matches!(proto, IPPROTO_TCP | IPPROTO_UDP) && !fragment => Some((
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )),
            _ => None,
        };
        Some(Ipv4Flow {
            src: [ip[12], ip[13], ip[14], ip[15]],
            dst: [ip[16], ip[17], ip[18], ip[19]],
            proto,
            ports,
            l4_offset: ETH_HLEN + ihl,
        })
    }

    /// The Toeplitz input: 12 bytes with ports, 8 without (`with_ports` false hashes the
    /// addresses only even when ports are present).
    pub fn hash_input(&self, with_ports: bool) -> ([u8; 12], usize) {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&self.src);
        v[4..8].copy_from_slice(&self.dst);
        match self.ports {
            Some((s, d)) if with_ports => {
                v[8..10].copy_from_slice(&s.to_be_bytes());
                v[10..12].copy_from_slice(&d.to_be_bytes());
                (v, 12)
            }
            _ => (v, 8),
        }
    }
}

/// The Toeplitz hash input of an Ethernet frame's IPv4 flow (ports included for unfragmented
/// TCP/UDP): the bytes and their length, or `None` for a non-IPv4 frame.
pub fn flow_input(frame: &[u8]) -> Option<([u8; 12], usize)> {
    Ipv4Flow::parse(frame).map(|f| f.hash_input(true))
}

/// The Toeplitz hash of a frame's IPv4 flow under `key` (None: not IPv4).
pub fn frame_hash(key: &[u8], frame: &[u8]) -> Option<u32> {
    flow_input(frame).map(|(v, n)| toeplitz(key, &v[..n]))
}
