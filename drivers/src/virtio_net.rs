//! virtio-net on top of the `virtio-drivers` transports (MMIO or PCI) and our own split
//! virtqueues for the data path ([`crate::virtqueue`]; `virtio-drivers`' queue serves only the
//! control queue):
//! multi-queue (VIRTIO_NET_F_MQ, one RX/TX pair per core, enabled through the control queue)
//! with one packet per descriptor chain and the 12-byte `virtio_net_hdr_v1` (10 bytes on legacy
//! devices) in front of every frame. When the device offers VIRTIO_NET_F_RSS (QEMU `rss=on`),
//! the driver configures Toeplitz RSS over IPv4 TCP/UDP flows with the key and indirection
//! table of `ferrix_abi::rss` (the ferrix shim hashes the same way), so a flow's queue can be
//! computed in advance; otherwise the device steers by itself (VQ_PAIRS_SET). Without MQ there
//! is one queue pair and the caller steers in software.
//!
//! Buffers: each queue pair owns a [`BufPool`]; RX buffers are posted with the device writing
//! the header at `HEADROOM - 12` so the frame lands at [`HEADROOM`]; TX writes the header in the
//! packet's headroom. No copies.

use crate::buf::{BUF_SIZE, BufPool, HEADROOM, PacketBuf};
use crate::nic::{Nic, NicInfo, Offloads, QueuePair, QueueStats};
use crate::virtqueue::{QueueError, SplitQueue};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use virtio_drivers::Hal;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceStatus, DeviceType, Transport};

/// Descriptors per virtqueue.
pub const QUEUE_SIZE: usize = 256;
/// `virtio_net_hdr_v1` length (VIRTIO_F_VERSION_1: num_buffers is always present).
pub const NET_HDR_LEN: usize = 12;
/// Legacy `virtio_net_hdr` length (no VERSION_1, no MRG_RXBUF: no num_buffers field).
pub const LEGACY_NET_HDR_LEN: usize = 10;
/// Buffers per queue pair (RX ring + TX in flight + spare for the app).
pub const BUFFERS_PER_PAIR: usize = 2 * QUEUE_SIZE + 128;
/// RX buffers are reposted in batches of at least this many (one notification per batch).
pub const RX_REFILL_BATCH: usize = 32;
/// Completed TX buffers are reclaimed once fewer descriptors than this are free.
pub const TX_RECLAIM_BELOW: usize = 64;
/// Largest queue pair count ferrix asks for.
pub const MAX_PAIRS: usize = 64;

/// Feature bits (virtio 1.x, 5.1.3).
pub mod feature {
    pub const CSUM: u64 = 1 << 0;
    pub const GUEST_CSUM: u64 = 1 << 1;
    pub const MAC: u64 = 1 << 5;
    pub const STATUS: u64 = 1 << 16;
    pub const CTRL_VQ: u64 = 1 << 17;
    pub const MQ: u64 = 1 << 22;
    pub const RSS: u64 = 1 << 60;
    pub const VERSION_1: u64 = 1 << 32;
}

/// `virtio_net_hdr.flags` (5.1.6).
const HDR_F_NEEDS_CSUM: u8 = 1;
const HDR_F_DATA_VALID: u8 = 2;

/// Control queue: class MQ, commands VQ_PAIRS_SET and RSS_CONFIG (5.1.6.5.5, 5.1.6.5.7).
const CTRL_CLASS_MQ: u8 = 4;
const CTRL_MQ_VQ_PAIRS_SET: u8 = 0;
const CTRL_MQ_RSS_CONFIG: u8 = 1;
const CTRL_OK: u8 = 0;
/// Config space offsets.
const CFG_MAC: usize = 0;
const CFG_STATUS: usize = 6;
const CFG_MAX_PAIRS: usize = 8;
const CFG_RSS_MAX_KEY_SIZE: usize = 17;
const CFG_RSS_MAX_TABLE_LEN: usize = 18;
const CFG_SUPPORTED_HASH_TYPES: usize = 20;
/// `VIRTIO_NET_RSS_HASH_TYPE_*`: IPv4 addresses, and TCP / UDP over IPv4 with ports.
const HASH_TYPES_IPV4: u32 = (1 << 0) | (1 << 1) | (1 << 2);

/// The body of a `VIRTIO_NET_CTRL_MQ_RSS_CONFIG` command (5.1.6.5.7.1): Toeplitz over the
/// IPv4 (+ TCP/UDP ports) flow with `key`, an indirection table of `table_len` entries (a power
/// of two) spreading over `pairs` queue pairs (entry i -> pair i mod pairs, as the ferrix shim
/// does), unclassified traffic to pair 0, `pairs` transmit queues.
pub fn rss_config(hash_types: u32, table_len: u16, pairs: u16, key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + 2 * usize::from(table_len) + key.len());
    v.extend_from_slice(&hash_types.to_le_bytes());
    v.extend_from_slice(&(table_len - 1).to_le_bytes()); // indirection_table_mask
    v.extend_from_slice(&0u16.to_le_bytes()); // unclassified_queue
    for i in 0..table_len {
        v.extend_from_slice(&(i % pairs.max(1)).to_le_bytes());
    }
    v.extend_from_slice(&pairs.to_le_bytes()); // max_tx_vq
    v.push(key.len() as u8);
    v.extend_from_slice(key);
    v
}
const STATUS_LINK_UP: u16 = 1;

/// Why the device could not be brought up.
#[derive(Debug)]
pub enum VirtioNetError {
    /// Not a network device.
    WrongDevice(DeviceType),
    /// The device refused our features or lacks VERSION_1.
    Features(u64),
    /// The control virtqueue could not be created or used.
    Queue(virtio_drivers::Error),
    /// A data virtqueue could not be created.
    DataQueue(QueueError),
    /// The config space could not be read.
    Config(virtio_drivers::Error),
    /// The device refused VQ_PAIRS_SET.
    MqRefused(u8),
    /// No memory for packet buffers.
    NoBufferMemory,
}

/// The virtio-net device, before its queues are handed out.
pub struct VirtioNet {
    info: NicInfo,
    queues: Vec<Box<dyn QueuePair>>,
}

impl VirtioNet {
    /// Initialises the device behind `transport` with up to `want_pairs` queue pairs.
    /// `buffer_memory(bytes)` returns DMA-able memory (pointer and device address) for each
    /// pair's buffer pool.
    pub fn new<H, T>(
        mut transport: T,
        want_pairs: usize,
        mut buffer_memory: impl FnMut(usize) -> Option<(NonNull<u8>, u64)>,
    ) -> Result<VirtioNet, VirtioNetError>
    where
        H: Hal + 'static,
        T: Transport + Send + 'static,
    {
        if transport.device_type() != DeviceType::Network {
            return Err(VirtioNetError::WrongDevice(transport.device_type()));
        }
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let offered = transport.read_device_features();
        let wanted = feature::VERSION_1
            | feature::MAC
            | feature::STATUS
            | feature::CTRL_VQ
            | feature::MQ
            | feature::CSUM
            | feature::GUEST_CSUM
            | feature::RSS;
        let mut features = offered & wanted;
        if features & feature::CTRL_VQ == 0 {
            // MQ and RSS are configured through the control queue.
            features &= !(feature::MQ | feature::RSS);
        }
        let hdr_len = if features & feature::VERSION_1 != 0 {
            NET_HDR_LEN
        } else {
            LEGACY_NET_HDR_LEN
        };
        transport.write_driver_features(features);
        transport.set_status(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK,
        );
        if !transport.get_status().contains(DeviceStatus::FEATURES_OK) {
            return Err(VirtioNetError::Features(offered));
        }

        let mac: [u8; 6] = if features & feature::MAC != 0 {
            transport
                .read_config_space(CFG_MAC)
                .map_err(VirtioNetError::Config)?
        } else {
            [0x02, 0, 0, 0, 0, 1]
        };
        let link_up = features & feature::STATUS == 0
            || transport
                .read_config_space::<u16>(CFG_STATUS)
                .map_err(VirtioNetError::Config)?
                & STATUS_LINK_UP
                != 0;
        let max_pairs = if features & feature::MQ != 0 {
            usize::from(
                transport
                    .read_config_space::<u16>(CFG_MAX_PAIRS)
                    .map_err(VirtioNetError::Config)?,
            )
            .max(1)
        } else {
            1
        };
        let pairs = want_pairs.clamp(1, max_pairs.min(MAX_PAIRS));

        let mut rings = Vec::with_capacity(pairs);
        for i in 0..pairs {
            let rx = SplitQueue::new::<H, T>(&mut transport, (2 * i) as u16, QUEUE_SIZE as u16)
                .map_err(VirtioNetError::DataQueue)?;
            let tx = SplitQueue::new::<H, T>(&mut transport, (2 * i + 1) as u16, QUEUE_SIZE as u16)
                .map_err(VirtioNetError::DataQueue)?;
            rings.push((rx, tx));
        }
        let mut ctrl = if features & feature::CTRL_VQ != 0 {
            Some(
                VirtQueue::<H, 16>::new(&mut transport, (2 * max_pairs) as u16, false, false)
                    .map_err(VirtioNetError::Queue)?,
            )
        } else {
            None
        };
        transport.finish_init();

        // With RSS the device hashes each flow with our key and table; otherwise it steers by
        // itself (VQ_PAIRS_SET: "automatic receive steering").
        let mut rss = false;
        if pairs > 1
            && let Some(ctrl) = ctrl.as_mut()
        {
            let rss_body = if features & feature::RSS != 0 {
                let max_key = transport
                    .read_config_space::<u8>(CFG_RSS_MAX_KEY_SIZE)
                    .map_err(VirtioNetError::Config)?;
                let max_table = transport
                    .read_config_space::<u16>(CFG_RSS_MAX_TABLE_LEN)
                    .map_err(VirtioNetError::Config)?;
                let types = transport
                    .read_config_space::<u32>(CFG_SUPPORTED_HASH_TYPES)
                    .map_err(VirtioNetError::Config)?
                    & HASH_TYPES_IPV4;
                let key = ferrix_abi::rss::MICROSOFT_RSS_KEY;
                let table = (ferrix_abi::rss::INDIRECTION_ENTRIES as u16).min(max_table);
                // The table length must be a power of two, the key must fit.
                (table > 0 && usize::from(max_key) >= key.len() && types != 0).then(|| {
                    let table = 1u16 << (15 - table.leading_zeros());
                    rss_config(types, table, pairs as u16, &key)
                })
            } else {
                None
            };
            let (cmd, body) = match &rss_body {
                Some(b) => (CTRL_MQ_RSS_CONFIG, b.as_slice()),
                None => (CTRL_MQ_VQ_PAIRS_SET, &(pairs as u16).to_le_bytes()[..]),
            };
            let hdr = [CTRL_CLASS_MQ, cmd];
            let mut ack = [0xffu8];
            ctrl.add_notify_wait_pop(&[&hdr, body], &mut [&mut ack], &mut transport)
                .map_err(VirtioNetError::Queue)?;
            if ack[0] != CTRL_OK {
                return Err(VirtioNetError::MqRefused(ack[0]));
            }
            rss = rss_body.is_some();
        }

        let transport = Arc::new(spin::Mutex::new(transport));
        let mut queues: Vec<Box<dyn QueuePair>> = Vec::with_capacity(pairs);
        for (i, (rx, tx)) in rings.into_iter().enumerate() {
            let bytes = BUFFERS_PER_PAIR * BUF_SIZE;
            let (base, phys) = buffer_memory(bytes).ok_or(VirtioNetError::NoBufferMemory)?;
            // SAFETY: buffer_memory hands out fresh DMA memory of `bytes` bytes for this pool only.
            let pool = unsafe { BufPool::new(base, phys, BUFFERS_PER_PAIR, i as u32) };
            let mut q = VirtioQueuePair::<T> {
                index: i,
                hdr_len,
                tx_csum: features & feature::CSUM != 0,
                transport: transport.clone(),
                rx,
                tx,
                pool,
                stats: QueueStats::default(),
            };
            q.refill();
            queues.push(Box::new(q));
        }
        let offloads = Offloads {
            rss: features & feature::MQ != 0 && pairs > 1,
            rss_toeplitz: rss,
            tx_checksum: features & feature::CSUM != 0,
            rx_checksum: features & feature::GUEST_CSUM != 0,
        };
        Ok(VirtioNet {
            info: NicInfo {
                mac,
                link_up,
                queue_pairs: pairs,
                offloads,
                max_frame: 1514,
            },
            queues,
        })
    }
}

impl Nic for VirtioNet {
    fn info(&self) -> NicInfo {
        self.info
    }
    fn take_queues(&mut self) -> Vec<Box<dyn QueuePair>> {
        core::mem::take(&mut self.queues)
    }
}

struct VirtioQueuePair<T: Transport> {
    index: usize,
    /// Length of the virtio-net header in front of every frame.
    hdr_len: usize,
    /// VIRTIO_NET_F_CSUM negotiated: honour transmit checksum requests.
    tx_csum: bool,
    transport: Arc<spin::Mutex<T>>,
    /// Receive queue: each descriptor carries the parked buffer (pool token) posted under it.
    rx: SplitQueue<u32>,
    /// Transmit queue: each descriptor carries the parked buffer in flight under it.
    tx: SplitQueue<u32>,
    pool: BufPool,
    stats: QueueStats,
}

/// Where the device reads or writes a buffer: the header in the headroom, then the frame.
/// None if the headroom is too small for the header.
fn device_window(buf: &PacketBuf, hdr_len: usize) -> Option<(u64, u32)> {
    let start = buf.start().checked_sub(hdr_len)?;
    Some((buf.slot_phys() + start as u64, (hdr_len + buf.len()) as u32))
}

impl<T: Transport> VirtioQueuePair<T> {
    fn notify(&self, queue: u16) {
        self.transport.lock().notify(queue);
    }

    /// Posts free buffers to the RX ring once a batch of descriptors is free (the ring stays
    /// at least `QUEUE_SIZE - RX_REFILL_BATCH` full): one notification per batch.
    fn refill_batched(&mut self) {
        if self.rx.free_descriptors() >= RX_REFILL_BATCH {
            self.refill();
        }
    }

    /// Posts free buffers to the RX ring: the device writes the header at `HEADROOM -
    /// hdr_len` and the frame at [`HEADROOM`], up to the end of the slot.
    fn refill(&mut self) {
        let offset = (HEADROOM - self.hdr_len) as u64;
        let len = (BUF_SIZE - HEADROOM + self.hdr_len) as u32;
        while self.rx.free_descriptors() > 0 {
            let Some(token) = self.pool.alloc_parked() else {
                break;
            };
            let addr = self.pool.slot_phys_of(token) + offset;
            if let Err(token) = self.rx.push(token, addr, len, true) {
                // SAFETY: the token was taken just above and was not posted.
                unsafe { self.pool.release(token) };
                break;
            }
        }
        if self.rx.publish() {
            self.notify(self.rx.index());
        }
    }

    /// Frees the buffers of completed transmissions.
    fn reclaim_tx(&mut self) {
        for _ in 0..self.tx.ready() {
            if let Some((token, _)) = self.tx.pop_ready() {
                // SAFETY: the TX ring only carries tokens parked by `tx_burst`, each under one
                // descriptor, and pop_ready hands each back once.
                unsafe { self.pool.release(token) };
            }
        }
    }
}

impl<T: Transport + Send> QueuePair for VirtioQueuePair<T> {
    fn rx_pending(&self) -> bool {
        self.rx.has_used()
    }

    fn rx_burst(&mut self, out: &mut Vec<PacketBuf>, max: usize) -> usize {
        let mut n = 0;
        let ready = usize::from(self.rx.ready());
        for _ in 0..ready {
            if n == max {
                break;
            }
            let Some((token, len)) = self.rx.pop_ready() else {
                continue; // a bad used element (counted)
            };
            // SAFETY: the RX ring only carries tokens parked by `refill`, each under one
            // descriptor, and pop_ready hands each back once.
            let mut buf = unsafe { self.pool.unpark(token) };
            let len = len as usize;
            if len > self.hdr_len {
                let flags = buf.slot_mut()[HEADROOM - self.hdr_len];
                buf.set_l4_checksum_ok(flags & (HDR_F_NEEDS_CSUM | HDR_F_DATA_VALID) != 0);
                buf.set_window(HEADROOM, len - self.hdr_len);
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += buf.len() as u64;
                out.push(buf);
                n += 1;
            } else {
                self.stats.rx_dropped += 1;
                let _ = self.pool.free(buf);
            }
        }
        self.refill_batched();
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<PacketBuf>) -> usize {
        if self.tx.free_descriptors() < TX_RECLAIM_BELOW.max(pkts.len()) {
            self.reclaim_tx();
        }
        let mut sent = 0;
        let room = pkts.len().min(self.tx.free_descriptors());
        self.stats.tx_ring_full += (pkts.len() - room) as u64;
        for mut buf in pkts.drain(..room) {
            let len = buf.len();
            let checksum_request = if self.tx_csum {
                buf.tx_checksum()
            } else {
                None
            };
            let Some((addr, dev_len)) = device_window(&buf, self.hdr_len) else {
                self.stats.tx_ring_full += 1; // no headroom for the header: cannot send
                let _ = self.pool.free(buf);
                continue;
            };
            let hdr_at = buf.start() - self.hdr_len;
            let hdr = &mut buf.slot_mut()[hdr_at..];
            // Fixed-size stores: a `fill` of a runtime length is a memset call on the hot path.
            match hdr.first_chunk_mut::<NET_HDR_LEN>() {
                Some(h) if self.hdr_len == NET_HDR_LEN => *h = [0; NET_HDR_LEN],
                _ => {
                    if let Some(h) = hdr.first_chunk_mut::<LEGACY_NET_HDR_LEN>() {
                        *h = [0; LEGACY_NET_HDR_LEN];
                    }
                }
            }
            if let Some((start, offset)) = checksum_request {
                hdr[0] = HDR_F_NEEDS_CSUM;
                hdr[6..8].copy_from_slice(&start.to_le_bytes());
                hdr[8..10].copy_from_slice(&offset.to_le_bytes());
            }
            let token = match self.pool.park(buf) {
                Ok(t) => t,
                Err(_foreign) => {
                    // Another pool's buffer: its slot cannot be returned from here (leaked).
                    self.stats.foreign_buffers += 1;
                    continue;
                }
            };
            match self.tx.push(token, addr, dev_len, false) {
                Ok(()) => {
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += len as u64;
                    sent += 1;
                }
                Err(token) => {
                    self.stats.tx_ring_full += 1;
                    // SAFETY: parked just above, never posted.
                    unsafe { self.pool.release(token) };
                }
            }
        }
        if self.tx.publish() {
            self.notify(self.tx.index());
        }
        sent
    }

    fn alloc(&mut self) -> Option<PacketBuf> {
        if self.pool.available() == 0 {
            self.reclaim_tx();
        }
        self.pool.alloc()
    }

    fn free(&mut self, buf: PacketBuf) {
        self.pool
            .free_or_count(buf, &mut self.stats.foreign_buffers);
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            device_errors: self.rx.bad_used + self.tx.bad_used,
            ..self.stats
        }
    }

    fn index(&self) -> usize {
        self.index
    }
}
