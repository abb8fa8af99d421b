//! The transmit path: walks each enabled queue's ring from TDH to TDT, gathers a packet's
//! data descriptors up to EOP, applies the checksum offloads its context asks for, writes DD
//! back where RS is set.

use super::{ContextSlots, Ixgbe82599, QUEUES, idx};
use crate::mem::GuestMemory;
use crate::rx::pseudo_header_sum;
use ferrix_abi::rss::{IPPROTO_TCP, IPPROTO_UDP, Ipv4Flow};
use ferrix_ixgbe_regs::desc::{DESC_LEN, TxContext, TxData, tx_cmd, tx_olinfo, tx_tucmd};
use ferrix_ixgbe_regs::*;

/// Longest packet the model assembles (a jumbo frame); longer ones are dropped.
pub const MAX_TX_PACKET: usize = 9728;

/// A queue's state between descriptors.
#[derive(Clone, Debug, Default)]
pub struct TxQueueState {
    contexts: ContextSlots,
    /// The packet being gathered and the `olinfo_status` of its first descriptor.
    packet: Vec<u8>,
    first_olinfo: Option<u32>,
    /// Something went wrong with this packet: drop it at EOP.
    bad: bool,
}

/// Inserts the offloaded checksums into `p`. False if the request is impossible (bad
/// lengths, no context): the packet is dropped.
fn apply_offloads(p: &mut [u8], olinfo: u32, ctx: Option<&TxContext>) -> bool {
    let wants = olinfo & (tx_olinfo::IXSM | tx_olinfo::TXSM);
    if wants == 0 {
        return true;
    }
    let Some(c) = ctx else {
        return false;
    };
    let (ml, il) = (c.maclen(), c.iplen());
    let l4 = ml + il;
    if il < 20 || l4 > p.len() {
        return false;
    }
    if olinfo & tx_olinfo::IXSM != 0 {
        p[ml + 10..ml + 12].fill(0);
        let sum = internet_checksum(&p[ml..l4], 0);
        p[ml + 10..ml + 12].copy_from_slice(&sum.to_be_bytes());
    }
    if olinfo & tx_olinfo::TXSM != 0 {
        let (field, udp) = match c.type_tucmd_mlhl & tx_tucmd::L4T_MASK {
            tx_tucmd::L4T_TCP => (16, false),
            tx_tucmd::L4T_UDP => (6, true),
            _ => return false,
        };
        if l4 + field + 2 > p.len() {
            return false;
        }
        // The field holds the pseudo-header sum the driver put there.
        let mut sum = internet_checksum(&p[l4..], 0);
        if udp && sum == 0 {
            sum = 0xffff;
        }
        p[l4 + field..l4 + field + 2].copy_from_slice(&sum.to_be_bytes());
    }
    true
}

impl<M: GuestMemory> Ixgbe82599<M> {
    /// Transmits everything the driver queued (TDH..TDT on every enabled queue) and returns
    /// the frames, in queue order. Each ring is walked at most once around per call.
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.reg(DMATXCTL) & DMATXCTL_TE == 0 {
            return out;
        }
        for q in 0..QUEUES {
            if self.reg(txdctl(q)) & XDCTL_ENABLE == 0 || self.reg(tdlen(q)) == 0 {
                continue;
            }
            let Some((base, entries, mut head, tail)) =
                self.ring(tdbal(q), tdlen(q), tdh(q), tdt(q))
            else {
                continue;
            };
            let mut sent = false;
            for _ in 0..entries {
                if head == tail {
                    break;
                }
                let at = base.wrapping_add(u64::from(head) * DESC_LEN as u64);
                if let Some(frame) = self.tx_descriptor(q, at) {
                    out.push(frame);
                    sent = true;
                }
                head = (head + 1) % entries;
            }
            self.regs[idx(tdh(q))] = head;
            if sent {
                let cause = self.queue_cause(q, true);
                self.raise(cause);
            }
        }
        out
    }

    /// Processes the descriptor at `at` of queue `q`; a frame when it ends one.
    fn tx_descriptor(&mut self, q: usize, at: u64) -> Option<Vec<u8>> {
        let mut raw = [0u8; DESC_LEN];
        if self.mem.read(at, &mut raw).is_err() {
            self.counters.dma_errors += 1;
            self.tx[q].bad = true;
            return None;
        }
        let d = TxData::decode(&raw);
        let cmd = d.cmd_type_len;
        let mut frame = None;
        if cmd & tx_cmd::DEXT == 0 || cmd & tx_cmd::TSE != 0 {
            self.counters.tx_bad_descriptors += 1;
            self.tx[q].bad = true;
        } else if cmd & tx_cmd::DTYP_MASK == tx_cmd::DTYP_CTXT {
            let c = TxContext::decode(&raw);
            let slot = ((c.mss_l4len_idx >> tx_olinfo::IDX_SHIFT) & 1) as usize;
            self.tx[q].contexts[slot] = Some(c);
        } else if cmd & tx_cmd::DTYP_MASK == tx_cmd::DTYP_DATA {
            frame = self.tx_data(q, &d);
        } else {
            self.counters.tx_bad_descriptors += 1;
            self.tx[q].bad = true;
        }
        // DD is written back to data descriptors only: a context descriptor's last dword is
        // MSS/L4LEN/IDX, not a status field.
        let data = cmd & tx_cmd::DTYP_MASK == tx_cmd::DTYP_DATA;
        if cmd & tx_cmd::RS != 0 && data {
            let done = (d.olinfo_status | tx_olinfo::DD).to_le_bytes();
            if self.mem.write(at + 12, &done).is_err() {
                self.counters.dma_errors += 1;
            }
        }
        frame
    }

    fn tx_data(&mut self, q: usize, d: &TxData) -> Option<Vec<u8>> {
        let len = (d.cmd_type_len & tx_cmd::LEN_MASK) as usize;
        let st = &mut self.tx[q];
        st.first_olinfo.get_or_insert(d.olinfo_status);
        if st.packet.len() + len > MAX_TX_PACKET {
            st.bad = true;
        } else {
            let old = st.packet.len();
            st.packet.resize(old + len, 0);
            if self.mem.read(d.addr, &mut st.packet[old..]).is_err() {
                self.counters.dma_errors += 1;
                st.bad = true;
            }
        }
        if d.cmd_type_len & tx_cmd::EOP == 0 {
            return None;
        }
        let mut p = core::mem::take(&mut st.packet);
        let olinfo = st.first_olinfo.take().unwrap_or(0);
        let bad = core::mem::take(&mut st.bad);
        let ctx = (olinfo & tx_olinfo::CC != 0)
            .then(|| st.contexts[((olinfo >> tx_olinfo::IDX_SHIFT) & 1) as usize])
            .flatten();
        if bad || p.len() < 14 {
            self.counters.tx_bad_descriptors += u64::from(!bad);
            return None;
        }
        if !apply_offloads(&mut p, olinfo, ctx.as_ref()) {
            self.counters.tx_bad_descriptors += 1;
            return None;
        }
        let s = &mut self.stats;
        s.gptc = s.gptc.wrapping_add(1);
        s.tpt = s.tpt.wrapping_add(1);
        s.gotc = s.gotc.wrapping_add(p.len() as u64 + 4);
        if let Some(c) = s.qptc.get_mut(q) {
            *c = c.wrapping_add(1);
        }
        Some(p)
    }

    /// A hostile device: sets DD on transmit descriptor `index` of queue `q` (in flight or
    /// not). False if the ring is unusable or the write faults.
    pub fn write_tx_done_raw(&mut self, q: usize, index: u32) -> bool {
        let Some((base, entries, _, _)) = self.ring(tdbal(q), tdlen(q), tdh(q), tdt(q)) else {
            return false;
        };
        let at = base.wrapping_add(u64::from(index % entries) * DESC_LEN as u64) + 12;
        self.mem.write(at, &tx_olinfo::DD.to_le_bytes()).is_ok()
    }
}

/// The folded pseudo-header sum a driver stores in the TCP/UDP checksum field of `frame`
/// before asking for TXSM (for tests and software that builds packets for the model).
pub fn pseudo_header_for(frame: &[u8]) -> Option<u16> {
    let f = Ipv4Flow::parse(frame)?;
    if !matches!(f.proto, IPPROTO_TCP | IPPROTO_UDP) {
        return None;
    }
    let ip_total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let sum = pseudo_header_sum(&f, ip_total.checked_sub(f.l4_offset - 14)?);
    Some(!internet_checksum(&[], sum))
}
