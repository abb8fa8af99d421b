//! Advanced receive and transmit descriptors (datasheet 7.1.6, 7.2.3): 16 bytes each,
//! little-endian. Pure encoders and decoders over `[u8; 16]`, so the driver (over DMA memory)
//! and the model (over guest memory) read and write the same layout.

/// Size of every descriptor.
pub const DESC_LEN: usize = 16;
/// Ring lengths (RDLEN/TDLEN) must be multiples of this (8 descriptors); ring bases must be
/// aligned to it.
pub const RING_ALIGN: usize = 128;

fn u32_at(d: &[u8; DESC_LEN], o: usize) -> u32 {
    u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}
fn u64_at(d: &[u8; DESC_LEN], o: usize) -> u64 {
    u64::from(u32_at(d, o)) | (u64::from(u32_at(d, o + 4)) << 32)
}
fn two_u64(a: u64, b: u64) -> [u8; DESC_LEN] {
    let mut d = [0u8; DESC_LEN];
    d[..8].copy_from_slice(&a.to_le_bytes());
    d[8..].copy_from_slice(&b.to_le_bytes());
    d
}

// ---- Receive ----

/// Receive write-back: status bits (bits 19:0 of the status/error dword).
pub mod rx_status {
    /// Descriptor done.
    pub const DD: u32 = 1 << 0;
    /// End of packet.
    pub const EOP: u32 = 1 << 1;
    /// Flow Director filter match.
    pub const FLM: u32 = 1 << 2;
    /// UDP checksum was computed (the L4 checksum is UDP's).
    pub const UDPCS: u32 = 1 << 4;
    /// The L4 (TCP/UDP) checksum was checked: see `rx_error::TCPE`.
    pub const L4CS: u32 = 1 << 5;
    /// The IPv4 header checksum was checked: see `rx_error::IPE`.
    pub const IPCS: u32 = 1 << 6;
}

/// Receive write-back: error bits (bits 31:20 of the status/error dword).
pub mod rx_error {
    /// A MAC error (CRC, length, ...): the frame is bad.
    pub const RXE: u32 = 1 << 29;
    /// TCP/UDP checksum error.
    pub const TCPE: u32 = 1 << 30;
    /// IPv4 header checksum error.
    pub const IPE: u32 = 1 << 31;
}

/// RSS type (bits 3:0 of the first dword).
pub mod rss_type {
    pub const NONE: u8 = 0x0;
    pub const TCP_IPV4: u8 = 0x1;
    pub const IPV4: u8 = 0x2;
    pub const UDP_IPV4: u8 = 0x7;
}

/// Packet type (bits 16:4 of the first dword, here already shifted into place).
pub mod pkt_type {
    pub const IPV4: u32 = 0x001 << 4;
    pub const TCP: u32 = 0x010 << 4;
    pub const UDP: u32 = 0x020 << 4;
}

/// The read format the driver posts: packet buffer address, header buffer address (0: no
/// header split; its low bit overlaps DD, so posting clears DD).
pub fn rx_read(pkt_addr: u64, hdr_addr: u64) -> [u8; DESC_LEN] {
    two_u64(pkt_addr, hdr_addr)
}

/// Decodes the read format: (packet address, header address).
pub fn rx_read_decode(d: &[u8; DESC_LEN]) -> (u64, u64) {
    (u64_at(d, 0), u64_at(d, 8))
}

/// The write-back format the device stores over a used descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxWriteBack {
    pub rss_type: u8,
    /// Packet type bits (see [`pkt_type`]), already in place.
    pub pkt_type: u32,
    /// The RSS hash, or the Flow Director filter id on a match (with RXCSUM.PCSD).
    pub rss_hash: u32,
    /// Status (bits 19:0) and errors (bits 31:20).
    pub status_error: u32,
    pub length: u16,
    pub vlan: u16,
}

impl RxWriteBack {
    pub fn encode(&self) -> [u8; DESC_LEN] {
        let lo = u32::from(self.rss_type & 0xf) | (self.pkt_type & 0x1_fff0);
        let mut d = [0u8; DESC_LEN];
        d[0..4].copy_from_slice(&lo.to_le_bytes());
        d[4..8].copy_from_slice(&self.rss_hash.to_le_bytes());
        d[8..12].copy_from_slice(&self.status_error.to_le_bytes());
        d[12..14].copy_from_slice(&self.length.to_le_bytes());
        d[14..16].copy_from_slice(&self.vlan.to_le_bytes());
        d
    }
    pub fn decode(d: &[u8; DESC_LEN]) -> RxWriteBack {
        let lo = u32_at(d, 0);
        RxWriteBack {
            rss_type: (lo & 0xf) as u8,
            pkt_type: lo & 0x1_fff0,
            rss_hash: u32_at(d, 4),
            status_error: u32_at(d, 8),
            length: u16::from_le_bytes([d[12], d[13]]),
            vlan: u16::from_le_bytes([d[14], d[15]]),
        }
    }
    /// Descriptor done.
    pub fn done(&self) -> bool {
        self.status_error & rx_status::DD != 0
    }
}

// ---- Transmit ----

/// `cmd_type_len` (second quadword, low dword) of data and context descriptors.
pub mod tx_cmd {
    /// DTALEN, bits 15:0: bytes in this buffer.
    pub const LEN_MASK: u32 = 0xffff;
    /// DTYP, bits 23:20.
    pub const DTYP_MASK: u32 = 0xf << 20;
    pub const DTYP_CTXT: u32 = 0x2 << 20;
    pub const DTYP_DATA: u32 = 0x3 << 20;
    /// DCMD bits 31:24.
    pub const EOP: u32 = 1 << 24;
    /// Insert the Ethernet FCS.
    pub const IFCS: u32 = 1 << 25;
    /// Report status: write DD back when done.
    pub const RS: u32 = 1 << 27;
    /// Advanced descriptor.
    pub const DEXT: u32 = 1 << 29;
    /// TCP segmentation (not used by ferrix; the model refuses it).
    pub const TSE: u32 = 1 << 31;
}

/// `olinfo_status` (second quadword, high dword) of a data descriptor.
pub mod tx_olinfo {
    /// STA bit 0: descriptor done (written back).
    pub const DD: u32 = 1 << 0;
    /// IDX bits 6:4: which context descriptor applies.
    pub const IDX_SHIFT: u32 = 4;
    /// Check context: apply the context slot IDX.
    pub const CC: u32 = 1 << 7;
    /// POPTS bits 13:8: insert the IPv4 header checksum.
    pub const IXSM: u32 = 1 << 8;
    /// POPTS: insert the TCP/UDP checksum.
    pub const TXSM: u32 = 1 << 9;
    /// PAYLEN bits 31:14: the packet's total length (without TSO).
    pub const PAYLEN_SHIFT: u32 = 14;
}

/// `type_tucmd_mlhl` of a context descriptor: TUCMD bits.
pub mod tx_tucmd {
    /// The L3 header is IPv4.
    pub const IPV4: u32 = 1 << 10;
    /// L4T bits 12:11: 00b UDP, 01b TCP, 10b SCTP.
    pub const L4T_MASK: u32 = 0x3 << 11;
    pub const L4T_UDP: u32 = 0x0 << 11;
    pub const L4T_TCP: u32 = 0x1 << 11;
}

/// An advanced transmit data descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxData {
    pub addr: u64,
    pub cmd_type_len: u32,
    pub olinfo_status: u32,
}

impl TxData {
    pub fn encode(&self) -> [u8; DESC_LEN] {
        two_u64(
            self.addr,
            u64::from(self.cmd_type_len) | (u64::from(self.olinfo_status) << 32),
        )
    }
    pub fn decode(d: &[u8; DESC_LEN]) -> TxData {
        TxData {
            addr: u64_at(d, 0),
            cmd_type_len: u32_at(d, 8),
            olinfo_status: u32_at(d, 12),
        }
    }
}

/// An advanced transmit context descriptor: where the headers are and which L4 checksum
/// to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxContext {
    /// IPLEN (bits 8:0), MACLEN (bits 15:9), VLAN (bits 31:16).
    pub vlan_macip_lens: u32,
    pub seqnum_seed: u32,
    /// TUCMD (bits 19:9), DTYP (23:20), DEXT.
    pub type_tucmd_mlhl: u32,
    /// IDX (bits 6:4), L4LEN (15:8), MSS (31:16).
    pub mss_l4len_idx: u32,
}

/// MACLEN shift in `vlan_macip_lens`.
pub const MACLEN_SHIFT: u32 = 9;
/// IPLEN mask in `vlan_macip_lens`.
pub const IPLEN_MASK: u32 = 0x1ff;

impl TxContext {
    pub fn encode(&self) -> [u8; DESC_LEN] {
        let mut d = [0u8; DESC_LEN];
        d[0..4].copy_from_slice(&self.vlan_macip_lens.to_le_bytes());
        d[4..8].copy_from_slice(&self.seqnum_seed.to_le_bytes());
        d[8..12].copy_from_slice(&self.type_tucmd_mlhl.to_le_bytes());
        d[12..16].copy_from_slice(&self.mss_l4len_idx.to_le_bytes());
        d
    }
    pub fn decode(d: &[u8; DESC_LEN]) -> TxContext {
        TxContext {
            vlan_macip_lens: u32_at(d, 0),
            seqnum_seed: u32_at(d, 4),
            type_tucmd_mlhl: u32_at(d, 8),
            mss_l4len_idx: u32_at(d, 12),
        }
    }
    /// MAC header length.
    pub fn maclen(&self) -> usize {
        (self.vlan_macip_lens >> MACLEN_SHIFT & 0x7f) as usize
    }
    /// IP header length.
    pub fn iplen(&self) -> usize {
        (self.vlan_macip_lens & IPLEN_MASK) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_back_round_trips() {
        let wb = RxWriteBack {
            rss_type: rss_type::UDP_IPV4,
            pkt_type: pkt_type::IPV4 | pkt_type::UDP,
            rss_hash: 0xdead_beef,
            status_error: rx_status::DD | rx_status::EOP | rx_error::TCPE,
            length: 1514,
            vlan: 7,
        };
        assert_eq!(RxWriteBack::decode(&wb.encode()), wb);
        // The read format's header address overlaps the status dword: posting clears DD.
        assert!(!RxWriteBack::decode(&rx_read(0x1000, 0)).done());
    }

    #[test]
    fn tx_descriptors_round_trip() {
        let d = TxData {
            addr: 0x1234_5678_9abc,
            cmd_type_len: tx_cmd::DTYP_DATA | tx_cmd::DEXT | tx_cmd::EOP | 60,
            olinfo_status: 60 << tx_olinfo::PAYLEN_SHIFT,
        };
        assert_eq!(TxData::decode(&d.encode()), d);
        let c = TxContext {
            vlan_macip_lens: (14 << MACLEN_SHIFT) | 20,
            type_tucmd_mlhl: tx_cmd::DTYP_CTXT | tx_cmd::DEXT | tx_tucmd::L4T_TCP,
            ..TxContext::default()
        };
        let c2 = TxContext::decode(&c.encode());
        assert_eq!((c2.maclen(), c2.iplen()), (14, 20));
    }
}
