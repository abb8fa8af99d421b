//! A fake NIC for host tests: the test injects frames into a queue's receive side and reads
//! back what the queue transmitted, through a shared [`FakeWire`].

use crate::buf::{BufPool, HEADROOM, PacketBuf, heap_pool};
use crate::nic::{Nic, NicInfo, Offloads, QueuePair, QueueStats};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

#[derive(Default)]
struct Lanes {
    to_guest: VecDeque<Vec<u8>>,
    from_guest: Vec<Vec<u8>>,
}

/// The test's end of a fake NIC.
#[derive(Clone)]
pub struct FakeWire {
    lanes: Arc<Vec<spin::Mutex<Lanes>>>,
}

impl FakeWire {
    /// Queues `frame` for reception on queue `q`.
    pub fn inject(&self, q: usize, frame: &[u8]) {
        self.lanes[q].lock().to_guest.push_back(frame.to_vec());
    }
    /// Takes every frame queue `q` transmitted so far.
    pub fn take_sent(&self, q: usize) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.lanes[q].lock().from_guest)
    }
}

/// The fake device.
pub struct FakeNic {
    info: NicInfo,
    queues: Vec<Box<dyn QueuePair>>,
}

struct FakeQueue {
    index: usize,
    wire: FakeWire,
    pool: BufPool,
    stats: QueueStats,
}

impl FakeNic {
    /// A fake NIC with `pairs` queue pairs, and the wire to drive it.
    pub fn new(mac: [u8; 6], pairs: usize) -> (FakeNic, FakeWire) {
        let wire = FakeWire {
            lanes: Arc::new(
                (0..pairs)
                    .map(|_| spin::Mutex::new(Lanes::default()))
                    .collect(),
            ),
        };
        let queues = (0..pairs)
            .map(|i| {
                Box::new(FakeQueue {
                    index: i,
                    wire: wire.clone(),
                    pool: heap_pool(64, i as u32),
                    stats: QueueStats::default(),
                }) as Box<dyn QueuePair>
            })
            .collect();
        let info = NicInfo {
            mac,
            link_up: true,
            queue_pairs: pairs,
            offloads: Offloads::default(),
            max_frame: 1514,
        };
        (FakeNic { info, queues }, wire)
    }
}

impl Nic for FakeNic {
    fn info(&self) -> NicInfo {
        self.info
    }
    fn take_queues(&mut self) -> Vec<Box<dyn QueuePair>> {
        core::mem::take(&mut self.queues)
    }
}

impl QueuePair for FakeQueue {
    fn rx_pending(&self) -> bool {
        !self.wire.lanes[self.index].lock().to_guest.is_empty()
    }
    fn rx_burst(&mut self, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(frame) = self.wire.lanes[self.index].lock().to_guest.pop_front() else {
                break;
            };
            let Some(mut b) = self.pool.alloc() else {
                self.stats.rx_dropped += 1;
                continue;
            };
            if !b.set_window(HEADROOM, frame.len()) {
                self.stats.rx_dropped += 1;
                let _ = self.pool.free(b);
                continue;
            }
            b.data_mut().copy_from_slice(&frame);
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += frame.len() as u64;
            out.push(b);
            n += 1;
        }
        n
    }
    fn tx_burst(&mut self, pkts: &mut Vec<PacketBuf>) -> usize {
        let n = pkts.len();
        for b in pkts.drain(..) {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += b.len() as u64;
            self.wire.lanes[self.index]
                .lock()
                .from_guest
                .push(b.data().to_vec());
            let _ = self.pool.free(b);
        }
        n
    }
    fn alloc(&mut self) -> Option<PacketBuf> {
        self.pool.alloc()
    }
    fn free(&mut self, buf: PacketBuf) {
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
    fn inject_and_capture() {
        let (mut nic, wire) = FakeNic::new([2, 0, 0, 0, 0, 2], 2);
        let mut qs = nic.take_queues();
        wire.inject(1, &[1, 2, 3]);
        let mut rx = Vec::new();
        assert_eq!(qs[0].rx_burst(&mut rx, 8), 0);
        assert_eq!(qs[1].rx_burst(&mut rx, 8), 1);
        assert_eq!(rx[0].data(), &[1, 2, 3]);
        // Echo it back.
        assert_eq!(qs[1].tx_burst(&mut rx), 1);
        assert_eq!(wire.take_sent(1), vec![vec![1, 2, 3]]);
        assert!(wire.take_sent(0).is_empty());
    }
}
