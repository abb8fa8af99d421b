//! A loopback NIC: whatever a queue transmits it receives back on the same queue. For host
//! tests of the stack and for apps that talk to themselves.

use crate::buf::{BufPool, PacketBuf, heap_pool};
use crate::nic::{Nic, NicInfo, Offloads, QueuePair, QueueStats};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Frames a loopback queue holds before refusing transmits.
pub const LOOPBACK_DEPTH: usize = 256;

/// The loopback device.
pub struct Loopback {
    mac: [u8; 6],
    queues: Vec<Box<dyn QueuePair>>,
    pairs: usize,
}

struct LoopQueue {
    index: usize,
    pool: BufPool,
    ring: VecDeque<PacketBuf>,
    stats: QueueStats,
}

impl Loopback {
    /// A loopback device with `pairs` queue pairs of `buffers` buffers each.
    pub fn new(mac: [u8; 6], pairs: usize, buffers: usize) -> Loopback {
        let queues = (0..pairs)
            .map(|i| {
                Box::new(LoopQueue {
                    index: i,
                    pool: heap_pool(buffers, i as u32),
                    ring: VecDeque::new(),
                    stats: QueueStats::default(),
                }) as Box<dyn QueuePair>
            })
            .collect();
        Loopback { mac, queues, pairs }
    }
}

impl Nic for Loopback {
    fn info(&self) -> NicInfo {
        NicInfo {
            mac: self.mac,
            link_up: true,
            queue_pairs: self.pairs,
            offloads: Offloads::default(),
            max_frame: 1514,
        }
    }
    fn take_queues(&mut self) -> Vec<Box<dyn QueuePair>> {
        core::mem::take(&mut self.queues)
    }
}

impl QueuePair for LoopQueue {
    fn rx_pending(&self) -> bool {
        !self.ring.is_empty()
    }
    fn rx_burst(&mut self, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let n = max.min(self.ring.len());
        for b in self.ring.drain(..n) {
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += b.len() as u64;
            out.push(b);
        }
        n
    }
    fn tx_burst(&mut self, pkts: &mut Vec<PacketBuf>) -> usize {
        let n = pkts.len().min(LOOPBACK_DEPTH - self.ring.len());
        self.stats.tx_ring_full += (pkts.len() - n) as u64;
        for b in pkts.drain(..n) {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += b.len() as u64;
            self.ring.push_back(b);
        }
        n
    }
    fn alloc(&mut self) -> Option<PacketBuf> {
        self.pool.alloc()
    }
    fn free(&mut self, buf: PacketBuf) {
        // A loopback queue only ever sees its own buffers.
        let _ = self.pool.free(buf);
    }
    fn stats(&self) -> QueueStats {
        self.stats
    }
    fn index(&self) -> usize {
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_in_order() {
        let mut nic = Loopback::new([2, 0, 0, 0, 0, 1], 2, 8);
        assert_eq!(nic.info().queue_pairs, 2);
        let mut qs = nic.take_queues();
        assert!(nic.take_queues().is_empty());
        let q = &mut qs[1];
        assert!(!q.rx_pending());
        let mut tx = Vec::new();
        for i in 0..3u8 {
            let mut b = q.alloc().unwrap();
            b.set_len(60);
            b.data_mut().fill(i);
            tx.push(b);
        }
        assert_eq!(q.tx_burst(&mut tx), 3);
        assert!(q.rx_pending());
        let mut rx = Vec::new();
        assert_eq!(q.rx_burst(&mut rx, 2), 2);
        assert_eq!(q.rx_burst(&mut rx, 8), 1);
        assert!(!q.rx_pending());
        assert_eq!(
            rx.iter().map(|b| b.data()[0]).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let s = q.stats();
        assert_eq!((s.tx_packets, s.rx_packets, s.rx_bytes), (3, 3, 180));
        for b in rx {
            q.free(b);
        }
        assert_eq!(qs[0].stats(), QueueStats::default());
    }
}
