//! A simulated virtio-net device in host memory (feature `sim`, and in this crate's tests):
//! the real [`crate::virtio_net::VirtioNet`] driver runs against it on Linux, so the driver's
//! receive and transmit paths can be unit-tested and their instructions counted under
//! callgrind (`examples/virtio_instructions.rs`).
//!
//! The device offers VERSION_1, MAC, STATUS and CSUM (no control queue: one queue pair), reads
//! and writes the split rings the way a device does, and never notifies or interrupts: the
//! test drives it through [`SimWire`] (inject a frame on receive, collect transmitted frames)
//! and it sets `VIRTQ_USED_F_NO_NOTIFY` like a polling device. Memory is the host heap and a
//! "physical" address is the host address ([`HeapHal`]).

use crate::virtio_net::{NET_HDR_LEN, feature};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

const PAGE: usize = 4096;

/// DMA memory from the host heap (zeroed, page-aligned, never freed); device address = host
/// address.
pub struct HeapHal;

// SAFETY: dma_alloc returns fresh, zeroed, page-aligned memory of the size asked, valid
// forever (leaked); its device address is its host address, so share/unshare are identities.
unsafe impl Hal for HeapHal {
    fn dma_alloc(pages: usize, _d: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Ok(layout) = std::alloc::Layout::from_size_align(pages.max(1) * PAGE, PAGE) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        match NonNull::new(p) {
            Some(nn) => (p as PhysAddr, nn),
            None => (0, NonNull::dangling()),
        }
    }
    unsafe fn dma_dealloc(_p: PhysAddr, _v: NonNull<u8>, _pages: usize) -> i32 {
        0 // leaked: a simulation lives as long as its test
    }
    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }
    unsafe fn share(buffer: NonNull<[u8]>, _d: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }
    unsafe fn unshare(_p: PhysAddr, _b: NonNull<[u8]>, _d: BufferDirection) {}
}

/// DMA memory for the driver's buffer pools (`buffer_memory` of `VirtioNet::new`).
pub fn buffer_memory(bytes: usize) -> Option<(NonNull<u8>, u64)> {
    let (phys, p) = HeapHal::dma_alloc(bytes.div_ceil(PAGE), BufferDirection::Both);
    (phys != 0).then_some((p, phys))
}

/// The device side of one split virtqueue the driver set up (rings in host memory).
#[derive(Default, Clone, Copy)]
pub struct Ring {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// Next available entry the device will take.
    next_avail: u16,
    /// The device's used index.
    used_idx: u16,
}

#[derive(Default)]
struct State {
    features: u64,
    status: u8,
    rings: Vec<Option<Ring>>,
    notifications: u64,
}

/// The transport half: give it to `VirtioNet::new`.
pub struct SimTransport {
    state: Arc<Mutex<State>>,
    offered: u64,
    config: [u8; 12],
}

/// The test's half of the device.
#[derive(Clone)]
pub struct SimWire {
    state: Arc<Mutex<State>>,
}

/// A simulated one-queue-pair virtio-net device with MAC `mac`.
pub fn device(mac: [u8; 6]) -> (SimTransport, SimWire) {
    let state = Arc::new(Mutex::new(State {
        rings: alloc::vec![None; 3],
        ..State::default()
    }));
    let mut config = [0u8; 12];
    config[..6].copy_from_slice(&mac);
    config[6..8].copy_from_slice(&1u16.to_le_bytes()); // link up
    config[8..10].copy_from_slice(&1u16.to_le_bytes()); // max_virtqueue_pairs
    let offered = feature::VERSION_1 | feature::MAC | feature::STATUS | feature::CSUM;
    (
        SimTransport {
            state: state.clone(),
            offered,
            config,
        },
        SimWire { state },
    )
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn word(addr: u64) -> &'static AtomicU16 {
    // SAFETY: callers pass 2-aligned u16 fields of rings allocated by HeapHal (leaked, so
    // valid forever); the driver accesses them atomically too.
    unsafe { &*(addr as *const AtomicU16) }
}

impl Ring {
    /// The rings of a queue of `size` entries at these (host) addresses, as the driver gave
    /// them to the transport.
    pub fn new(size: u16, desc: u64, avail: u64, used: u64) -> Ring {
        Ring {
            size,
            desc,
            avail,
            used,
            ..Ring::default()
        }
    }

    /// Where the driver put the rings: (size, descriptors, driver area, device area).
    pub fn addresses(&self) -> (u16, u64, u64, u64) {
        (self.size, self.desc, self.avail, self.used)
    }

    /// The driver's `avail.flags`.
    pub fn avail_flags(&self) -> u16 {
        word(self.avail).load(Ordering::Acquire)
    }

    /// Sets or clears `VIRTQ_USED_F_NO_NOTIFY`.
    pub fn set_no_notify(&self, on: bool) {
        word(self.used).store(u16::from(on), Ordering::Release);
    }

    /// Takes the next descriptor the driver made available: (id, address, length, flags).
    pub fn take(&mut self) -> Option<(u16, u64, u32, u16)> {
        if word(self.avail + 2).load(Ordering::Acquire) == self.next_avail {
            return None;
        }
        let slot = self.avail + 4 + 2 * u64::from(self.next_avail % self.size);
        let id = word(slot).load(Ordering::Relaxed) % self.size;
        self.next_avail = self.next_avail.wrapping_add(1);
        let d = self.desc + 16 * u64::from(id);
        // SAFETY: d is descriptor `id` (< size) of the table the driver handed over.
        let (addr, len, flags) = unsafe {
            (
                (d as *const u64).read_volatile(),
                ((d + 8) as *const u32).read_volatile(),
                ((d + 12) as *const u16).read_volatile(),
            )
        };
        Some((id, addr, len, flags))
    }

    /// Returns descriptor `id` to the driver with `len` bytes written (any id: a hostile
    /// device may lie).
    pub fn give(&mut self, id: u32, len: u32) {
        let e = self.used + 4 + 8 * u64::from(self.used_idx % self.size);
        // SAFETY: e is an element of the used ring the driver handed over.
        unsafe {
            (e as *mut u32).write_volatile(id);
            ((e + 4) as *mut u32).write_volatile(len);
        }
        self.used_idx = self.used_idx.wrapping_add(1);
        word(self.used + 2).store(self.used_idx, Ordering::Release);
    }
}

impl SimWire {
    /// The device side of queue `q` as the driver set it up (None: not set up).
    pub fn ring(&self, q: usize) -> Option<Ring> {
        lock(&self.state).rings.get(q).copied().flatten()
    }
    fn put(&self, q: usize, r: Ring) {
        if let Some(slot) = lock(&self.state).rings.get_mut(q) {
            *slot = Some(r);
        }
    }

    /// Delivers `frame` to the driver (receive queue 0) behind a zero virtio-net header.
    /// False if the driver has no receive buffer posted (the frame is dropped) or the frame
    /// does not fit the buffer.
    pub fn inject(&self, frame: &[u8]) -> bool {
        let Some(mut r) = self.ring(0) else {
            return false;
        };
        let Some((id, addr, len, _flags)) = r.take() else {
            return false;
        };
        let total = NET_HDR_LEN + frame.len();
        let ok = total <= len as usize;
        if ok {
            // SAFETY: the driver posted [addr, addr + len) as device-writable memory of its
            // buffer pool (host memory here) and total <= len.
            unsafe {
                core::ptr::write_bytes(addr as *mut u8, 0, NET_HDR_LEN);
                core::ptr::copy_nonoverlapping(
                    frame.as_ptr(),
                    (addr as *mut u8).add(NET_HDR_LEN),
                    frame.len(),
                );
            }
        }
        r.give(u32::from(id), if ok { total as u32 } else { 0 });
        self.put(0, r);
        ok
    }

    /// Takes every frame the driver queued for transmission (queue 1), without headers.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let Some(mut r) = self.ring(1) else {
            return out;
        };
        while let Some((id, addr, len, _flags)) = r.take() {
            let len = len as usize;
            let mut v = alloc::vec![0u8; len.saturating_sub(NET_HDR_LEN)];
            if len > NET_HDR_LEN {
                // SAFETY: the driver posted [addr, addr + len) as device-readable memory.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        (addr as *const u8).add(NET_HDR_LEN),
                        v.as_mut_ptr(),
                        v.len(),
                    )
                };
            }
            out.push(v);
            r.give(u32::from(id), 0);
        }
        self.put(1, r);
        out
    }

    /// Writes a used element of the device's choosing on queue `q` (a hostile device).
    pub fn give_raw(&self, q: usize, id: u32, len: u32) {
        if let Some(mut r) = self.ring(q) {
            r.give(id, len);
            self.put(q, r);
        }
    }

    /// The features the driver accepted.
    pub fn driver_features(&self) -> u64 {
        lock(&self.state).features
    }

    /// The device status the driver set last.
    pub fn status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(u32::from(lock(&self.state).status))
    }

    /// Notifications the driver sent (the device asks for none once running).
    pub fn notifications(&self) -> u64 {
        lock(&self.state).notifications
    }
}

impl Transport for SimTransport {
    fn device_type(&self) -> DeviceType {
        DeviceType::Network
    }
    fn read_device_features(&mut self) -> u64 {
        self.offered
    }
    fn write_driver_features(&mut self, f: u64) {
        lock(&self.state).features = f;
    }
    fn max_queue_size(&mut self, _q: u16) -> u32 {
        256
    }
    fn notify(&mut self, _q: u16) {
        lock(&self.state).notifications += 1;
    }
    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(u32::from(lock(&self.state).status))
    }
    fn set_status(&mut self, s: DeviceStatus) {
        lock(&self.state).status = s.bits() as u8;
    }
    fn set_guest_page_size(&mut self, _s: u32) {}
    fn requires_legacy_layout(&self) -> bool {
        false
    }
    fn queue_set(&mut self, q: u16, size: u32, desc: u64, driver: u64, device: u64) {
        let ring = Ring::new(size as u16, desc, driver, device);
        ring.set_no_notify(true); // a polling device: never wants notifications
        if let Some(slot) = lock(&self.state).rings.get_mut(usize::from(q)) {
            *slot = Some(ring);
        }
    }
    fn queue_unset(&mut self, q: u16) {
        if let Some(slot) = lock(&self.state).rings.get_mut(usize::from(q)) {
            *slot = None;
        }
    }
    fn queue_used(&mut self, q: u16) -> bool {
        lock(&self.state)
            .rings
            .get(usize::from(q))
            .is_some_and(Option::is_some)
    }
    fn ack_interrupt(&mut self) -> InterruptStatus {
        InterruptStatus::empty()
    }
    fn read_config_generation(&self) -> u32 {
        0
    }
    fn read_config_space<T: FromBytes + IntoBytes>(
        &self,
        offset: usize,
    ) -> virtio_drivers::Result<T> {
        self.config
            .get(offset..offset + size_of::<T>())
            .and_then(|b| T::read_from_bytes(b).ok())
            .ok_or(virtio_drivers::Error::ConfigSpaceTooSmall)
    }
    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        _offset: usize,
        _value: T,
    ) -> virtio_drivers::Result<()> {
        Err(virtio_drivers::Error::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::PacketBuf;
    use crate::nic::Nic;
    use crate::virtio_net::VirtioNet;

    fn nic() -> (Vec<alloc::boxed::Box<dyn crate::QueuePair>>, SimWire) {
        let (t, wire) = device([2, 0, 0, 0, 0, 9]);
        let mut nic = VirtioNet::new::<HeapHal, _>(t, 4, buffer_memory).unwrap();
        let info = nic.info();
        assert_eq!(info.mac, [2, 0, 0, 0, 0, 9]);
        assert_eq!(info.queue_pairs, 1);
        assert!(info.link_up && info.offloads.tx_checksum && !info.offloads.rss);
        // Everything offered was accepted (no control queue: no MQ/RSS asked), and the driver
        // finished initialisation.
        let offered = feature::VERSION_1 | feature::MAC | feature::STATUS | feature::CSUM;
        assert_eq!(wire.driver_features(), offered);
        assert!(wire.status().contains(DeviceStatus::DRIVER_OK));
        (nic.take_queues(), wire)
    }

    #[test]
    fn frames_go_both_ways_through_the_real_driver() {
        let (mut qs, wire) = nic();
        let q = &mut qs[0];
        assert!(!q.rx_pending());
        for i in 0..600u32 {
            let frame: Vec<u8> = (0..60 + i % 1400).map(|b| (b ^ i) as u8).collect();
            assert!(wire.inject(&frame), "frame {i}: no receive buffer");
            assert!(q.rx_pending());
            let mut rx = Vec::new();
            assert_eq!(q.rx_burst(&mut rx, 8), 1);
            assert_eq!(rx[0].data(), &frame[..]);
            // Echo it from the same buffer.
            let mut tx: Vec<PacketBuf> = rx;
            assert_eq!(q.tx_burst(&mut tx), 1);
            assert_eq!(wire.take_sent(), alloc::vec![frame]);
        }
        let s = q.stats();
        assert_eq!((s.rx_packets, s.tx_packets, s.device_errors), (600, 600, 0));
        assert_eq!(
            wire.notifications(),
            0,
            "the device asked for no notifications"
        );
    }

    #[test]
    fn a_hostile_device_is_counted_not_obeyed() {
        let (mut qs, wire) = nic();
        let q = &mut qs[0];
        wire.give_raw(0, 4096, 60); // no such descriptor
        assert!(wire.inject(&[0xab; 60]));
        let mut rx = Vec::new();
        assert_eq!(q.rx_burst(&mut rx, 8), 1);
        assert_eq!(q.stats().device_errors, 1);
        let mut tx = rx;
        q.tx_burst(&mut tx);
        assert_eq!(wire.take_sent().len(), 1);
        wire.give_raw(1, 0, 0); // a transmit completion already reclaimed... or never posted
        for _ in 0..300 {
            let mut b = alloc::vec![q.alloc().unwrap()];
            assert!(b[0].set_len(60));
            q.tx_burst(&mut b);
            wire.take_sent();
        }
        assert!(q.stats().device_errors >= 1);
        assert_eq!(q.stats().foreign_buffers, 0);
    }
}
