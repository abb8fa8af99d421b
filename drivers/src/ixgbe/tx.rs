//! The transmit side of a queue pair: one data descriptor per packet (RS set, so every packet
//! reports DD), preceded by a context descriptor when its checksum offload needs a context
//! the device does not hold yet. Completed buffers are reclaimed in ring order.
//!
//! Checksum offload: a [`PacketBuf::tx_checksum`] request (start, offset) for IPv4 becomes a
//! context (MACLEN 14, IPLEN start - 14, L4T from the field offset: 16 TCP, 6 UDP) in one of
//! the queue's two context slots (slot 0 UDP, slot 1 TCP; rewritten only when IPLEN changes).
//! A request the device cannot express is computed in software.
//!
//! Distrust: DD on a descriptor the driver had not posted is counted in `device_errors`.

use super::ring::DescRing;
use crate::buf::{BufPool, PacketBuf};
use alloc::vec::Vec;
use ferrix_ixgbe_regs::desc::{MACLEN_SHIFT, TxContext, TxData, tx_cmd, tx_olinfo, tx_tucmd};
use ferrix_ixgbe_regs::internet_checksum;

/// Offset of the status dword in a transmit descriptor.
const STATUS_AT: usize = 12;
const ETH_HLEN: usize = 14;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Context,
    Packet(u32),
}

pub struct TxRing {
    ring: DescRing,
    slots: Vec<Slot>,
    next_clean: u16,
    next_use: u16,
    in_flight: u16,
    /// The context the device holds in slots 0 (UDP) and 1 (TCP): `vlan_macip_lens`.
    contexts: [Option<u32>; 2],
    pub device_errors: u64,
}

/// The offload a packet gets: context slot and its `vlan_macip_lens`.
struct Offload {
    slot: usize,
    macip: u32,
}

/// Maps a checksum request to a context, or None (compute it in software).
fn offload_for(buf: &PacketBuf, start: u16, offset: u16) -> Option<Offload> {
    let d = buf.data();
    let ipv4 = d.get(12..14) == Some(&[0x08, 0x00]);
    let iplen = usize::from(start).checked_sub(ETH_HLEN)?;
    let slot = match offset {
        6 => 0,
        16 => 1,
        _ => return None,
    };
    let fits = usize::from(start) + usize::from(offset) + 2 <= d.len();
    (ipv4 && (20..=0x1ff).contains(&iplen) && fits).then_some(Offload {
        slot,
        macip: ((ETH_HLEN as u32) << MACLEN_SHIFT) | iplen as u32,
    })
}

/// Completes a checksum request in software: the field holds the pseudo-header sum.
fn software_checksum(buf: &mut PacketBuf, start: u16, offset: u16) {
    let (s, f) = (usize::from(start), usize::from(start) + usize::from(offset));
    let d = buf.data_mut();
    if f + 2 > d.len() {
        return;
    }
    let sum = internet_checksum(&d[s..], 0);
    d[f..f + 2].copy_from_slice(&sum.to_be_bytes());
}

impl TxRing {
    pub fn new(ring: DescRing) -> TxRing {
        let n = usize::from(ring.len());
        TxRing {
            ring,
            slots: alloc::vec![Slot::Free; n],
            next_clean: 0,
            next_use: 0,
            in_flight: 0,
            contexts: [None; 2],
            device_errors: 0,
        }
    }

    pub fn room(&self) -> u16 {
        self.ring.len() - 1 - self.in_flight
    }

    fn step(&self, i: u16) -> u16 {
        (i + 1) % self.ring.len()
    }

    /// Frees the buffers of completed packets (in ring order, bounded by the descriptors in
    /// flight).
    pub fn reclaim(&mut self, pool: &mut BufPool) {
        for _ in 0..self.in_flight {
            if self.in_flight == 0 {
                break;
            }
            let i = self.next_clean;
            // A context completes with the packet descriptor that follows it.
            let pkt = match self.slots[usize::from(i)] {
                Slot::Context => self.step(i),
                _ => i,
            };
            if self.ring.status(pkt, STATUS_AT) & tx_olinfo::DD == 0 {
                break;
            }
            let mut j = i;
            loop {
                if let Slot::Packet(token) = self.slots[usize::from(j)] {
                    // SAFETY: the token was parked by `push` under this descriptor only and is
                    // released once (the slot is freed below).
                    unsafe { pool.release(token) };
                }
                self.slots[usize::from(j)] = Slot::Free;
                self.ring.clear_status(j, STATUS_AT);
                self.in_flight -= 1;
                if j == pkt {
                    break;
                }
                j = self.step(j);
            }
            self.next_clean = self.step(pkt);
        }
    }

    /// Writes descriptor `d` at the next free slot, noting what it carries.
    fn put(&mut self, d: &[u8; 16], what: Slot) {
        let i = self.next_use;
        if self.ring.status(i, STATUS_AT) & tx_olinfo::DD != 0 {
            self.device_errors += 1; // DD on a descriptor the device was never given
        }
        self.ring.write(i, d);
        self.slots[usize::from(i)] = what;
        self.next_use = self.step(i);
        self.in_flight += 1;
    }

    /// Queues `buf` (needs up to two free descriptors; the caller checked `room`). Returns
    /// Err(buf) if the buffer is not from `pool`.
    pub fn push(&mut self, pool: &BufPool, mut buf: PacketBuf) -> Result<(), PacketBuf> {
        let len = buf.len() as u32;
        let addr = buf.slot_phys() + buf.start() as u64;
        let mut olinfo = len << tx_olinfo::PAYLEN_SHIFT;
        let offload = match buf.tx_checksum() {
            Some((start, offset)) => {
                let o = offload_for(&buf, start, offset);
                if o.is_none() {
                    software_checksum(&mut buf, start, offset);
                }
                o
            }
            None => None,
        };
        let token = pool.park(buf)?;
        if let Some(o) = offload {
            if self.contexts[o.slot] != Some(o.macip) {
                let l4t = if o.slot == 0 {
                    tx_tucmd::L4T_UDP
                } else {
                    tx_tucmd::L4T_TCP
                };
                let c = TxContext {
                    vlan_macip_lens: o.macip,
                    seqnum_seed: 0,
                    type_tucmd_mlhl: tx_cmd::DTYP_CTXT | tx_cmd::DEXT | tx_tucmd::IPV4 | l4t,
                    mss_l4len_idx: (o.slot as u32) << tx_olinfo::IDX_SHIFT,
                };
                self.put(&c.encode(), Slot::Context);
                self.contexts[o.slot] = Some(o.macip);
            }
            olinfo |= tx_olinfo::CC | ((o.slot as u32) << tx_olinfo::IDX_SHIFT) | tx_olinfo::TXSM;
        }
        let d = TxData {
            addr,
            cmd_type_len: tx_cmd::DTYP_DATA
                | tx_cmd::DEXT
                | tx_cmd::EOP
                | tx_cmd::IFCS
                | tx_cmd::RS
                | (len & tx_cmd::LEN_MASK),
            olinfo_status: olinfo,
        };
        self.put(&d.encode(), Slot::Packet(token));
        Ok(())
    }

    /// The tail to publish after pushes (descriptors made visible first).
    pub fn tail(&self) -> u16 {
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        self.next_use
    }
}
