//! Split virtqueues (virtio 1.x §2.7) seen from the device: ring layout checks, taking
//! descriptor chains from the available ring, copying to and from their buffers, and
//! returning them through the used ring.
//!
//! Everything the guest wrote is hostile: every descriptor index, address and length is
//! checked (overflow-safe) against the queue size and guest RAM before a byte is touched, a
//! chain longer than the queue is a loop, and indirect descriptors (not offered) are refused.
//! Any such violation is a [`QueueError`]; the device model then marks itself broken.

use std::sync::atomic::{Ordering, fence};

use crate::hypercall::{GuestMem, checked_range};

/// Descriptor flag: the chain continues at `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable.
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds an indirect descriptor table (never offered here).
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available-ring flag: the driver does not want used-buffer interrupts.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Size of one descriptor table entry.
const DESC_SIZE: u64 = 16;
/// Size of one used ring element (`id: u32, len: u32`).
const USED_ELEM_SIZE: u64 = 8;

/// A guest (driver) error found while using a virtqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// A descriptor index at or above the queue size.
    #[error("descriptor index {0} out of range")]
    DescIndex(u16),
    /// The chain has more descriptors than the queue (a loop).
    #[error("descriptor chain longer than the queue (loop)")]
    Loop,
    /// A buffer outside guest RAM (or whose end overflows).
    #[error("buffer {addr:#x}+{len} outside guest RAM")]
    BadAddress {
        /// Guest-physical address.
        addr: u64,
        /// Length.
        len: u32,
    },
    /// VIRTQ_DESC_F_INDIRECT set although indirect descriptors were not offered.
    #[error("indirect descriptor (not offered)")]
    Indirect,
    /// The device had to write into a driver-read-only buffer.
    #[error("device-writable buffer expected, descriptor is read-only")]
    ReadOnly,
    /// Queue size, ring alignment or ring placement is invalid.
    #[error("invalid queue layout (size, alignment or rings outside guest RAM)")]
    BadLayout,
    /// The available index moved by more than the queue size.
    #[error("available index moved by {0}, more than the queue size")]
    BadAvailIdx(u16),
}

/// One descriptor table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc {
    /// Guest-physical buffer address.
    pub addr: u64,
    /// Buffer length.
    pub len: u32,
    /// `VIRTQ_DESC_F_*`.
    pub flags: u16,
    /// Next descriptor index when `VIRTQ_DESC_F_NEXT`.
    pub next: u16,
}

impl Desc {
    /// Whether the device may write this buffer.
    pub fn is_write(&self) -> bool {
        self.flags & VIRTQ_DESC_F_WRITE != 0
    }
}

/// A descriptor chain taken from the available ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Head descriptor index (the id returned in the used ring).
    pub head: u16,
    /// The descriptors in chain order, each already checked to lie inside guest RAM.
    pub descs: Vec<Desc>,
}

impl Chain {
    /// Total length of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.descs
            .iter()
            .filter(|d| d.is_write())
            .map(|d| u64::from(d.len))
            .sum()
    }

    /// Concatenates the driver-written (read-only) buffers, at most `max` bytes; `None` when
    /// they hold more than `max` bytes.
    pub fn read_all(&self, mem: &dyn GuestMem, max: usize) -> Result<Option<Vec<u8>>, QueueError> {
        let mut out = Vec::new();
        for d in self.descs.iter().filter(|d| !d.is_write()) {
            let len = d.len as usize;
            if out.len().saturating_add(len) > max {
                return Ok(None);
            }
            let start = out.len();
            out.resize(start + len, 0);
            if !mem.read(d.addr, &mut out[start..]) {
                return Err(QueueError::BadAddress {
                    addr: d.addr,
                    len: d.len,
                });
            }
        }
        Ok(Some(out))
    }

    /// Writes `data` across the chain's buffers, which must all be device-writable (an RX
    /// chain). Returns [`QueueError::ReadOnly`] for a read-only descriptor; the caller has
    /// checked that `data` fits ([`Chain::writable_len`]). Returns the bytes written.
    pub fn write_all(&self, mem: &dyn GuestMem, data: &[u8]) -> Result<u32, QueueError> {
        if self.descs.iter().any(|d| !d.is_write()) {
            return Err(QueueError::ReadOnly);
        }
        let mut rest = data;
        for d in &self.descs {
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(d.len as usize);
            if !mem.write(d.addr, &rest[..n]) {
                return Err(QueueError::BadAddress {
                    addr: d.addr,
                    len: d.len,
                });
            }
            rest = &rest[n..];
        }
        Ok((data.len() - rest.len()) as u32)
    }

    /// Writes `data` into the first device-writable buffer (a status byte, e.g. a control
    /// queue ack); [`QueueError::ReadOnly`] when the chain has none big enough.
    pub fn write_status(&self, mem: &dyn GuestMem, data: &[u8]) -> Result<u32, QueueError> {
        let d = self
            .descs
            .iter()
            .find(|d| d.is_write() && d.len as usize >= data.len())
            .ok_or(QueueError::ReadOnly)?;
        if !mem.write(d.addr, data) {
            return Err(QueueError::BadAddress {
                addr: d.addr,
                len: d.len,
            });
        }
        Ok(data.len() as u32)
    }
}

fn read_u16(mem: &dyn GuestMem, gpa: u64) -> Result<u16, QueueError> {
    let mut b = [0u8; 2];
    if mem.read(gpa, &mut b) {
        Ok(u16::from_le_bytes(b))
    } else {
        Err(QueueError::BadLayout)
    }
}

fn write_bytes(mem: &dyn GuestMem, gpa: u64, b: &[u8]) -> Result<(), QueueError> {
    if mem.write(gpa, b) {
        Ok(())
    } else {
        Err(QueueError::BadLayout)
    }
}

/// Device-side state of one split virtqueue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// QueueNum: number of descriptors (a power of two, at most the maximum).
    pub size: u16,
    /// QueueReady.
    pub ready: bool,
    /// QueueDesc: descriptor table address.
    pub desc: u64,
    /// QueueDriver: available ring address.
    pub driver: u64,
    /// QueueDevice: used ring address.
    pub device: u64,
    next_avail: u16,
    next_used: u16,
}

impl Queue {
    /// Checks size, alignment and that all three areas lie inside guest RAM of `mem_size`.
    pub fn check_layout(&self, mem_size: u64, max_size: u16) -> Result<(), QueueError> {
        let n = u64::from(self.size);
        let ok = self.size != 0
            && self.size <= max_size
            && self.size.is_power_of_two()
            && self.desc.is_multiple_of(16)
            && self.driver.is_multiple_of(2)
            && self.device.is_multiple_of(4)
            && checked_range(mem_size, self.desc, n * DESC_SIZE).is_some()
            && checked_range(mem_size, self.driver, 6 + 2 * n).is_some()
            && checked_range(mem_size, self.device, 6 + USED_ELEM_SIZE * n).is_some();
        if ok {
            Ok(())
        } else {
            Err(QueueError::BadLayout)
        }
    }

    /// Reads descriptor `index`, checking the index and the buffer range.
    fn desc(&self, mem: &dyn GuestMem, index: u16) -> Result<Desc, QueueError> {
        if index >= self.size {
            return Err(QueueError::DescIndex(index));
        }
        let mut b = [0u8; DESC_SIZE as usize];
        if !mem.read(self.desc + u64::from(index) * DESC_SIZE, &mut b) {
            return Err(QueueError::BadLayout);
        }
        let d = Desc {
            addr: u64::from_le_bytes(b[0..8].try_into().unwrap_or_default()),
            len: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
            flags: u16::from_le_bytes([b[12], b[13]]),
            next: u16::from_le_bytes([b[14], b[15]]),
        };
        if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
            return Err(QueueError::Indirect);
        }
        if checked_range(mem.size(), d.addr, u64::from(d.len)).is_none() {
            return Err(QueueError::BadAddress {
                addr: d.addr,
                len: d.len,
            });
        }
        Ok(d)
    }

    /// Walks the chain starting at `head`.
    pub fn walk(&self, mem: &dyn GuestMem, head: u16) -> Result<Chain, QueueError> {
        let mut descs = Vec::new();
        let mut index = head;
        loop {
            if descs.len() >= usize::from(self.size) {
                return Err(QueueError::Loop);
            }
            let d = self.desc(mem, index)?;
            descs.push(d);
            if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                break;
            }
            index = d.next;
        }
        Ok(Chain { head, descs })
    }

    /// Takes the next available chain, or `None` when the driver has posted nothing new.
    pub fn pop(&mut self, mem: &dyn GuestMem) -> Result<Option<Chain>, QueueError> {
        if !self.ready || self.size == 0 {
            return Ok(None);
        }
        let avail_idx = read_u16(mem, self.driver + 2)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending > self.size {
            return Err(QueueError::BadAvailIdx(pending));
        }
        if pending == 0 {
            return Ok(None);
        }
        // Read the ring entry only after seeing the index (pairs with the driver's barrier).
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % self.size);
        let head = read_u16(mem, self.driver + 4 + 2 * slot)?;
        let chain = self.walk(mem, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    /// Puts the last popped chain back (it stays available for the next [`Queue::pop`]).
    pub fn undo_pop(&mut self) {
        self.next_avail = self.next_avail.wrapping_sub(1);
    }

    /// Returns chain `head` to the driver with `len` bytes written into it.
    pub fn push_used(&mut self, mem: &dyn GuestMem, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used % self.size);
        let mut elem = [0u8; USED_ELEM_SIZE as usize];
        elem[0..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..8].copy_from_slice(&len.to_le_bytes());
        write_bytes(mem, self.device + 4 + USED_ELEM_SIZE * slot, &elem)?;
        self.next_used = self.next_used.wrapping_add(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        write_bytes(mem, self.device + 2, &self.next_used.to_le_bytes())
    }

    /// Whether the driver wants an interrupt for used buffers (VIRTQ_AVAIL_F_NO_INTERRUPT
    /// clear).
    pub fn wants_interrupt(&self, mem: &dyn GuestMem) -> bool {
        fence(Ordering::SeqCst);
        read_u16(mem, self.driver).is_ok_and(|f| f & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::testmem::VecMem;

    const DESC: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;

    fn queue(size: u16) -> Queue {
        Queue {
            size,
            ready: true,
            desc: DESC,
            driver: AVAIL,
            device: USED,
            ..Default::default()
        }
    }

    fn put_desc(mem: &VecMem, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        assert!(mem.write(DESC + 16 * u64::from(i), &b));
    }

    fn post(mem: &VecMem, slot: u16, head: u16, idx: u16) {
        assert!(mem.write(AVAIL + 4 + 2 * u64::from(slot), &head.to_le_bytes()));
        assert!(mem.write(AVAIL + 2, &idx.to_le_bytes()));
    }

    #[test]
    fn good_chain_and_used_ring() {
        let mem = VecMem::new(0x10000);
        let mut q = queue(8);
        assert_eq!(q.check_layout(mem.size(), 256), Ok(()));
        put_desc(&mem, 0, 0x4000, 4, VIRTQ_DESC_F_NEXT, 3);
        put_desc(&mem, 3, 0x5000, 2, 0, 0);
        assert!(mem.write(0x4000, b"abcd") && mem.write(0x5000, b"ef"));
        assert_eq!(q.pop(&mem), Ok(None));
        post(&mem, 0, 0, 1);
        let c = q.pop(&mem).unwrap().unwrap();
        assert_eq!((c.head, c.descs.len()), (0, 2));
        assert_eq!(c.read_all(&mem, 100).unwrap().unwrap(), b"abcdef");
        assert_eq!(c.read_all(&mem, 5).unwrap(), None);
        assert_eq!(q.pop(&mem), Ok(None));
        q.push_used(&mem, c.head, 6).unwrap();
        let mut b = [0u8; 12];
        assert!(mem.read(USED, &mut b));
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 1);
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 0);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 6);
        assert!(q.wants_interrupt(&mem));
        assert!(mem.write(AVAIL, &VIRTQ_AVAIL_F_NO_INTERRUPT.to_le_bytes()));
        assert!(!q.wants_interrupt(&mem));
    }

    #[test]
    fn writable_chain() {
        let mem = VecMem::new(0x10000);
        let mut q = queue(4);
        put_desc(
            &mem,
            1,
            0x4000,
            3,
            VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
            2,
        );
        put_desc(&mem, 2, 0x5000, 8, VIRTQ_DESC_F_WRITE, 0);
        post(&mem, 0, 1, 1);
        let c = q.pop(&mem).unwrap().unwrap();
        assert_eq!(c.writable_len(), 11);
        assert_eq!(c.write_all(&mem, b"hello"), Ok(5));
        let mut b = [0u8; 3];
        assert!(mem.read(0x4000, &mut b) && &b == b"hel");
        let mut b = [0u8; 2];
        assert!(mem.read(0x5000, &mut b) && &b == b"lo");
        q.undo_pop();
        assert_eq!(q.pop(&mem).unwrap().unwrap().head, 1);
    }

    #[test]
    fn write_to_read_only_is_an_error() {
        let mem = VecMem::new(0x10000);
        let mut q = queue(4);
        put_desc(&mem, 0, 0x4000, 64, 0, 0);
        post(&mem, 0, 0, 1);
        let c = q.pop(&mem).unwrap().unwrap();
        assert_eq!(c.write_all(&mem, b"x"), Err(QueueError::ReadOnly));
        assert_eq!(c.write_status(&mem, b"x"), Err(QueueError::ReadOnly));
    }

    #[test]
    fn address_outside_ram() {
        let mem = VecMem::new(0x10000);
        let mut q = queue(4);
        put_desc(&mem, 0, 0xfff0, 0x20, 0, 0);
        post(&mem, 0, 0, 1);
        assert!(matches!(q.pop(&mem), Err(QueueError::BadAddress { .. })));
        let mut q = queue(4);
        put_desc(&mem, 0, u64::MAX - 4, 0x20, 0, 0);
        assert!(matches!(q.pop(&mem), Err(QueueError::BadAddress { .. })));
    }

    #[test]
    fn loops_and_bad_indices() {
        let mem = VecMem::new(0x10000);
        let mut q = queue(4);
        put_desc(&mem, 0, 0x4000, 1, VIRTQ_DESC_F_NEXT, 1);
        put_desc(&mem, 1, 0x4000, 1, VIRTQ_DESC_F_NEXT, 0);
        post(&mem, 0, 0, 1);
        assert_eq!(q.pop(&mem), Err(QueueError::Loop));
        let mut q = queue(4);
        put_desc(&mem, 0, 0x4000, 1, VIRTQ_DESC_F_NEXT, 9);
        assert_eq!(q.pop(&mem), Err(QueueError::DescIndex(9)));
        let mut q = queue(4);
        post(&mem, 0, 7, 1);
        assert_eq!(q.pop(&mem), Err(QueueError::DescIndex(7)));
        let mut q = queue(4);
        post(&mem, 0, 0, 9);
        assert_eq!(q.pop(&mem), Err(QueueError::BadAvailIdx(9)));
        let mut q = queue(4);
        put_desc(&mem, 0, 0x4000, 16, VIRTQ_DESC_F_INDIRECT, 0);
        post(&mem, 0, 0, 1);
        assert_eq!(q.pop(&mem), Err(QueueError::Indirect));
    }

    #[test]
    fn layout_checks() {
        let q = queue(4);
        assert!(q.check_layout(0x10000, 256).is_ok());
        assert!(q.check_layout(0x2000, 256).is_err());
        assert!(queue(3).check_layout(0x10000, 256).is_err());
        assert!(queue(512).check_layout(0x100000, 256).is_err());
        assert!(queue(0).check_layout(0x10000, 256).is_err());
        let mut q = queue(4);
        q.device = USED + 2;
        assert!(q.check_layout(0x10000, 256).is_err());
        q.device = u64::MAX - 8;
        assert!(q.check_layout(0x10000, 256).is_err());
    }
}
