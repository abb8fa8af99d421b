//! A split virtqueue (virtio 1.x, 2.7) for the data path: one descriptor per buffer, so a
//! descriptor index is the buffer's token and the descriptor table never needs chaining.
//!
//! Why not `virtio_drivers::queue::VirtQueue`: that queue serves any device (chains, indirect
//! descriptors, a shadow table, `Hal::share` per buffer) and costs a few hundred instructions
//! per add and per pop; a NIC queue posts and reaps single buffers whose device address it
//! already knows. Here a post is a descriptor store and an avail-ring store, a reap is a
//! used-ring load; the avail index is published once per batch.
//!
//! The device is not trusted: a used element naming a descriptor that is not in flight, or a
//! length beyond what was posted, is counted and skipped (never a panic, never a buffer handed
//! out twice).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering, fence};
use virtio_drivers::transport::Transport;
use virtio_drivers::{BufferDirection, Hal};

/// `VIRTQ_DESC_F_WRITE`: the device writes the buffer.
const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver polls; no interrupt needed.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device polls; no notification needed.
const USED_F_NO_NOTIFY: u16 = 1;
/// The legacy layout aligns the used ring to this (it also suits modern devices).
const PAGE: usize = 4096;

/// Why a queue could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The device already has this queue set up.
    AlreadyUsed,
    /// The device's queues are smaller than asked (`max` entries), or the size is not a power
    /// of two.
    Size { max: u32 },
    /// No DMA memory for the rings.
    NoMemory,
}

#[repr(C)]
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// Where the three rings of a queue of `size` entries live, relative to its start (the legacy
/// layout: descriptors, available ring, used ring on the next page boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub avail: usize,
    pub used: usize,
    pub bytes: usize,
}

impl Layout {
    pub const fn of(size: usize) -> Layout {
        let avail = 16 * size;
        let avail_end = avail + 2 * (size + 3); // flags, idx, ring, used_event
        let used = avail_end.div_ceil(PAGE) * PAGE;
        let used_end = used + 6 + 8 * size; // flags, idx, ring, avail_event
        Layout {
            avail,
            used,
            bytes: used_end.div_ceil(PAGE) * PAGE,
        }
    }
}

/// A split virtqueue of `size` descriptors, each carrying one buffer of type `T` while the
/// device holds it. The rings are never freed: the device may use them until it is reset, and
/// ferrix does not tear NIC queues down.
pub struct SplitQueue<T> {
    index: u16,
    size: u16,
    /// Start of the rings (see [`Layout`]).
    base: NonNull<u8>,
    layout: Layout,
    /// What each descriptor carries while in flight, with the length posted.
    slots: alloc::vec::Vec<Option<(T, u32)>>,
    /// Free descriptor indices (a stack).
    free: alloc::vec::Vec<u16>,
    /// Our copy of the available index (published by [`SplitQueue::publish`]).
    avail_idx: u16,
    /// The available index last published.
    published: u16,
    /// The next used element to read.
    last_used: u16,
    /// Used elements the device got wrong (unknown descriptor, length beyond the buffer).
    pub bad_used: u64,
}

// SAFETY: the rings are memory this queue alone owns (allocated in `new`, shared only with the
// device); the queue moves between cores but is never used by two at once.
unsafe impl<T: Send> Send for SplitQueue<T> {}

impl<T> SplitQueue<T> {
    /// Allocates the rings of queue `index` (`size` entries, a power of two) with `H` and
    /// hands them to the device. Polling: asks the device not to interrupt.
    pub fn new<H: Hal, Tr: Transport>(
        transport: &mut Tr,
        index: u16,
        size: u16,
    ) -> Result<SplitQueue<T>, QueueError> {
        if transport.queue_used(index) {
            return Err(QueueError::AlreadyUsed);
        }
        let max = transport.max_queue_size(index);
        if !size.is_power_of_two() || max < u32::from(size) {
            return Err(QueueError::Size { max });
        }
        let layout = Layout::of(usize::from(size));
        let (phys, base) = H::dma_alloc(layout.bytes / PAGE, BufferDirection::Both);
        if phys == 0 {
            return Err(QueueError::NoMemory);
        }
        let q = SplitQueue {
            index,
            size,
            base,
            layout,
            slots: (0..size).map(|_| None).collect(),
            free: (0..size).rev().collect(),
            avail_idx: 0,
            published: 0,
            last_used: 0,
            bad_used: 0,
        };
        // Descriptors start zeroed (Hal::dma_alloc zeroes); only the avail flags need a value.
        q.avail_flags()
            .store(AVAIL_F_NO_INTERRUPT, Ordering::Relaxed);
        transport.queue_set(
            index,
            u32::from(size),
            phys,
            phys + layout.avail as u64,
            phys + layout.used as u64,
        );
        Ok(q)
    }

    /// The queue's number on the device.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Descriptors free for [`SplitQueue::push`].
    #[inline]
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    #[inline]
    fn word(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: offsets are 2-aligned u16 fields inside the rings (`Layout`), alive as long as
        // the queue; atomics because the device writes them concurrently.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU16>() }
    }
    fn avail_flags(&self) -> &AtomicU16 {
        self.word(self.layout.avail)
    }
    #[inline]
    fn avail_idx_word(&self) -> &AtomicU16 {
        self.word(self.layout.avail + 2)
    }
    #[inline]
    fn avail_ring(&self, i: u16) -> &AtomicU16 {
        self.word(self.layout.avail + 4 + 2 * usize::from(i & (self.size - 1)))
    }
    #[inline]
    fn used_flags(&self) -> &AtomicU16 {
        self.word(self.layout.used)
    }
    #[inline]
    fn used_idx(&self) -> &AtomicU16 {
        self.word(self.layout.used + 2)
    }

    /// Posts a buffer of `len` bytes at device address `addr` (device-writable if `write`)
    /// carrying `item`; visible to the device after [`SplitQueue::publish`]. Gives `item`
    /// back when no descriptor is free.
    #[inline]
    pub fn push(&mut self, item: T, addr: u64, len: u32, write: bool) -> Result<(), T> {
        let Some(id) = self.free.pop() else {
            return Err(item);
        };
        let desc = Descriptor {
            addr,
            len,
            flags: if write { DESC_F_WRITE } else { 0 },
            next: 0,
        };
        // SAFETY: id < size (the free stack holds no other), so this is a descriptor of the
        // table; it is free, so not in the available ring: the device does not read it now.
        unsafe {
            self.base
                .as_ptr()
                .cast::<Descriptor>()
                .add(usize::from(id))
                .write_volatile(desc)
        };
        self.avail_ring(self.avail_idx).store(id, Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.slots[usize::from(id)] = Some((item, len));
        Ok(())
    }

    /// Makes the pushed buffers visible to the device; true if it wants a notification
    /// (the caller then notifies the transport).
    #[inline]
    pub fn publish(&mut self) -> bool {
        if self.avail_idx == self.published {
            return false;
        }
        // Release: descriptors and ring entries are written before the index.
        self.avail_idx_word()
            .store(self.avail_idx, Ordering::Release);
        self.published = self.avail_idx;
        // The device's flag is read after our index is visible (virtio 2.7.10: a full barrier
        // between the two, or a notification could be missed).
        fence(Ordering::SeqCst);
        self.used_flags().load(Ordering::Relaxed) & USED_F_NO_NOTIFY == 0
    }

    /// Whether the device has returned a buffer.
    #[inline]
    pub fn has_used(&self) -> bool {
        self.used_idx().load(Ordering::Acquire) != self.last_used
    }

    /// How many used elements the device has written that [`SplitQueue::pop_ready`] has not
    /// taken yet (read once per burst).
    #[inline]
    pub fn ready(&self) -> u16 {
        self.used_idx()
            .load(Ordering::Acquire)
            .wrapping_sub(self.last_used)
    }

    /// The next buffer the device returned, with the bytes it wrote (0 for device-read
    /// buffers), or None. Bad used elements are counted in `bad_used` and skipped.
    #[inline]
    pub fn pop(&mut self) -> Option<(T, u32)> {
        let mut ready = self.ready();
        while ready > 0 {
            ready -= 1;
            if let Some(x) = self.pop_ready() {
                return Some(x);
            }
        }
        None
    }

    /// Takes the next used element, which the caller knows is there ([`SplitQueue::ready`]
    /// said so); None if the device got it wrong (counted in `bad_used`).
    #[inline]
    pub fn pop_ready(&mut self) -> Option<(T, u32)> {
        let elem = self.layout.used + 4 + 8 * usize::from(self.last_used & (self.size - 1));
        self.last_used = self.last_used.wrapping_add(1);
        // SAFETY: elem is a 4-aligned used element inside the ring (index masked to its size),
        // written by the device before the used index the caller loaded with Acquire (`ready`).
        let (id, len) = unsafe {
            let p = self.base.as_ptr().add(elem).cast::<u32>();
            (p.read_volatile(), p.add(1).read_volatile())
        };
        // An id the device made up, or one not in flight (a duplicate), is refused.
        let Some((item, posted)) = self.slots.get_mut(id as usize).and_then(Option::take) else {
            self.bad_used += 1;
            return None;
        };
        self.free.push(id as u16);
        if len > posted {
            self.bad_used += 1;
            return Some((item, 0));
        }
        Some((item, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_layout_of_256() {
        let l = Layout::of(256);
        assert_eq!(l.avail, 4096);
        assert_eq!(l.used, 8192);
        assert_eq!(l.bytes, 3 * 4096);
    }

    #[test]
    fn small_queue_fits_one_page_plus_used() {
        let l = Layout::of(16);
        assert_eq!(l.avail, 256);
        assert_eq!(l.used, 4096);
        assert_eq!(l.bytes, 8192);
    }

    use crate::sim::{self, HeapHal, Ring};

    /// Queue 0 of a simulated device, with the device side; notifications on (the simulated
    /// device turns them off when a queue is set up).
    fn queue(size: u16) -> (SplitQueue<u32>, Ring) {
        let (mut t, wire) = sim::device([2, 0, 0, 0, 0, 1]);
        let q = SplitQueue::new::<HeapHal, _>(&mut t, 0, size).unwrap();
        let d = wire.ring(0).unwrap();
        d.set_no_notify(false);
        (q, d)
    }

    #[test]
    fn rings_are_handed_to_the_device_in_the_legacy_layout() {
        let (mut t, wire) = sim::device([2, 0, 0, 0, 0, 1]);
        let _q = SplitQueue::<u32>::new::<HeapHal, _>(&mut t, 1, 256).unwrap();
        let (size, desc, driver, device) = wire.ring(1).unwrap().addresses();
        assert_eq!(size, 256);
        assert_eq!(desc % 4096, 0);
        assert_eq!(driver - desc, 4096);
        assert_eq!(device - desc, 8192);
        assert_eq!(
            SplitQueue::<u32>::new::<HeapHal, _>(&mut t, 1, 256).err(),
            Some(QueueError::AlreadyUsed)
        );
        assert_eq!(
            SplitQueue::<u32>::new::<HeapHal, _>(&mut t, 2, 512).err(),
            Some(QueueError::Size { max: 256 })
        );
        assert_eq!(
            SplitQueue::<u32>::new::<HeapHal, _>(&mut t, 2, 100).err(),
            Some(QueueError::Size { max: 256 })
        );
    }

    #[test]
    fn buffers_round_trip_in_used_order_with_lengths() {
        let (mut q, mut d) = queue(16);
        assert_eq!(d.avail_flags(), AVAIL_F_NO_INTERRUPT);
        for i in 0..4u32 {
            q.push(i, 0x1000 * u64::from(i + 1), 100 + i, i % 2 == 0)
                .unwrap();
        }
        assert!(d.take().is_none(), "visible before publish");
        assert!(q.publish());
        assert!(!q.publish(), "nothing new to publish");
        let mut got = Vec::new();
        while let Some(x) = d.take() {
            got.push(x);
        }
        assert_eq!(got.len(), 4);
        for (i, (_, addr, len, flags)) in got.iter().enumerate() {
            assert_eq!(*addr, 0x1000 * (i as u64 + 1));
            assert_eq!(*len, 100 + i as u32);
            assert_eq!(*flags, if i % 2 == 0 { DESC_F_WRITE } else { 0 });
        }
        assert!(!q.has_used());
        // The device completes them out of order.
        d.give(u32::from(got[2].0), 7);
        d.give(u32::from(got[0].0), 0);
        assert!(q.has_used());
        assert_eq!(q.pop(), Some((2, 7)));
        assert_eq!(q.pop(), Some((0, 0)));
        assert_eq!(q.pop(), None);
        assert_eq!(q.free_descriptors(), 14);
    }

    #[test]
    fn no_notify_is_honoured() {
        let (mut q, d) = queue(16);
        d.set_no_notify(true);
        q.push(1, 0x1000, 10, false).unwrap();
        assert!(!q.publish());
        d.set_no_notify(false);
        q.push(2, 0x2000, 10, false).unwrap();
        assert!(q.publish());
    }

    #[test]
    fn full_queue_gives_the_item_back() {
        let (mut q, _d) = queue(16);
        for i in 0..16 {
            q.push(i, 0x1000, 10, true).unwrap();
        }
        assert_eq!(q.push(99, 0x1000, 10, true), Err(99));
    }

    #[test]
    fn indices_wrap_around() {
        let (mut q, mut d) = queue(16);
        for round in 0..70_000u32 {
            q.push(round, 0x1000, 64, true).unwrap();
            q.publish();
            let (id, ..) = d.take().unwrap();
            d.give(u32::from(id), 60);
            assert_eq!(q.pop(), Some((round, 60)));
        }
        assert_eq!(q.free_descriptors(), 16);
        assert_eq!(q.bad_used, 0);
    }

    #[test]
    fn a_hostile_device_cannot_duplicate_or_invent_buffers() {
        let (mut q, mut d) = queue(16);
        q.push(10, 0x1000, 64, true).unwrap();
        q.push(11, 0x2000, 64, true).unwrap();
        q.publish();
        let (a, ..) = d.take().unwrap();
        let (b, ..) = d.take().unwrap();
        d.give(u32::from(a), 64);
        d.give(u32::from(a), 64); // again: not in flight any more
        d.give(999, 1); // no such descriptor
        d.give(u32::from(b), 65); // longer than posted
        assert_eq!(q.pop(), Some((10, 64)));
        assert_eq!(q.pop(), Some((11, 0)));
        assert_eq!(q.pop(), None);
        assert_eq!(q.bad_used, 3);
        assert_eq!(q.free_descriptors(), 16);
    }
}
