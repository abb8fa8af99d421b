//! Flow Director (datasheet 7.1.2.7, registers 8.2.3.21): perfect-match filters that steer a
//! flow (addresses, ports, L4 type, under global masks) to a receive queue.
//!
//! Register value conventions (from the datasheet's field descriptions; the byte order of the
//! address registers was not verified against the datasheet text here): FDIRIPSA / FDIRIPDA
//! hold an IPv4 address as a number (`u32::from_be_bytes(addr)`); FDIRPORT holds the source
//! port in bits 15:0 and the destination port in bits 31:16, as numbers. In the mask registers
//! a 1 bit means "don't care"; FDIRTCPM / FDIRUDPM are documented as bit-reversed within each
//! 16-bit port field, which only matters for partial port masks (ferrix uses all-or-nothing).

/// Flow Director Filters Control.
pub const FDIRCTRL: u32 = 0x0_ee00;
/// FDIRCTRL bits 1:0 (PBALLOC): packet buffer given to filters; 01b 64 KiB (0: disabled).
pub const FDIRCTRL_PBALLOC_MASK: u32 = 0x3;
pub const FDIRCTRL_PBALLOC_64K: u32 = 0x1;
/// FDIRCTRL: filter table initialised (read only).
pub const FDIRCTRL_INIT_DONE: u32 = 1 << 3;
/// FDIRCTRL: perfect-match filters (instead of signature filters).
pub const FDIRCTRL_PERFECT_MATCH: u32 = 1 << 4;
/// FDIRCTRL bits 14:8: the queue of dropped matches.
pub const FDIRCTRL_DROP_Q_SHIFT: u32 = 8;
/// Source / destination IPv4 masks (1 = don't care).
pub const FDIRSIP4M: u32 = 0x0_ee40;
pub const FDIRDIP4M: u32 = 0x0_ee3c;
/// TCP / UDP port masks: source bits 15:0, destination bits 31:16 (1 = don't care).
pub const FDIRTCPM: u32 = 0x0_ee44;
pub const FDIRUDPM: u32 = 0x0_ee48;
/// Other masks: bit 0 VLAN id, bit 1 VLAN priority, bit 2 pool, bit 3 L4 type, bit 4 flex.
pub const FDIRM: u32 = 0x0_ee70;
/// FDIRM: ignore the L4 type.
pub const FDIRM_L4P: u32 = 1 << 3;
/// Every FDIRM mask ferrix sets: it matches on neither VLAN, pool nor flexible bytes.
pub const FDIRM_IGNORE_VLAN_POOL_FLEX: u32 = 0x17;
/// Free filters (bits 15:0).
pub const FDIRFREE: u32 = 0x0_ee38;
/// The filter being programmed: addresses, ports, VLAN, bucket hash.
pub const FDIRIPSA: u32 = 0x0_ee18;
pub const FDIRIPDA: u32 = 0x0_ee1c;
pub const FDIRPORT: u32 = 0x0_ee20;
pub const FDIRVLAN: u32 = 0x0_ee24;
/// FDIRHASH: bucket hash bits 14:0, bit 15 valid, software index bits 30:16.
pub const FDIRHASH: u32 = 0x0_ee28;
pub const FDIRHASH_VALID: u32 = 1 << 15;
pub const FDIRHASH_SWINDEX_SHIFT: u32 = 16;
/// FDIRCMD: the command, executed on write; bits 1:0 self-clear when it is done.
pub const FDIRCMD: u32 = 0x0_ee2c;
pub const FDIRCMD_CMD_MASK: u32 = 0x3;
pub const FDIRCMD_ADD_FLOW: u32 = 0x1;
pub const FDIRCMD_REMOVE_FLOW: u32 = 0x2;
/// FDIRCMD bits 6:5 L4 type: 01b UDP, 10b TCP.
pub const FDIRCMD_L4TYPE_MASK: u32 = 0x3 << 5;
pub const FDIRCMD_L4TYPE_UDP: u32 = 0x1 << 5;
pub const FDIRCMD_L4TYPE_TCP: u32 = 0x2 << 5;
/// FDIRCMD: IPv6 filter (not supported by the model).
pub const FDIRCMD_IPV6: u32 = 1 << 7;
/// FDIRCMD: drop matches.
pub const FDIRCMD_DROP: u32 = 1 << 9;
/// FDIRCMD: steer matches to RX_QUEUE.
pub const FDIRCMD_QUEUE_EN: u32 = 1 << 15;
/// FDIRCMD bits 22:16: the receive queue.
pub const FDIRCMD_RX_QUEUE_SHIFT: u32 = 16;
/// Statistics: filters added/removed (bits 15:0 / 31:16), failed adds, matches, misses
/// (FDIRMATCH and FDIRMISS clear on read).
pub const FDIRUSTAT: u32 = 0x0_ee50;
pub const FDIRFSTAT: u32 = 0x0_ee54;
pub const FDIRMATCH: u32 = 0x0_ee58;
pub const FDIRMISS: u32 = 0x0_ee5c;
/// Perfect filters a 64 KiB allocation holds (2 K minus 2, datasheet 7.1.2.7.2).
pub const PERFECT_FILTERS_64K: u32 = 2046;
