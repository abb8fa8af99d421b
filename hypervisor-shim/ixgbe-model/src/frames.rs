//! Building test frames: Ethernet + IPv4 + UDP or TCP with correct checksums, for the
//! model's tests, the driver's tests against the model, and backends that want a sample.

use ferrix_abi::rss::{IPPROTO_TCP, IPPROTO_UDP};
use ferrix_ixgbe_regs::internet_checksum;

/// A frame's flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub dst_mac: [u8; 6],
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// True for TCP, false for UDP.
    pub tcp: bool,
    pub sport: u16,
    pub dport: u16,
}

/// Offset of the L4 header (no IP options).
pub const L4_OFFSET: usize = 34;

/// The frame of `flow` carrying `payload`, IPv4 and L4 checksums correct.
pub fn ipv4_frame(flow: &Flow, payload: &[u8]) -> Vec<u8> {
    let l4_len = if flow.tcp { 20 } else { 8 } + payload.len();
    let mut f = flow.dst_mac.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let proto = if flow.tcp { IPPROTO_TCP } else { IPPROTO_UDP };
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    ip.extend_from_slice(&flow.src);
    ip.extend_from_slice(&flow.dst);
    let c = internet_checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&flow.sport.to_be_bytes());
    f.extend_from_slice(&flow.dport.to_be_bytes());
    if flow.tcp {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    let field = checksum_field(flow.tcp);
    let pseudo = crate::pseudo_header_for(&f).unwrap_or(0);
    let c = internet_checksum(&f[L4_OFFSET..], u32::from(pseudo));
    f[field..field + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// Offset of the L4 checksum field from the start of the frame.
pub fn checksum_field(tcp: bool) -> usize {
    L4_OFFSET + if tcp { 16 } else { 6 }
}

/// Whether the frame's L4 checksum verifies.
pub fn l4_checksum_ok(frame: &[u8]) -> bool {
    let Some(pseudo) = crate::pseudo_header_for(frame) else {
        return false;
    };
    internet_checksum(&frame[L4_OFFSET..], u32::from(pseudo)) == 0
}
