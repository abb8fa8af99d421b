//! The Intel 82599 (ixgbe) driver, written against the 82599 datasheet (register map and
//! descriptor layouts in the `ferrix-ixgbe-regs` crate) rather than on the `ixgbe-driver`
//! crate: that crate owns its own packet pool and buffer type (ours are [`BufPool`] /
//! [`PacketBuf`], shared with virtio-net and the stack), drives all queues from one device
//! object (ours hands one [`QueuePair`] to each core), dereferences the BAR directly (ours goes
//! through [`Regs`], so host tests run it against the `ferrix-ixgbe-model` device model),
//! turns on promiscuous mode, and programs neither the RSS key and RETA, Flow Director nor
//! checksum offload, nor does it distrust device write-backs.
//!
//! Bring-up ([`Ixgbe::new`], datasheet 4.6.3): mask interrupts, software reset, wait for the
//! EEPROM auto-read and DMA init, read the MAC from RAL(0)/RAH(0), restart auto-negotiation,
//! clear the statistics, set up receive (CRC strip, 1518-byte max frame, broadcast accept,
//! checksum offload with the RSS hash in the descriptor, RSS with the key and a round-robin
//! RETA from `ferrix_abi::rss`), one RX/TX ring pair per queue, optional Flow Director perfect
//! filters, IVAR mapping queue i to vector i (interrupts stay masked: ferrix polls), then wait
//! (bounded) for link.
//!
//! Every wait is a bounded number of register polls ([`POLLS`]); a device that never answers
//! fails bring-up with an [`IxgbeError`] instead of hanging the boot.

mod queue;
mod regs;
mod ring;
mod rx;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod tests;
mod tx;

pub use queue::{IxgbeQueuePair, TX_RECLAIM_BELOW};
pub use regs::{Mmio, Regs};
pub use rx::{RX_BUF_LEN, RX_REFILL_BATCH};

use crate::buf::{BUF_SIZE, BufPool};
use crate::nic::{Nic, NicInfo, Offloads, QueuePair, QueueStats};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::NonNull;
use ferrix_abi::rss::{INDIRECTION_ENTRIES, MICROSOFT_RSS_KEY};
use ferrix_ixgbe_regs::fdir::*;
use ferrix_ixgbe_regs::*;
use ring::DescRing;

/// Descriptors per ring.
pub const RING_SIZE: u16 = 256;
/// Buffers per queue pair (RX ring + TX in flight + spare for the app).
pub const BUFFERS_PER_PAIR: usize = 2 * RING_SIZE as usize + 128;
/// Register polls per wait (reset, EEPROM, DMA init, queue enable, link, filter command).
pub const POLLS: u32 = 100_000;
/// Largest frame on the wire with its FCS (MAXFRS.MFS): 1514 + 4.
pub const MAX_FRAME_WITH_FCS: u32 = 1518;

/// Why bring-up or a filter command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IxgbeError {
    /// CTRL.RST did not clear.
    ResetTimeout,
    /// EEC.ARD (EEPROM auto-read done) never set.
    EepromTimeout,
    /// RDRXCTL.DMAIDONE never set.
    DmaInitTimeout,
    /// RXDCTL/TXDCTL.ENABLE of queue `0` never read back.
    QueueEnableTimeout(usize),
    /// FDIRCTRL.INIT_DONE never set, or a filter command never completed.
    FdirTimeout,
    /// The device refused a filter (table full, or Flow Director not enabled).
    FdirRejected,
    /// Queue out of range.
    BadQueue(usize),
    /// No (or misaligned) DMA memory for a ring or buffer pool.
    NoDmaMemory,
}

/// What to bring up.
#[derive(Clone, Copy, Debug)]
pub struct IxgbeConfig {
    /// Queue pairs wanted (1..=16, the RSS range).
    pub queue_pairs: usize,
    /// Enable Flow Director perfect filters (for [`Ixgbe::steer_port`]).
    pub flow_director: bool,
}

/// Cumulative device statistics (the registers clear on read; the driver adds them up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwStats {
    pub rx_good_packets: u64,
    pub rx_good_bytes: u64,
    pub tx_good_packets: u64,
    pub tx_good_bytes: u64,
    /// Packets missed for want of a descriptor.
    pub rx_missed: u64,
    pub rx_oversize: u64,
    pub fdir_matches: u64,
    pub fdir_misses: u64,
}

/// L4 protocol of a Flow Director filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
}

/// The 82599 port, before and after its queues are handed out (it keeps the control
/// registers: statistics, link, Flow Director).
pub struct Ixgbe<R: Regs> {
    regs: R,
    info: NicInfo,
    queues: Vec<Box<dyn QueuePair>>,
    flow_director: bool,
    totals: HwStats,
}

impl<R: Regs> Ixgbe<R> {
    /// Brings up the port behind `regs`. `dma(bytes)` returns zeroable DMA memory (pointer,
    /// device address; 128-byte aligned at least) for each ring and buffer pool.
    pub fn new(
        regs: R,
        config: IxgbeConfig,
        mut dma: impl FnMut(usize) -> Option<(NonNull<u8>, u64)>,
    ) -> Result<Ixgbe<R>, IxgbeError> {
        let pairs = config.queue_pairs.clamp(1, MAX_RSS_QUEUES);
        reset(&regs)?;
        let mac = read_mac(&regs);
        regs.set_bits(AUTOC, AUTOC_RESTART_AN);
        let mut totals = HwStats::default();
        accumulate_stats(&regs, &mut totals); // clears the counters
        totals = HwStats::default();

        // Receive: off while configuring.
        regs.write(RXCTRL, 0);
        regs.set_bits(HLREG0, HLREG0_RXCRCSTRP | HLREG0_TXCRCEN | HLREG0_TXPADEN);
        regs.set_bits(RDRXCTL, RDRXCTL_CRCSTRIP);
        regs.write(MAXFRS, MAX_FRAME_WITH_FCS << 16);
        regs.write(FCTRL, FCTRL_BAM);
        regs.write(RXCSUM, RXCSUM_PCSD | RXCSUM_IPPCSE);
        program_rss(&regs, pairs);
        if config.flow_director {
            enable_flow_director(&regs)?;
        }
        regs.write(DMATXCTL, DMATXCTL_TE);

        let mut queues: Vec<Box<dyn QueuePair>> = Vec::with_capacity(pairs);
        for q in 0..pairs {
            let ring = |dma: &mut dyn FnMut(usize) -> Option<(NonNull<u8>, u64)>| {
                let (p, phys) = dma(DescRing::bytes(RING_SIZE)).ok_or(IxgbeError::NoDmaMemory)?;
                // SAFETY: dma hands out fresh DMA memory of that size for this ring only.
                unsafe { DescRing::new(p, phys, RING_SIZE) }.ok_or(IxgbeError::NoDmaMemory)
            };
            let rx_ring = ring(&mut dma)?;
            let tx_ring = ring(&mut dma)?;
            let (base, phys) = dma(BUFFERS_PER_PAIR * BUF_SIZE).ok_or(IxgbeError::NoDmaMemory)?;
            // SAFETY: dma hands out fresh DMA memory of that size for this pool only.
            let pool = unsafe { BufPool::new(base, phys, BUFFERS_PER_PAIR, q as u32) };
            setup_rx_queue(&regs, q, &rx_ring)?;
            setup_tx_queue(&regs, q, &tx_ring)?;
            let mut qp = IxgbeQueuePair {
                index: q,
                regs: regs.clone(),
                rx: rx::RxRing::new(rx_ring),
                tx: tx::TxRing::new(tx_ring),
                pool,
                stats: QueueStats::default(),
            };
            qp.refill(1);
            queues.push(Box::new(qp));
        }
        // Queue q's RX and TX causes -> vector q (masked: ferrix polls; EIMS enables).
        for n in 0..pairs.div_ceil(2) {
            let byte = |q: usize| if q < pairs { IVAR_VALID | q as u32 } else { 0 };
            let (a, b) = (byte(2 * n), byte(2 * n + 1));
            regs.write(ivar(n), a | (a << 8) | (b << 16) | (b << 24));
        }
        regs.write(RXCTRL, RXCTRL_RXEN);
        regs.set_bits(CTRL_EXT, CTRL_EXT_DRV_LOAD);
        let link_up = regs.poll(LINKS, POLLS, |v| v & LINKS_UP != 0).is_some();
        Ok(Ixgbe {
            regs,
            info: NicInfo {
                mac,
                link_up,
                queue_pairs: pairs,
                offloads: Offloads {
                    tx_checksum: true,
                    rx_checksum: true,
                    rss: pairs > 1,
                    rss_toeplitz: pairs > 1,
                },
                max_frame: (MAX_FRAME_WITH_FCS - 4) as usize,
            },
            queues,
            flow_director: config.flow_director,
            totals,
        })
    }

    /// Whether the link is up now.
    pub fn link_up(&self) -> bool {
        self.regs.read(LINKS) & LINKS_UP != 0
    }

    /// The device's statistics since bring-up (reads, and so clears, the registers).
    pub fn hw_stats(&mut self) -> HwStats {
        accumulate_stats(&self.regs, &mut self.totals);
        self.totals
    }

    /// Steers every `l4` packet to destination port `port` onto queue `queue` with a Flow
    /// Director perfect filter (software index `id`), ahead of RSS.
    ///
    /// Not done yet: the bucket hash (FDIRHASH bits 14:0) real hardware uses to find the
    /// filter is left 0; the ferrix device model matches on the tuple alone, a real 82599
    /// needs the hash computed with FDIRHKEY.
    pub fn steer_port(
        &mut self,
        l4: L4,
        port: u16,
        queue: usize,
        id: u16,
    ) -> Result<(), IxgbeError> {
        if !self.flow_director {
            return Err(IxgbeError::FdirRejected);
        }
        if queue >= self.info.queue_pairs {
            return Err(IxgbeError::BadQueue(queue));
        }
        let r = &self.regs;
        let failed_before = r.read(FDIRFSTAT) & 0xff;
        r.write(FDIRIPSA, 0);
        r.write(FDIRIPDA, 0);
        r.write(FDIRPORT, u32::from(port) << 16);
        r.write(FDIRVLAN, 0);
        r.write(
            FDIRHASH,
            FDIRHASH_VALID | (u32::from(id & 0x7fff) << FDIRHASH_SWINDEX_SHIFT),
        );
        let l4type = match l4 {
            L4::Tcp => FDIRCMD_L4TYPE_TCP,
            L4::Udp => FDIRCMD_L4TYPE_UDP,
        };
        r.write(
            FDIRCMD,
            FDIRCMD_ADD_FLOW
                | l4type
                | FDIRCMD_QUEUE_EN
                | ((queue as u32) << FDIRCMD_RX_QUEUE_SHIFT),
        );
        r.poll(FDIRCMD, POLLS, |v| v & FDIRCMD_CMD_MASK == 0)
            .ok_or(IxgbeError::FdirTimeout)?;
        if r.read(FDIRFSTAT) & 0xff != failed_before {
            return Err(IxgbeError::FdirRejected);
        }
        Ok(())
    }
}

impl<R: Regs> Nic for Ixgbe<R> {
    fn info(&self) -> NicInfo {
        self.info
    }
    fn take_queues(&mut self) -> Vec<Box<dyn QueuePair>> {
        core::mem::take(&mut self.queues)
    }
}

fn reset<R: Regs>(regs: &R) -> Result<(), IxgbeError> {
    regs.write(EIMC, EIMC_ALL);
    regs.write(CTRL, regs.read(CTRL) | CTRL_RST);
    regs.poll(CTRL, POLLS, |v| v & CTRL_RST == 0)
        .ok_or(IxgbeError::ResetTimeout)?;
    regs.write(EIMC, EIMC_ALL); // again, after reset (datasheet 4.6.3.1)
    regs.poll(EEC, POLLS, |v| v & EEC_ARD != 0)
        .ok_or(IxgbeError::EepromTimeout)?;
    regs.poll(RDRXCTL, POLLS, |v| v & RDRXCTL_DMAIDONE != 0)
        .ok_or(IxgbeError::DmaInitTimeout)?;
    Ok(())
}

fn read_mac<R: Regs>(regs: &R) -> [u8; 6] {
    let lo = regs.read(ral(0)).to_le_bytes();
    let hi = regs.read(rah(0)).to_le_bytes();
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
}

/// RSSRK from `ferrix_abi::rss::MICROSOFT_RSS_KEY`, RETA entry i -> queue i mod pairs (the
/// shim's virtio-net does the same), hashing TCP/UDP over IPv4 4-tuples, other IPv4 2-tuples.
fn program_rss<R: Regs>(regs: &R, pairs: usize) {
    for (i, k) in MICROSOFT_RSS_KEY.chunks_exact(4).enumerate() {
        regs.write(rssrk(i), u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
    }
    const _: () = assert!(INDIRECTION_ENTRIES == RETA_ENTRIES);
    for i in 0..RETA_ENTRIES / 4 {
        let e = |j: usize| ((4 * i + j) % pairs) as u32;
        regs.write(reta(i), e(0) | (e(1) << 8) | (e(2) << 16) | (e(3) << 24));
    }
    regs.write(
        MRQC,
        MRQC_MRQE_RSS | MRQC_RSS_TCPIPV4 | MRQC_RSS_IPV4 | MRQC_RSS_UDPIPV4,
    );
}

/// Perfect-match filters on the L4 type and destination port only (addresses, source port,
/// VLAN, pool and flexible bytes masked), 64 KiB of packet buffer for the table.
fn enable_flow_director<R: Regs>(regs: &R) -> Result<(), IxgbeError> {
    regs.write(FDIRSIP4M, u32::MAX);
    regs.write(FDIRDIP4M, u32::MAX);
    regs.write(FDIRTCPM, 0x0000_ffff); // source port don't care, destination compared
    regs.write(FDIRUDPM, 0x0000_ffff);
    regs.write(FDIRM, FDIRM_IGNORE_VLAN_POOL_FLEX);
    regs.write(FDIRCTRL, FDIRCTRL_PBALLOC_64K | FDIRCTRL_PERFECT_MATCH);
    regs.poll(FDIRCTRL, POLLS, |v| v & FDIRCTRL_INIT_DONE != 0)
        .map(|_| ())
        .ok_or(IxgbeError::FdirTimeout)
}

fn setup_rx_queue<R: Regs>(regs: &R, q: usize, ring: &DescRing) -> Result<(), IxgbeError> {
    // 2 KiB buffers posted at HEADROOM: the device writes at most MFS (1518) bytes, which fit
    // the RX_BUF_LEN bytes after the headroom; the driver checks every length anyway.
    regs.write(srrctl(q), SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN | 2);
    setup_ring(regs, q, ring, rdbal(q), rxdctl(q))
}

fn setup_tx_queue<R: Regs>(regs: &R, q: usize, ring: &DescRing) -> Result<(), IxgbeError> {
    setup_ring(regs, q, ring, tdbal(q), txdctl(q))
}

/// Programs a ring's registers (the RX and TX blocks share one layout from their base
/// address register: BAH +4, LEN +8, H +0x10, T +0x18) and enables it.
fn setup_ring<R: Regs>(
    regs: &R,
    q: usize,
    ring: &DescRing,
    bal: u32,
    ctl: u32,
) -> Result<(), IxgbeError> {
    const _: () = assert!(rdt(0) - rdbal(0) == tdt(0) - tdbal(0) && rdh(0) - rdbal(0) == 0x10);
    regs.write(bal, ring.phys() as u32);
    regs.write(bal + 0x04, (ring.phys() >> 32) as u32);
    regs.write(bal + 0x08, DescRing::bytes(ring.len()) as u32);
    regs.write(bal + 0x10, 0);
    regs.write(bal + 0x18, 0);
    regs.set_bits(ctl, XDCTL_ENABLE);
    regs.poll(ctl, POLLS, |v| v & XDCTL_ENABLE != 0)
        .map(|_| ())
        .ok_or(IxgbeError::QueueEnableTimeout(q))
}

/// Adds the clear-on-read counters to `t`.
fn accumulate_stats<R: Regs>(regs: &R, t: &mut HwStats) {
    let r = |o| u64::from(regs.read(o));
    let pair = |lo, hi| {
        let l = r(lo);
        l | (r(hi) << 32)
    };
    t.rx_good_packets += r(GPRC);
    t.rx_good_bytes += pair(GORCL, GORCH);
    t.tx_good_packets += r(GPTC);
    t.tx_good_bytes += pair(GOTCL, GOTCH);
    t.rx_missed += r(MPC0);
    t.rx_oversize += r(ROC);
    t.fdir_matches += r(FDIRMATCH);
    t.fdir_misses += r(FDIRMISS);
}
