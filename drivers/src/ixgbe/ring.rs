//! A descriptor ring in DMA memory shared with the device: 16-byte descriptors read and
//! written with volatile accesses, the device's status dword read first and the rest only
//! after an acquire fence (so a descriptor is never seen half written back).

use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};
use ferrix_ixgbe_regs::desc::{DESC_LEN, RING_ALIGN};

/// A ring of `len` descriptors.
pub struct DescRing {
    base: NonNull<u8>,
    phys: u64,
    len: u16,
}

// SAFETY: the ring memory is owned by one queue (and the device); moving the owner moves it.
unsafe impl Send for DescRing {}

impl DescRing {
    /// Bytes a ring of `len` descriptors takes.
    pub const fn bytes(len: u16) -> usize {
        len as usize * DESC_LEN
    }

    /// A ring over `[base, base + bytes(len))` at device address `phys`, zeroed. None if the
    /// memory is misaligned for the device or `len` is not a multiple of 8.
    ///
    /// # Safety
    /// The memory must be valid, DMA-able, owned by this ring for the life of the driver.
    pub unsafe fn new(base: NonNull<u8>, phys: u64, len: u16) -> Option<DescRing> {
        let aligned = phys.is_multiple_of(RING_ALIGN as u64)
            && Self::bytes(len).is_multiple_of(RING_ALIGN)
            && len > 0;
        if !aligned {
            return None;
        }
        // SAFETY: the caller hands over bytes(len) writable bytes.
        unsafe { core::ptr::write_bytes(base.as_ptr(), 0, Self::bytes(len)) };
        Some(DescRing { base, phys, len })
    }

    pub fn len(&self) -> u16 {
        self.len
    }
    pub fn phys(&self) -> u64 {
        self.phys
    }

    fn slot(&self, i: u16) -> *mut u8 {
        let i = usize::from(i % self.len);
        // SAFETY: i < len: inside the ring.
        unsafe { self.base.as_ptr().add(i * DESC_LEN) }
    }

    /// The status dword (bytes 8..12 of a receive write-back, 12..16 of a transmit one).
    pub fn status(&self, i: u16, at: usize) -> u32 {
        // SAFETY: at is 8 or 12: an aligned dword inside descriptor i.
        let v = unsafe { (self.slot(i).add(at) as *const u32).read_volatile() };
        fence(Ordering::Acquire);
        u32::from_le(v)
    }

    /// Zeroes the status dword (the driver took the descriptor back).
    pub fn clear_status(&self, i: u16, at: usize) {
        // SAFETY: as in `status`.
        unsafe { (self.slot(i).add(at) as *mut u32).write_volatile(0) };
    }

    /// Reads descriptor `i`.
    pub fn read(&self, i: u16) -> [u8; DESC_LEN] {
        let p = self.slot(i) as *const u64;
        let mut d = [0u8; DESC_LEN];
        // SAFETY: descriptor i is 16 bytes, 16-byte aligned (the ring base is 128-aligned).
        let (a, b) = unsafe { (p.read_volatile(), p.add(1).read_volatile()) };
        d[..8].copy_from_slice(&a.to_ne_bytes());
        d[8..].copy_from_slice(&b.to_ne_bytes());
        d
    }

    /// Writes descriptor `i`.
    pub fn write(&self, i: u16, d: &[u8; DESC_LEN]) {
        let p = self.slot(i) as *mut u64;
        let (a, b) = d.split_at(8);
        // SAFETY: as in `read`; try_into of two 8-byte halves cannot fail.
        unsafe {
            p.write_volatile(u64::from_ne_bytes(a.try_into().unwrap_or_default()));
            p.add(1)
                .write_volatile(u64::from_ne_bytes(b.try_into().unwrap_or_default()));
        }
    }
}
