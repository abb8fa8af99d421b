//! The Intel 82599 10 GbE controller's register map, bit fields and descriptor layouts, as far
//! as ferrix uses them: one table for the driver (`ferrix-drivers`, `ixgbe`) and the device
//! model (`ferrix-ixgbe-model`), so the two cannot disagree on an offset.
//!
//! Source: the Intel 82599 10 GbE Controller Datasheet (revision 3.x), chapter 8 (register
//! descriptions) and 7.1 / 7.2 (advanced receive and transmit descriptors). Names follow the
//! datasheet. Where a field was not verified against the datasheet text here (no copy on this
//! machine; offsets were cross-checked against public register tables), the comment says so.
//! Because both sides share these constants, a misread offset would not be caught by the
//! driver's tests against the model: only real hardware catches it.
#![no_std]
#![forbid(unsafe_code)]

pub mod desc;
pub mod fdir;

/// PCI vendor and device id of the 82599 SFP+ (82599ES) port.
pub const PCI_VENDOR_INTEL: u16 = 0x8086;
pub const PCI_DEVICE_82599_SFP: u16 = 0x10fb;
/// BAR0 (memory, 64-bit) size: 128 KiB of registers.
pub const BAR0_SIZE: u64 = 128 * 1024;

/// Queues ferrix configures at most: RSS spreads over 16 (the RETA entries are 4 bits wide).
pub const MAX_RSS_QUEUES: usize = 16;

// ---- General control (8.2.3.1) ----
/// Device Control.
pub const CTRL: u32 = 0x0_0000;
/// PCIe master disable.
pub const CTRL_GIO_MASTER_DISABLE: u32 = 1 << 2;
/// Link reset.
pub const CTRL_LRST: u32 = 1 << 3;
/// Device (software) reset; self-clearing.
pub const CTRL_RST: u32 = 1 << 26;
/// Device Status (read only).
pub const STATUS: u32 = 0x0_0008;
/// STATUS: link up.
pub const STATUS_LINK_UP: u32 = 1 << 7;
/// STATUS: PCIe master enable status (cleared once master disable has taken effect).
pub const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;
/// Extended Device Control.
pub const CTRL_EXT: u32 = 0x0_0018;
/// CTRL_EXT: driver loaded (tells firmware a driver owns the port).
pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;
/// EEPROM/Flash Control.
pub const EEC: u32 = 0x1_0010;
/// EEC: EEPROM present.
pub const EEC_PRES: u32 = 1 << 8;
/// EEC: EEPROM auto-read done (the MAC address and defaults are loaded).
pub const EEC_ARD: u32 = 1 << 9;

// ---- Interrupts (8.2.3.5) ----
/// Extended Interrupt Cause (read clears, write 1 clears).
pub const EICR: u32 = 0x0_0800;
/// Extended Interrupt Cause Set.
pub const EICS: u32 = 0x0_0808;
/// Extended Interrupt Auto Clear.
pub const EIAC: u32 = 0x0_0810;
/// Extended Interrupt Mask Set/Read.
pub const EIMS: u32 = 0x0_0880;
/// Extended Interrupt Mask Clear.
pub const EIMC: u32 = 0x0_0888;
/// General Purpose Interrupt Enable.
pub const GPIE: u32 = 0x0_0898;
/// EICR bits 15:0: the queue interrupt vectors IVAR maps queues to.
pub const EICR_RTX_QUEUE: u32 = 0xffff;
/// EICR: link status change.
pub const EICR_LSC: u32 = 1 << 20;
/// EICR: other causes.
pub const EICR_OTHER: u32 = 1 << 31;
/// Every maskable cause.
pub const EIMC_ALL: u32 = 0x7fff_ffff;
/// Interrupt Vector Allocation for queues 2n and 2n + 1 (n = 0..63): bytes RX 2n, TX 2n,
/// RX 2n+1, TX 2n+1; in each byte bits 5:0 the vector and bit 7 valid.
pub const fn ivar(n: usize) -> u32 {
    0x0_0900 + 4 * n as u32
}
/// IVAR byte: entry valid.
pub const IVAR_VALID: u32 = 0x80;

// ---- Receive (8.2.3.8) ----
/// Receive Control.
pub const RXCTRL: u32 = 0x0_3000;
/// RXCTRL: receive enable.
pub const RXCTRL_RXEN: u32 = 1 << 0;
/// Receive DMA Control.
pub const RDRXCTL: u32 = 0x0_2f00;
/// RDRXCTL: strip the Ethernet CRC (must match HLREG0.RXCRCSTRP).
pub const RDRXCTL_CRCSTRIP: u32 = 1 << 1;
/// RDRXCTL: DMA initialisation done (read only).
pub const RDRXCTL_DMAIDONE: u32 = 1 << 3;
/// MAC Core Control 0.
pub const HLREG0: u32 = 0x0_4240;
/// HLREG0: append CRC on transmit.
pub const HLREG0_TXCRCEN: u32 = 1 << 0;
/// HLREG0: strip CRC on receive.
pub const HLREG0_RXCRCSTRP: u32 = 1 << 1;
/// HLREG0: jumbo frames.
pub const HLREG0_JUMBOEN: u32 = 1 << 2;
/// HLREG0: pad short frames on transmit.
pub const HLREG0_TXPADEN: u32 = 1 << 10;
/// Max Frame Size: bits 31:16 (MFS, with CRC).
pub const MAXFRS: u32 = 0x0_4268;
/// Filter Control.
pub const FCTRL: u32 = 0x0_5080;
/// FCTRL: multicast promiscuous.
pub const FCTRL_MPE: u32 = 1 << 8;
/// FCTRL: unicast promiscuous.
pub const FCTRL_UPE: u32 = 1 << 9;
/// FCTRL: accept broadcast.
pub const FCTRL_BAM: u32 = 1 << 10;
/// Receive Checksum Control.
pub const RXCSUM: u32 = 0x0_5000;
/// RXCSUM: IP payload checksum enable.
pub const RXCSUM_IPPCSE: u32 = 1 << 12;
/// RXCSUM: packet checksum disable: the descriptor reports the RSS hash (or Flow Director
/// filter id) instead of the IP id and payload checksum.
pub const RXCSUM_PCSD: u32 = 1 << 13;
/// Multiple Receive Queues Command.
pub const MRQC: u32 = 0x0_5818;
/// MRQC bits 3:0 (MRQE): 0001b RSS only.
pub const MRQC_MRQE_MASK: u32 = 0xf;
pub const MRQC_MRQE_RSS: u32 = 0x1;
/// MRQC field enables: which packets are hashed over which fields.
pub const MRQC_RSS_TCPIPV4: u32 = 1 << 16;
pub const MRQC_RSS_IPV4: u32 = 1 << 17;
pub const MRQC_RSS_UDPIPV4: u32 = 1 << 22;
/// RSS Random Key, 10 registers: key byte 4i + j in bits 8j+7:8j of RSSRK(i).
pub const fn rssrk(i: usize) -> u32 {
    0x0_5c80 + 4 * i as u32
}
/// Key bytes.
pub const RSS_KEY_LEN: usize = 40;
/// Redirection Table, 32 registers of four 8-bit entries (bits 3:0 used): entry 4i + j in
/// bits 8j+7:8j of RETA(i).
pub const fn reta(i: usize) -> u32 {
    0x0_5c00 + 4 * i as u32
}
/// RETA entries.
pub const RETA_ENTRIES: usize = 128;
/// Receive Address Low/High: the unicast MAC filters; RAL(0)/RAH(0) hold the port's MAC
/// after the EEPROM auto-read.
pub const fn ral(i: usize) -> u32 {
    0x0_a200 + 8 * i as u32
}
pub const fn rah(i: usize) -> u32 {
    0x0_a204 + 8 * i as u32
}
/// RAH: address valid.
pub const RAH_AV: u32 = 1 << 31;
/// Receive address filter entries.
pub const RAR_ENTRIES: usize = 128;

/// Per-queue receive registers (queues 0..63 at 0x1000 + 0x40 n).
pub const fn rdbal(q: usize) -> u32 {
    0x0_1000 + 0x40 * q as u32
}
pub const fn rdbah(q: usize) -> u32 {
    rdbal(q) + 0x04
}
pub const fn rdlen(q: usize) -> u32 {
    rdbal(q) + 0x08
}
pub const fn rdh(q: usize) -> u32 {
    rdbal(q) + 0x10
}
pub const fn srrctl(q: usize) -> u32 {
    rdbal(q) + 0x14
}
pub const fn rdt(q: usize) -> u32 {
    rdbal(q) + 0x18
}
pub const fn rxdctl(q: usize) -> u32 {
    rdbal(q) + 0x28
}
/// Queue Packets Received Count (queues 0..15; clear on read).
pub const fn qprc(q: usize) -> u32 {
    rdbal(q) + 0x30
}
/// Queue Packets Received Drop Count (queues 0..15; clear on read).
pub const fn qprdc(q: usize) -> u32 {
    0x0_1430 + 0x40 * q as u32
}
/// RXDCTL / TXDCTL: queue enable (reads back once the queue is enabled).
pub const XDCTL_ENABLE: u32 = 1 << 25;
/// SRRCTL bits 4:0: packet buffer size in KiB.
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x1f;
/// SRRCTL bits 27:25: descriptor type; 001b advanced one buffer.
pub const SRRCTL_DESCTYPE_MASK: u32 = 0x7 << 25;
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x1 << 25;
/// SRRCTL: drop a packet when the queue has no descriptor (instead of stalling the buffer).
pub const SRRCTL_DROP_EN: u32 = 1 << 28;

// ---- Transmit (8.2.3.9) ----
/// DMA Tx Control.
pub const DMATXCTL: u32 = 0x0_4a80;
/// DMATXCTL: transmit enable.
pub const DMATXCTL_TE: u32 = 1 << 0;
/// Per-queue transmit registers (queues 0..127 at 0x6000 + 0x40 n).
pub const fn tdbal(q: usize) -> u32 {
    0x0_6000 + 0x40 * q as u32
}
pub const fn tdbah(q: usize) -> u32 {
    tdbal(q) + 0x04
}
pub const fn tdlen(q: usize) -> u32 {
    tdbal(q) + 0x08
}
pub const fn tdh(q: usize) -> u32 {
    tdbal(q) + 0x10
}
pub const fn tdt(q: usize) -> u32 {
    tdbal(q) + 0x18
}
pub const fn txdctl(q: usize) -> u32 {
    tdbal(q) + 0x28
}
/// Queue Packets Transmitted Count (queues 0..15; clear on read).
pub const fn qptc(q: usize) -> u32 {
    tdbal(q) + 0x30
}

// ---- MAC / link (8.2.3.22) ----
/// Auto-Negotiation Control.
pub const AUTOC: u32 = 0x0_42a0;
/// AUTOC: restart auto-negotiation.
pub const AUTOC_RESTART_AN: u32 = 1 << 12;
/// Link Status.
pub const LINKS: u32 = 0x0_42a4;
/// LINKS: link up.
pub const LINKS_UP: u32 = 1 << 30;
/// LINKS bits 29:28: speed; 11b 10 Gb/s.
pub const LINKS_SPEED_MASK: u32 = 0x3 << 28;
pub const LINKS_SPEED_10G: u32 = 0x3 << 28;

// ---- Statistics (8.2.3.23; all clear on read) ----
/// CRC Error Count.
pub const CRCERRS: u32 = 0x0_4000;
/// Missed Packets Count (packet buffer 0).
pub const MPC0: u32 = 0x0_3fa0;
/// Good Packets Received Count.
pub const GPRC: u32 = 0x0_4074;
/// Broadcast / Multicast Packets Received Count.
pub const BPRC: u32 = 0x0_4078;
pub const MPRC: u32 = 0x0_407c;
/// Good Packets Transmitted Count.
pub const GPTC: u32 = 0x0_4080;
/// Good Octets Received Count, low and high halves (reading the high half clears the
/// counter; uncertain: the datasheet's exact latch rule for the 36-bit pair was not checked).
pub const GORCL: u32 = 0x0_4088;
pub const GORCH: u32 = 0x0_408c;
/// Good Octets Transmitted Count, low and high halves (as GORC).
pub const GOTCL: u32 = 0x0_4090;
pub const GOTCH: u32 = 0x0_4094;
/// Receive Oversize Count.
pub const ROC: u32 = 0x0_40a4;
/// Total Packets Received / Transmitted.
pub const TPR: u32 = 0x0_40d0;
pub const TPT: u32 = 0x0_40d4;

/// The Internet (one's complement) checksum of `data` added to the partial sum `initial`,
/// folded and complemented: what goes into an IPv4, TCP or UDP checksum field. The model
/// computes offloaded checksums with it, the driver its software fallback.
pub fn internet_checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2 (complement 220d).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data, 0), !0xddf2);
        // A buffer with its checksum in place sums to zero.
        let mut v = data.to_vec();
        v.extend_from_slice(&internet_checksum(&data, 0).to_be_bytes());
        assert_eq!(internet_checksum(&v, 0), 0);
        assert_eq!(internet_checksum(&[0xab], 0), !0xab00);
    }

    #[test]
    fn queue_registers_do_not_overlap() {
        assert_eq!(rdt(1), 0x1058);
        assert_eq!(srrctl(0), 0x1014);
        assert_eq!(txdctl(2), 0x60a8);
        assert_eq!(rssrk(9), 0x5ca4);
        assert_eq!(reta(31), 0x5c7c);
        assert!(reta(31) < rssrk(0));
    }
}
