//! Flow Director perfect-match filters: the table FDIRCMD programs and the lookup that
//! steers a received IPv4 TCP/UDP flow to its queue before RSS is consulted.
//!
//! Simplification (documented, not hidden): the real 82599 finds a filter through the bucket
//! hash the driver computes with FDIRHKEY and writes to FDIRHASH, then compares the tuple; the
//! model keeps a flat table and compares the masked tuple directly, so a driver that wrote a
//! wrong bucket hash would still match here. The software index from FDIRHASH is kept and
//! reported as the filter id.

use ferrix_abi::rss::{IPPROTO_TCP, IPPROTO_UDP, Ipv4Flow};
use ferrix_ixgbe_regs::fdir::*;

/// One perfect filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Filter {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    /// FDIRCMD L4 type bits.
    l4type: u32,
    /// Some(queue) with QUEUE_EN.
    queue: Option<u8>,
    drop: bool,
    swindex: u16,
}

/// What a match asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    Queue { queue: usize, filter_id: u16 },
    Drop { queue: usize, filter_id: u16 },
}

/// The filter table and its masks.
#[derive(Clone, Debug, Default)]
pub struct Fdir {
    filters: Vec<Filter>,
    pub adds: u16,
    pub removes: u16,
    pub failed_adds: u8,
    pub failed_removes: u8,
    pub matches: u32,
    pub misses: u32,
}

/// The register values a filter command reads.
pub struct Regs {
    pub ctrl: u32,
    pub ipsa: u32,
    pub ipda: u32,
    pub port: u32,
    pub hash: u32,
    pub cmd: u32,
}

/// The masks in force (register values).
pub struct Masks {
    pub sip4m: u32,
    pub dip4m: u32,
    pub tcpm: u32,
    pub udpm: u32,
    pub fdirm: u32,
}

/// Reverses the bits of each 16-bit half (the port mask registers' documented layout).
fn reverse_halves(v: u32) -> u32 {
    (u32::from((v as u16).reverse_bits())) | (u32::from(((v >> 16) as u16).reverse_bits()) << 16)
}

impl Fdir {
    /// Whether the table is in use (a packet buffer allocation and perfect-match mode).
    pub fn enabled(ctrl: u32) -> bool {
        ctrl & FDIRCTRL_PBALLOC_MASK != 0 && ctrl & FDIRCTRL_PERFECT_MATCH != 0
    }

    /// Capacity for the allocation in FDIRCTRL.
    pub fn capacity(ctrl: u32) -> usize {
        match ctrl & FDIRCTRL_PBALLOC_MASK {
            0 => 0,
            n => (PERFECT_FILTERS_64K as usize + 2) * (1 << (n - 1)) - 2,
        }
    }

    /// Free filters (FDIRFREE).
    pub fn free(&self, ctrl: u32) -> u32 {
        Self::capacity(ctrl).saturating_sub(self.filters.len()) as u32
    }

    /// Empties the table (reset, or FDIRCTRL re-initialisation).
    pub fn clear(&mut self) {
        *self = Fdir::default();
    }

    /// Executes an FDIRCMD write.
    pub fn command(&mut self, r: &Regs) {
        let f = Filter {
            src: r.ipsa,
            dst: r.ipda,
            sport: r.port as u16,
            dport: (r.port >> 16) as u16,
            l4type: r.cmd & FDIRCMD_L4TYPE_MASK,
            queue: (r.cmd & FDIRCMD_QUEUE_EN != 0)
                .then_some((r.cmd >> FDIRCMD_RX_QUEUE_SHIFT) as u8 & 0x7f),
            drop: r.cmd & FDIRCMD_DROP != 0,
            swindex: ((r.hash >> FDIRHASH_SWINDEX_SHIFT) & 0x7fff) as u16,
        };
        let same = |g: &Filter| {
            (g.src, g.dst, g.sport, g.dport, g.l4type) == (f.src, f.dst, f.sport, f.dport, f.l4type)
        };
        match r.cmd & FDIRCMD_CMD_MASK {
            FDIRCMD_ADD_FLOW => {
                let usable = Self::enabled(r.ctrl)
                    && r.cmd & FDIRCMD_IPV6 == 0
                    && r.hash & FDIRHASH_VALID != 0;
                if !usable {
                    self.failed_adds = self.failed_adds.wrapping_add(1);
                } else if let Some(g) = self.filters.iter_mut().find(|g| same(g)) {
                    *g = f; // an update of the same flow
                    self.adds = self.adds.wrapping_add(1);
                } else if self.filters.len() < Self::capacity(r.ctrl) {
                    self.filters.push(f);
                    self.adds = self.adds.wrapping_add(1);
                } else {
                    self.failed_adds = self.failed_adds.wrapping_add(1);
                }
            }
            FDIRCMD_REMOVE_FLOW => match self.filters.iter().position(same) {
                Some(i) => {
                    self.filters.swap_remove(i);
                    self.removes = self.removes.wrapping_add(1);
                }
                None => self.failed_removes = self.failed_removes.wrapping_add(1),
            },
            _ => {} // query: nothing to report beyond the statistics
        }
    }

    /// The filter `flow` matches, if any (counted in FDIRMATCH / FDIRMISS).
    pub fn lookup(&mut self, ctrl: u32, m: &Masks, flow: &Ipv4Flow) -> Option<Steer> {
        if !Self::enabled(ctrl) {
            return None;
        }
        let (l4type, port_mask) = match flow.proto {
            IPPROTO_TCP => (FDIRCMD_L4TYPE_TCP, reverse_halves(m.tcpm)),
            IPPROTO_UDP => (FDIRCMD_L4TYPE_UDP, reverse_halves(m.udpm)),
            _ => return None,
        };
        let (sport, dport) = flow.ports?;
        let src = u32::from_be_bytes(flow.src);
        let dst = u32::from_be_bytes(flow.dst);
        let ignore_l4 = m.fdirm & FDIRM_L4P != 0;
        let hit = self.filters.iter().find(|f| {
            (ignore_l4 || f.l4type == l4type)
                && (f.src ^ src) & !m.sip4m == 0
                && (f.dst ^ dst) & !m.dip4m == 0
                && (f.sport ^ sport) & !(port_mask as u16) == 0
                && (f.dport ^ dport) & !((port_mask >> 16) as u16) == 0
        });
        let Some(f) = hit else {
            self.misses = self.misses.wrapping_add(1);
            return None;
        };
        self.matches = self.matches.wrapping_add(1);
        let drop_q = ((ctrl >> FDIRCTRL_DROP_Q_SHIFT) & 0x7f) as usize;
        Some(match (f.drop, f.queue) {
            (true, _) => Steer::Drop {
                queue: drop_q,
                filter_id: f.swindex,
            },
            (false, Some(q)) => Steer::Queue {
                queue: q.into(),
                filter_id: f.swindex,
            },
            (false, None) => return None, // a match without a queue: RSS decides
        })
    }
}
