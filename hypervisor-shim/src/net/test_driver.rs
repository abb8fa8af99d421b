//! A minimal virtio-net driver for device tests: negotiates features through the MMIO
//! registers, lays out split rings in a real `GuestMemoryMmap`, posts RX buffers and TX
//! frames, reads the used rings back. Also a socketpair backend and a counting interrupt.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::backend::{Backend, nonblocking};
use super::device::{DeviceConfig, Interrupt, NetDevice};
use super::header::NET_HDR_LEN;
use super::rss::MICROSOFT_RSS_KEY;
use crate::hypercall::GuestMem;
use crate::memory::GuestRam;
use crate::virtio::mmio::*;
use crate::virtio::queue::{VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use crate::virtio::{STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK};

/// Counts interrupts.
#[derive(Default)]
pub struct CountIrq(pub AtomicU64);

impl Interrupt for CountIrq {
    fn trigger(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountIrq {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A backend whose other end is held by the test.
pub struct PairBackend(pub UnixDatagram);

impl PairBackend {
    pub fn new() -> (Self, UnixDatagram) {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (PairBackend(a), b)
    }
}

impl Backend for PairBackend {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.0.send(frame).map(|_| ())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        nonblocking(self.0.recv(buf))
    }
    fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

pub const QUEUE_SIZE: u16 = 16;
const RINGS: u64 = 0x10_0000;
const BUFFERS: u64 = 0x100_0000;
pub const RAM: u64 = 32 << 20;

#[derive(Clone, Default)]
struct DriverQueue {
    desc: u64,
    avail: u64,
    used: u64,
    avail_idx: u16,
    used_seen: u16,
    next_desc: u16,
    /// Buffer address of each descriptor index.
    bufs: Vec<u64>,
}

/// The test driver.
pub struct TestDriver {
    pub dev: Arc<NetDevice>,
    pub mem: Arc<GuestRam>,
    pub irq: Arc<CountIrq>,
    queues: Vec<DriverQueue>,
    next_buf: u64,
}

pub fn device_config(pairs: u16) -> DeviceConfig {
    DeviceConfig {
        mac: [0x52, 0x54, 0, 0, 0, pairs as u8],
        pairs,
        rss_key: MICROSOFT_RSS_KEY.to_vec(),
    }
}

impl TestDriver {
    /// A device with `cfg` over fresh guest memory (not yet initialised by the driver).
    pub fn new(cfg: DeviceConfig) -> Self {
        let mem = Arc::new(GuestRam::new(RAM).unwrap());
        let irq = Arc::new(CountIrq::default());
        let dev = NetDevice::new(mem.clone(), cfg, irq.clone()).unwrap();
        let n = dev.num_queues();
        TestDriver {
            dev: Arc::new(dev),
            mem,
            irq,
            queues: vec![DriverQueue::default(); n],
            next_buf: BUFFERS,
        }
    }

    pub fn r(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.mmio_read(off, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn w(&self, off: u64, v: u32) {
        self.dev.mmio_write(off, &v.to_le_bytes());
    }

    /// Resets, negotiates `wanted & offered` and sets every queue up; returns the features.
    pub fn init(&mut self, wanted: u64) -> u64 {
        self.w(REG_STATUS, 0);
        self.w(REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        self.w(REG_DEVICE_FEATURES_SEL, 0);
        let lo = u64::from(self.r(REG_DEVICE_FEATURES));
        self.w(REG_DEVICE_FEATURES_SEL, 1);
        let hi = u64::from(self.r(REG_DEVICE_FEATURES));
        let features = ((hi << 32) | lo) & wanted;
        self.w(REG_DRIVER_FEATURES_SEL, 0);
        self.w(REG_DRIVER_FEATURES, features as u32);
        self.w(REG_DRIVER_FEATURES_SEL, 1);
        self.w(REG_DRIVER_FEATURES, (features >> 32) as u32);
        self.w(
            REG_STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        assert_ne!(
            self.r(REG_STATUS) & STATUS_FEATURES_OK,
            0,
            "features refused"
        );
        for q in 0..self.queues.len() {
            let base = RINGS + q as u64 * 0x4000;
            self.queues[q] = DriverQueue {
                desc: base,
                avail: base + 0x1000,
                used: base + 0x2000,
                bufs: vec![0; usize::from(QUEUE_SIZE)],
                ..Default::default()
            };
            self.setup_queue(q as u32, QUEUE_SIZE, base, base + 0x1000, base + 0x2000);
        }
        self.w(
            REG_STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
        features
    }

    pub fn setup_queue(&self, q: u32, size: u16, desc: u64, avail: u64, used: u64) {
        self.w(REG_QUEUE_SEL, q);
        assert_eq!(self.r(REG_QUEUE_NUM_MAX), 256);
        self.w(REG_QUEUE_NUM, u32::from(size));
        self.w(REG_QUEUE_DESC_LOW, desc as u32);
        self.w(REG_QUEUE_DESC_HIGH, (desc >> 32) as u32);
        self.w(REG_QUEUE_DRIVER_LOW, avail as u32);
        self.w(REG_QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
        self.w(REG_QUEUE_DEVICE_LOW, used as u32);
        self.w(REG_QUEUE_DEVICE_HIGH, (used >> 32) as u32);
        self.w(REG_QUEUE_READY, 1);
    }

    fn alloc(&mut self, len: u64) -> u64 {
        let a = self.next_buf;
        self.next_buf += len.next_multiple_of(64);
        assert!(self.next_buf < RAM);
        a
    }

    /// Writes raw descriptor `i` of queue `q`.
    pub fn put_desc(&mut self, q: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        let dq = &mut self.queues[q];
        assert!(self.mem.write(dq.desc + 16 * u64::from(i), &b));
        if let Some(slot) = dq.bufs.get_mut(usize::from(i)) {
            *slot = addr;
        }
    }

    /// Publishes head `head` in queue `q`'s available ring.
    pub fn publish(&mut self, q: usize, head: u16) {
        let dq = &mut self.queues[q];
        let slot = u64::from(dq.avail_idx % QUEUE_SIZE);
        assert!(self.mem.write(dq.avail + 4 + 2 * slot, &head.to_le_bytes()));
        dq.avail_idx = dq.avail_idx.wrapping_add(1);
        assert!(self.mem.write(dq.avail + 2, &dq.avail_idx.to_le_bytes()));
    }

    fn take_desc(&mut self, q: usize) -> u16 {
        let dq = &mut self.queues[q];
        let i = dq.next_desc % QUEUE_SIZE;
        dq.next_desc = dq.next_desc.wrapping_add(1);
        i
    }

    /// Posts one device-writable buffer of `len` bytes to RX queue `q`.
    pub fn post_rx(&mut self, q: usize, len: u32) {
        let addr = self.alloc(u64::from(len));
        let i = self.take_desc(q);
        self.put_desc(q, i, addr, len, VIRTQ_DESC_F_WRITE, 0);
        self.publish(q, i);
    }

    /// Posts `frame` (after a zero header, split over two descriptors) to TX queue `q` and
    /// notifies through the QueueNotify register.
    pub fn send(&mut self, q: usize, frame: &[u8]) {
        let hdr = self.alloc(NET_HDR_LEN as u64);
        let data = self.alloc(frame.len() as u64);
        assert!(self.mem.write(hdr, &[0u8; NET_HDR_LEN]) && self.mem.write(data, frame));
        let (i, j) = (self.take_desc(q), self.take_desc(q));
        self.put_desc(q, i, hdr, NET_HDR_LEN as u32, VIRTQ_DESC_F_NEXT, j);
        self.put_desc(q, j, data, frame.len() as u32, 0, 0);
        self.publish(q, i);
        self.w(REG_QUEUE_NOTIFY, q as u32);
    }

    /// Sends a control command and returns the used length and ack byte (once processed).
    pub fn post_ctrl(&mut self, q: usize, cmd: &[u8]) -> u64 {
        let c = self.alloc(cmd.len() as u64);
        let ack = self.alloc(1);
        assert!(self.mem.write(c, cmd) && self.mem.write(ack, &[0xee]));
        let (i, j) = (self.take_desc(q), self.take_desc(q));
        self.put_desc(q, i, c, cmd.len() as u32, VIRTQ_DESC_F_NEXT, j);
        self.put_desc(q, j, ack, 1, VIRTQ_DESC_F_WRITE, 0);
        self.publish(q, i);
        self.w(REG_QUEUE_NOTIFY, q as u32);
        ack
    }

    pub fn byte(&self, gpa: u64) -> u8 {
        let mut b = [0u8; 1];
        assert!(self.mem.read(gpa, &mut b));
        b[0]
    }

    /// New used entries `(id, len)` of queue `q`.
    pub fn used(&mut self, q: usize) -> Vec<(u32, u32)> {
        let dq = &mut self.queues[q];
        let mut idx = [0u8; 2];
        assert!(self.mem.read(dq.used + 2, &mut idx));
        let idx = u16::from_le_bytes(idx);
        let mut out = Vec::new();
        while dq.used_seen != idx {
            let slot = u64::from(dq.used_seen % QUEUE_SIZE);
            let mut e = [0u8; 8];
            assert!(self.mem.read(dq.used + 4 + 8 * slot, &mut e));
            out.push((
                u32::from_le_bytes(e[0..4].try_into().unwrap()),
                u32::from_le_bytes(e[4..8].try_into().unwrap()),
            ));
            dq.used_seen = dq.used_seen.wrapping_add(1);
        }
        out
    }

    /// Frames received on RX queue `q` since the last call: (header, frame).
    pub fn received(&mut self, q: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let used = self.used(q);
        used.into_iter()
            .map(|(id, len)| {
                let addr = self.queues[q].bufs[id as usize];
                let mut b = vec![0u8; len as usize];
                assert!(self.mem.read(addr, &mut b));
                let frame = b.split_off(NET_HDR_LEN);
                (b, frame)
            })
            .collect()
    }
}
