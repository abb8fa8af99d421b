//! The receive path: MAC filtering, queue selection (Flow Director perfect match, then RSS
//! over RETA, else queue 0), checksum validation and the advanced write-back descriptor.

use super::{Hostile, Ixgbe82599, idx};
use crate::fdir::{Masks, Steer};
use crate::mem::GuestMemory;
use ferrix_abi::rss::{IPPROTO_TCP, IPPROTO_UDP, Ipv4Flow, toeplitz};
use ferrix_ixgbe_regs::desc::{
    DESC_LEN, RxWriteBack, pkt_type, rss_type, rx_error, rx_read_decode, rx_status,
};
use ferrix_ixgbe_regs::fdir::*;
use ferrix_ixgbe_regs::*;

/// What became of an injected frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written to a descriptor of `queue`.
    Delivered { queue: usize },
    /// Receive disabled or link down.
    Disabled,
    /// Refused by the destination MAC filters.
    Filtered,
    /// Longer than MAXFRS (counted in ROC) or shorter than an Ethernet header.
    BadSize,
    /// `queue` had no free descriptor (counted in MPC and QPRDC).
    NoDescriptor { queue: usize },
    /// `queue` is disabled or its ring registers are invalid.
    QueueUnusable { queue: usize },
    /// The frame does not fit the queue's buffer (dropped; real hardware would chain).
    TooBig { queue: usize },
    /// A Flow Director filter dropped it.
    FdirDrop,
    /// A descriptor or buffer address was outside guest memory.
    DmaError { queue: usize },
}

/// How the frame was classified for the write-back.
struct Class {
    queue: usize,
    rss_type: u8,
    hash: u32,
    fdir_id: Option<u16>,
}

/// The checksum status and error bits for a frame.
fn checksum_bits(frame: &[u8], flow: Option<&Ipv4Flow>) -> u32 {
    let Some(f) = flow else {
        return 0;
    };
    let ip = &frame[14..f.l4_offset];
    let mut bits = rx_status::IPCS;
    if internet_checksum(ip, 0) != 0 {
        bits |= rx_error::IPE;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let end = 14 + total;
    let (Some(_), Some(l4)) = (f.ports, frame.get(f.l4_offset..end)) else {
        return bits;
    };
    if f.proto == IPPROTO_UDP && l4.get(6..8) == Some(&[0, 0]) {
        return bits; // no UDP checksum to check
    }
    let pseudo = pseudo_header_sum(f, l4.len());
    bits |= rx_status::L4CS;
    if f.proto == IPPROTO_UDP {
        bits |= rx_status::UDPCS;
    }
    if internet_checksum(l4, pseudo) != 0 {
        bits |= rx_error::TCPE;
    }
    bits
}

/// The IPv4 pseudo-header's partial sum for an L4 segment of `len` bytes.
pub(crate) fn pseudo_header_sum(f: &Ipv4Flow, len: usize) -> u32 {
    let word = |b: &[u8; 4], i: usize| u32::from(u16::from_be_bytes([b[i], b[i + 1]]));
    word(&f.src, 0)
        + word(&f.src, 2)
        + word(&f.dst, 0)
        + word(&f.dst, 2)
        + u32::from(f.proto)
        + len as u32
}

impl<M: GuestMemory> Ixgbe82599<M> {
    /// Whether the destination MAC filters accept `frame`.
    fn mac_accepts(&self, frame: &[u8]) -> bool {
        let dst = &frame[..6];
        let fctrl = self.reg(FCTRL);
        if dst == [0xff; 6] {
            return fctrl & FCTRL_BAM != 0;
        }
        if dst[0] & 1 != 0 {
            return fctrl & FCTRL_MPE != 0; // no multicast table in the model
        }
        if fctrl & FCTRL_UPE != 0 {
            return true;
        }
        (0..RAR_ENTRIES).any(|i| {
            let (lo, hi) = (self.reg(ral(i)), self.reg(rah(i)));
            let mut a = [0u8; 6];
            a[..4].copy_from_slice(&lo.to_le_bytes());
            a[4..].copy_from_slice(&hi.to_le_bytes()[..2]);
            hi & RAH_AV != 0 && a == dst
        })
    }

    fn rss_key(&self) -> [u8; RSS_KEY_LEN] {
        let mut k = [0u8; RSS_KEY_LEN];
        for (i, c) in k.chunks_exact_mut(4).enumerate() {
            c.copy_from_slice(&self.reg(rssrk(i)).to_le_bytes());
        }
        k
    }

    fn reta_entry(&self, i: usize) -> usize {
        ((self.reg(reta(i / 4)) >> (8 * (i % 4))) & 0xf) as usize
    }

    /// Chooses the queue: Flow Director, then RSS, then queue 0.
    fn classify(&mut self, flow: Option<&Ipv4Flow>) -> Result<Class, RxOutcome> {
        let mut c = Class {
            queue: 0,
            rss_type: rss_type::NONE,
            hash: 0,
            fdir_id: None,
        };
        let Some(f) = flow else {
            return Ok(c);
        };
        let masks = Masks {
            sip4m: self.reg(FDIRSIP4M),
            dip4m: self.reg(FDIRDIP4M),
            tcpm: self.reg(FDIRTCPM),
            udpm: self.reg(FDIRUDPM),
            fdirm: self.reg(FDIRM),
        };
        let ctrl = self.reg(FDIRCTRL);
        let fdir_hit = self.fdir.lookup(ctrl, &masks, f);
        let mrqc = self.reg(MRQC);
        if mrqc & MRQC_MRQE_MASK == MRQC_MRQE_RSS {
            let four = match f.proto {
                IPPROTO_TCP => (mrqc & MRQC_RSS_TCPIPV4 != 0).then_some(rss_type::TCP_IPV4),
                IPPROTO_UDP => (mrqc & MRQC_RSS_UDPIPV4 != 0).then_some(rss_type::UDP_IPV4),
                _ => None,
            }
            .filter(|_| f.ports.is_some());
            let kind = four.or((mrqc & MRQC_RSS_IPV4 != 0).then_some(rss_type::IPV4));
            if let Some(kind) = kind {
                let (input, n) = f.hash_input(kind != rss_type::IPV4);
                c.hash = toeplitz(&self.rss_key(), &input[..n]);
                c.rss_type = kind;
                c.queue = self.reta_entry(c.hash as usize % RETA_ENTRIES);
            }
        }
        match fdir_hit {
            Some(Steer::Queue { queue, filter_id }) => {
                c.queue = queue;
                c.fdir_id = Some(filter_id);
            }
            Some(Steer::Drop { queue, .. }) => {
                if queue >= super::QUEUES {
                    return Err(RxOutcome::FdirDrop);
                }
                c.queue = queue;
            }
            None => {}
        }
        Ok(c)
    }

    /// Receives `frame` (an Ethernet frame without FCS) from the wire.
    pub fn inject_rx(&mut self, frame: &[u8]) -> RxOutcome {
        self.stats.tpr = self.stats.tpr.wrapping_add(1);
        if self.reg(RXCTRL) & RXCTRL_RXEN == 0 || !self.link_up() {
            self.counters.rx_disabled += 1;
            return RxOutcome::Disabled;
        }
        let max = (self.reg(MAXFRS) >> 16) as usize;
        let jumbo = self.reg(HLREG0) & HLREG0_JUMBOEN != 0;
        if frame.len() < 14 || (!jumbo && frame.len() + 4 > max) {
            self.stats.roc = self.stats.roc.wrapping_add(1);
            return RxOutcome::BadSize;
        }
        if !self.mac_accepts(frame) {
            self.counters.rx_filtered += 1;
            return RxOutcome::Filtered;
        }
        let flow = Ipv4Flow::parse(frame);
        let class = match self.classify(flow.as_ref()) {
            Ok(c) => c,
            Err(o) => return o,
        };
        let q = class.queue;
        let r = self.deliver(q, frame, flow.as_ref(), &class);
        if r == (RxOutcome::Delivered { queue: q }) {
            let s = &mut self.stats;
            s.gprc = s.gprc.wrapping_add(1);
            s.gorc = s.gorc.wrapping_add(frame.len() as u64 + 4);
            if frame[0] == 0xff && frame[..6] == [0xff; 6] {
                s.bprc = s.bprc.wrapping_add(1);
            } else if frame[0] & 1 != 0 {
                s.mprc = s.mprc.wrapping_add(1);
            }
            if let Some(c) = s.qprc.get_mut(q) {
                *c = c.wrapping_add(1);
            }
            let cause = self.queue_cause(q, false);
            self.raise(cause);
        }
        r
    }

    /// Writes `frame` into the next descriptor of queue `q`.
    fn deliver(
        &mut self,
        q: usize,
        frame: &[u8],
        flow: Option<&Ipv4Flow>,
        class: &Class,
    ) -> RxOutcome {
        if q >= super::QUEUES || self.reg(rxdctl(q)) & XDCTL_ENABLE == 0 {
            return RxOutcome::QueueUnusable { queue: q };
        }
        let Some((base, entries, head, tail)) = self.ring(rdbal(q), rdlen(q), rdh(q), rdt(q))
        else {
            return RxOutcome::QueueUnusable { queue: q };
        };
        let srrctl = self.reg(srrctl(q));
        if srrctl & SRRCTL_DESCTYPE_MASK != SRRCTL_DESCTYPE_ADV_ONEBUF {
            self.counters.bad_rings += 1;
            return RxOutcome::QueueUnusable { queue: q };
        }
        if head == tail {
            self.stats.mpc0 = self.stats.mpc0.wrapping_add(1);
            if let Some(c) = self.stats.qprdc.get_mut(q) {
                *c = c.wrapping_add(1);
            }
            return RxOutcome::NoDescriptor { queue: q };
        }
        let bsize = ((srrctl & SRRCTL_BSIZEPKT_MASK) as usize) * 1024;
        let at = base.wrapping_add(u64::from(head) * DESC_LEN as u64);
        let mut d = [0u8; DESC_LEN];
        if self.mem.read(at, &mut d).is_err() {
            self.counters.dma_errors += 1;
            return RxOutcome::DmaError { queue: q };
        }
        let (pkt_addr, _hdr) = rx_read_decode(&d);
        if frame.len() > bsize {
            self.counters.rx_too_big += 1;
            return RxOutcome::TooBig { queue: q };
        }
        let mut status = rx_status::DD | rx_status::EOP;
        let mut length = frame.len() as u16;
        let mut outcome = RxOutcome::Delivered { queue: q };
        if self.mem.write(pkt_addr, frame).is_err() {
            // Tell the driver: the descriptor completes with an error and no data.
            self.counters.dma_errors += 1;
            status |= rx_error::RXE;
            length = 0;
            outcome = RxOutcome::DmaError { queue: q };
        } else {
            status |= checksum_bits(frame, flow);
        }
        let mut ptype = 0;
        if let Some(f) = flow {
            ptype |= pkt_type::IPV4;
            match f.proto {
                IPPROTO_TCP => ptype |= pkt_type::TCP,
                IPPROTO_UDP => ptype |= pkt_type::UDP,
                _ => {}
            }
        }
        let pcsd = self.reg(RXCSUM) & RXCSUM_PCSD != 0;
        let mut wb = RxWriteBack {
            rss_type: class.rss_type,
            pkt_type: ptype,
            rss_hash: match (pcsd, class.fdir_id) {
                (false, _) => 0, // IP id and fragment checksum: not modelled
                (true, Some(id)) => u32::from(id),
                (true, None) => class.hash,
            },
            status_error: status
                | if class.fdir_id.is_some() {
                    rx_status::FLM
                } else {
                    0
                },
            length,
            vlan: 0,
        };
        match self.hostile {
            Hostile::Honest => {}
            Hostile::LengthBeyondBuffer => wb.length = u16::MAX,
            Hostile::ZeroLength => wb.length = 0,
            Hostile::NoEop => wb.status_error &= !rx_status::EOP,
        }
        if self.mem.write(at, &wb.encode()).is_err() {
            self.counters.dma_errors += 1;
            return RxOutcome::DmaError { queue: q };
        }
        self.regs[idx(rdh(q))] = (head + 1) % entries;
        outcome
    }

    /// A hostile device: writes `wb` over receive descriptor `index` of queue `q` whether or
    /// not the driver posted it. False if the ring is unusable or the write faults.
    pub fn write_rx_descriptor_raw(&mut self, q: usize, index: u32, wb: RxWriteBack) -> bool {
        let Some((base, entries, _, _)) = self.ring(rdbal(q), rdlen(q), rdh(q), rdt(q)) else {
            return false;
        };
        let at = base.wrapping_add(u64::from(index % entries) * DESC_LEN as u64);
        self.mem.write(at, &wb.encode()).is_ok()
    }
}
