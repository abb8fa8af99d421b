//! One ixgbe RX/TX queue pair behind the [`QueuePair`] trait: its rings, its buffer pool, and
//! its two doorbells (RDT, TDT), the only registers the fast path writes.

use super::regs::Regs;
use super::rx::{RX_REFILL_BATCH, RxRing};
use super::tx::TxRing;
use crate::buf::{BufPool, PacketBuf};
use crate::nic::{QueuePair, QueueStats};
use alloc::vec::Vec;
use ferrix_ixgbe_regs::{rdt, tdt};

/// Completed TX buffers are reclaimed once fewer descriptors than this are free.
pub const TX_RECLAIM_BELOW: u16 = 64;

pub struct IxgbeQueuePair<R: Regs> {
    pub(super) index: usize,
    pub(super) regs: R,
    pub(super) rx: RxRing,
    pub(super) tx: TxRing,
    pub(super) pool: BufPool,
    pub(super) stats: QueueStats,
}

impl<R: Regs> IxgbeQueuePair<R> {
    /// Posts free buffers and rings the RX doorbell (if at least `min` descriptors are free).
    pub(super) fn refill(&mut self, min: u16) {
        if let Some(tail) = self.rx.refill(&mut self.pool, min) {
            self.regs.write(rdt(self.index), u32::from(tail));
        }
    }
}

impl<R: Regs> QueuePair for IxgbeQueuePair<R> {
    fn rx_pending(&self) -> bool {
        self.rx.pending()
    }

    fn rx_burst(&mut self, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let (n, bytes) = self.rx.take(&mut self.pool, out, max);
        self.stats.rx_packets += n as u64;
        self.stats.rx_bytes += bytes;
        if self.pool.available() == 0 {
            self.tx.reclaim(&mut self.pool);
        }
        self.refill(RX_REFILL_BATCH);
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<PacketBuf>) -> usize {
        if self.tx.room() < TX_RECLAIM_BELOW {
            self.tx.reclaim(&mut self.pool);
        }
        // How many fit: one descriptor each, two with a checksum request (a context may be
        // needed), counted conservatively before any is taken.
        let mut room = self.tx.room();
        let mut fit = 0;
        for b in pkts.iter() {
            let need = 1 + u16::from(b.tx_checksum().is_some());
            if room < need {
                break;
            }
            room -= need;
            fit += 1;
        }
        self.stats.tx_ring_full += (pkts.len() - fit) as u64;
        let mut sent = 0;
        for buf in pkts.drain(..fit) {
            let len = buf.len() as u64;
            match self.tx.push(&self.pool, buf) {
                Ok(()) => {
                    sent += 1;
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += len;
                }
                // Another pool's buffer: its slot cannot be returned from here (leaked).
                Err(_foreign) => self.stats.foreign_buffers += 1,
            }
        }
        if sent > 0 {
            self.regs.write(tdt(self.index), u32::from(self.tx.tail()));
        }
        sent
    }

    fn alloc(&mut self) -> Option<PacketBuf> {
        if self.pool.available() == 0 {
            self.tx.reclaim(&mut self.pool);
        }
        self.pool.alloc()
    }

    fn free(&mut self, buf: PacketBuf) {
        self.pool
            .free_or_count(buf, &mut self.stats.foreign_buffers);
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            device_errors: self.rx.device_errors + self.tx.device_errors,
            rx_dropped: self.stats.rx_dropped + self.rx.dropped,
            ..self.stats
        }
    }

    fn index(&self) -> usize {
        self.index
    }
}
