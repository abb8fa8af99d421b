//! The NIC abstraction every driver implements: a device reports its MAC, link and offloads
//! and hands out its queue pairs, one per core; each [`QueuePair`] receives and transmits
//! bursts of [`PacketBuf`]s without locks and owns the buffer pool its packets come from.

use crate::buf::PacketBuf;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// Offloads a device can do for us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// The device checksums outgoing TCP/UDP.
    pub tx_checksum: bool,
    /// The device validates incoming TCP/UDP checksums.
    pub rx_checksum: bool,
    /// The device spreads flows over queues by hash (RSS, or its own steering).
    pub rss: bool,
    /// ... with the Toeplitz hash, key and indirection table the driver configured
    /// (VIRTIO_NET_F_RSS: `ferrix_abi::rss`), so a flow's queue is known in advance.
    pub rss_toeplitz: bool,
}

/// What a NIC is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NicInfo {
    pub mac: [u8; 6],
    pub link_up: bool,
    /// Queue pairs in use.
    pub queue_pairs: usize,
    pub offloads: Offloads,
    /// Largest frame (without FCS) the device takes.
    pub max_frame: usize,
}

/// Per-queue counters (single writer: the owning core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Received frames dropped by the driver (too long, no buffer to refill, ...).
    pub rx_dropped: u64,
    /// Transmits refused because the ring was full.
    pub tx_ring_full: u64,
    /// Buffers of another queue's pool handed to this queue (leaked; a bug in the caller).
    pub foreign_buffers: u64,
    /// Used-ring entries the device got wrong (a descriptor not in flight, a length beyond
    /// the buffer): skipped, the buffer (if any) dropped.
    pub device_errors: u64,
}

impl QueueStats {
    /// Adds another queue's counters.
    pub fn merge(&mut self, o: &QueueStats) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.rx_dropped += o.rx_dropped;
        self.tx_ring_full += o.tx_ring_full;
        self.foreign_buffers += o.foreign_buffers;
        self.device_errors += o.device_errors;
    }
}

/// One RX/TX queue pair, owned by one core.
pub trait QueuePair: Send {
    /// Whether received packets are waiting (a cheap peek that takes nothing: the scheduler of
    /// another core asks it to decide whether this core needs an interrupt).
    fn rx_pending(&self) -> bool;
    /// Appends up to `max` received packets to `out`; returns how many.
    fn rx_burst(&mut self, out: &mut Vec<PacketBuf>, max: usize) -> usize;
    /// Queues packets from the front of `pkts` for transmission, removing those it took;
    /// returns how many. Packets left in `pkts` did not fit (ring full): retry or free them.
    fn tx_burst(&mut self, pkts: &mut Vec<PacketBuf>) -> usize;
    /// A fresh buffer from this queue's pool (for building a packet to send).
    fn alloc(&mut self) -> Option<PacketBuf>;
    /// Gives a buffer back (a received packet that is done, or an unsent one).
    fn free(&mut self, buf: PacketBuf);
    /// This queue's counters.
    fn stats(&self) -> QueueStats;
    /// Index of the queue pair on its device.
    fn index(&self) -> usize;
}

/// A network device.
pub trait Nic {
    /// Identity and capabilities.
    fn info(&self) -> NicInfo;
    /// Takes the queue pairs (once; later calls return an empty vector).
    fn take_queues(&mut self) -> Vec<Box<dyn QueuePair>>;
}
