//! Packet buffers and their pool.
//!
//! A pool carves a DMA-able, identity-mapped region into fixed-size slots ([`BUF_SIZE`]). A
//! [`PacketBuf`] owns one slot exclusively (no reference counts: exactly one owner at any time,
//! moved between the driver, the stack and the app) and describes the packet as a window
//! `[start, start + len)` inside it, leaving headroom in front for headers (the virtio-net
//! header, or headers prepended on transmit).

use alloc::vec::Vec;
use core::ptr::NonNull;

/// Size of one buffer slot.
pub const BUF_SIZE: usize = 2048;
/// Bytes reserved in front of a fresh buffer's data for headers.
pub const HEADROOM: usize = 64;

/// One packet buffer (exclusively owns its slot).
pub struct PacketBuf {
    slot: NonNull<u8>,
    phys: u64,
    index: u32,
    pool: u32,
    start: u16,
    len: u16,
    /// Receive: the NIC validated the TCP/UDP checksum (or the frame comes from the local host
    /// with the checksum still to compute).
    l4_checksum_ok: bool,
    /// Transmit: ask the NIC to complete the checksum: (start, offset of the field from
    /// start), both from the start of the frame.
    tx_checksum: Option<(u16, u16)>,
}

// SAFETY: a PacketBuf is the only handle to its slot; moving it to another thread moves that
// exclusive ownership with it.
unsafe impl Send for PacketBuf {}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("pool", &self.pool)
            .field("index", &self.index)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl PacketBuf {
    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the slot is BUF_SIZE bytes owned by this buffer; start + len <= BUF_SIZE is
        // kept by every mutator.
        unsafe {
            core::slice::from_raw_parts(self.slot.as_ptr().add(self.start.into()), self.len.into())
        }
    }

    /// The packet bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.slot.as_ptr().add(self.start.into()),
                self.len.into(),
            )
        }
    }

    /// The whole slot (headroom, data and tailroom), writable.
    pub fn slot_mut(&mut self) -> &mut [u8] {
        // SAFETY: the slot is BUF_SIZE bytes owned exclusively by this buffer.
        unsafe { core::slice::from_raw_parts_mut(self.slot.as_ptr(), BUF_SIZE) }
    }

    /// Offset of the data inside the slot.
    pub fn start(&self) -> usize {
        self.start.into()
    }

    /// Packet length.
    pub fn len(&self) -> usize {
        self.len.into()
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes available in front of the data.
    pub fn headroom(&self) -> usize {
        self.start.into()
    }

    /// Bytes available after the data.
    pub fn tailroom(&self) -> usize {
        BUF_SIZE - self.start as usize - self.len as usize
    }

    /// Sets the data window to `[start, start + len)`. Returns false if it does not fit.
    pub fn set_window(&mut self, start: usize, len: usize) -> bool {
        match start.checked_add(len) {
            Some(end) if end <= BUF_SIZE => {
                self.start = start as u16;
                self.len = len as u16;
                true
            }
            _ => false,
        }
    }

    /// Sets the packet length (the start stays). Returns false if it does not fit.
    pub fn set_len(&mut self, len: usize) -> bool {
        self.set_window(self.start(), len)
    }

    /// Physical (device) address of the slot.
    pub fn slot_phys(&self) -> u64 {
        self.phys
    }

    /// Which pool the buffer belongs to.
    pub fn pool_id(&self) -> u32 {
        self.pool
    }

    /// Receive checksum offload: whether the NIC vouched for the TCP/UDP checksum.
    pub fn l4_checksum_ok(&self) -> bool {
        self.l4_checksum_ok
    }

    /// Set by drivers on receive.
    pub fn set_l4_checksum_ok(&mut self, ok: bool) {
        self.l4_checksum_ok = ok;
    }

    /// Transmit checksum offload request: the NIC computes the one's-complement checksum from
    /// byte `start` of the frame to its end and stores it at `start + offset` (the field holds
    /// the pseudo-header sum). Only honoured by a NIC that offers it (`Offloads::tx_checksum`).
    pub fn request_tx_checksum(&mut self, start: u16, offset: u16) {
        self.tx_checksum = Some((start, offset));
    }

    /// The pending transmit checksum request.
    pub fn tx_checksum(&self) -> Option<(u16, u16)> {
        self.tx_checksum
    }
}

/// A pool of packet buffers over one region. Not shared: each queue pair owns its pool, so the
/// fast path takes no lock.
pub struct BufPool {
    base: NonNull<u8>,
    phys: u64,
    count: u32,
    id: u32,
    free: Vec<u32>,
}

// SAFETY: the pool is the only owner of the free slots of its region.
unsafe impl Send for BufPool {}

impl core::fmt::Debug for BufPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BufPool")
            .field("id", &self.id)
            .field("count", &self.count)
            .field("free", &self.free.len())
            .finish()
    }
}

impl BufPool {
    /// Number of whole slots a region of `bytes` holds.
    pub const fn slots_in(bytes: usize) -> usize {
        bytes / BUF_SIZE
    }

    /// A pool over `count` slots starting at `base` (device address `phys`), with pool id `id`.
    ///
    /// # Safety
    /// `[base, base + count * BUF_SIZE)` must be valid, writable memory owned by the pool for
    /// its whole life (never freed, never used otherwise), and `phys` must be the address the
    /// device uses for `base`.
    pub unsafe fn new(base: NonNull<u8>, phys: u64, count: usize, id: u32) -> BufPool {
        let count = count.min(u32::MAX as usize) as u32;
        BufPool {
            base,
            phys,
            count,
            id,
            free: (0..count).rev().collect(),
        }
    }

    /// Takes a buffer (data window empty, at [`HEADROOM`]).
    #[inline]
    pub fn alloc(&mut self) -> Option<PacketBuf> {
        let index = self.free.pop()?;
        // SAFETY: index was just taken off the free list: no other handle to its slot exists.
        Some(unsafe { self.unpark(index) })
    }

    /// Takes a free slot already parked (as [`BufPool::alloc`] then [`BufPool::park`]).
    #[inline]
    pub fn alloc_parked(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Parks one of this pool's buffers as its slot index while a device holds it (a 4-byte
    /// token instead of the whole handle, cheap to store in a ring's side table). The slot stays
    /// taken: get it back with [`BufPool::unpark`] or [`BufPool::release`], exactly once. A
    /// buffer of another pool is handed back unchanged.
    #[inline]
    pub fn park(&self, buf: PacketBuf) -> Result<u32, PacketBuf> {
        if buf.pool != self.id || buf.index >= self.count {
            return Err(buf);
        }
        Ok(buf.index)
    }

    /// The buffer parked as `token`, with an empty data window at [`HEADROOM`].
    ///
    /// # Safety
    /// `token` must be a taken slot of this pool with no live handle: from [`BufPool::park`] or
    /// [`BufPool::alloc_parked`], not unparked or released since (two handles to one slot would
    /// alias).
    #[inline]
    pub unsafe fn unpark(&self, token: u32) -> PacketBuf {
        let off = token as usize * BUF_SIZE;
        PacketBuf {
            // SAFETY: park only returns indices < count, so the slot lies inside the region.
            slot: unsafe { NonNull::new_unchecked(self.base.as_ptr().add(off)) },
            phys: self.phys + off as u64,
            index: token,
            pool: self.id,
            start: HEADROOM as u16,
            len: 0,
            l4_checksum_ok: false,
            tx_checksum: None,
        }
    }

    /// Frees the buffer parked as `token` (the same contract as [`BufPool::unpark`]).
    ///
    /// # Safety
    /// As for [`BufPool::unpark`].
    #[inline]
    pub unsafe fn release(&mut self, token: u32) {
        self.free.push(token);
    }

    /// Device address of slot `token` (any index below the pool's count).
    #[inline]
    pub fn slot_phys_of(&self, token: u32) -> u64 {
        self.phys + token as u64 * BUF_SIZE as u64
    }

    /// Returns a buffer to the pool; a buffer of another pool is handed back unchanged.
    #[inline]
    pub fn free(&mut self, buf: PacketBuf) -> Result<(), PacketBuf> {
        if buf.pool != self.id || buf.index >= self.count {
            return Err(buf);
        }
        self.free.push(buf.index);
        Ok(())
    }

    /// Returns a buffer to the pool; a buffer of another pool is counted in `foreign` (and
    /// leaked: its slot cannot be returned from here).
    #[inline]
    pub fn free_or_count(&mut self, buf: PacketBuf, foreign: &mut u64) {
        if self.free(buf).is_err() {
            *foreign += 1;
        }
    }

    /// Free buffers.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Total buffers.
    pub fn capacity(&self) -> usize {
        self.count as usize
    }

    /// The pool id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// A pool over heap memory (never freed), for host tests and software devices such as the
/// loopback; "physical" addresses equal virtual ones (true in the ferrix guest too).
pub fn heap_pool(count: usize, id: u32) -> BufPool {
    let mem: &'static mut [u8] = alloc::vec![0u8; count * BUF_SIZE].leak();
    let base = NonNull::new(mem.as_mut_ptr()).expect("non-null");
    // SAFETY: the leaked vector is valid for count * BUF_SIZE bytes forever and used by nothing
    // else; on the host "physical" = virtual.
    unsafe { BufPool::new(base, base.as_ptr() as u64, count, id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_cycle() {
        let mut p = heap_pool(4, 7);
        let mut bufs: Vec<_> = (0..4).map(|_| p.alloc().unwrap()).collect();
        assert!(p.alloc().is_none());
        let b = &mut bufs[0];
        assert_eq!(b.headroom(), HEADROOM);
        assert!(b.set_len(100));
        b.data_mut().fill(0xab);
        assert!(b.data().iter().all(|&x| x == 0xab));
        assert_eq!(b.tailroom(), BUF_SIZE - HEADROOM - 100);
        assert!(!b.set_window(BUF_SIZE - 10, 11));
        assert!(b.set_window(0, BUF_SIZE));
        // Distinct slots.
        let mut phys: Vec<u64> = bufs.iter().map(PacketBuf::slot_phys).collect();
        phys.sort();
        phys.dedup();
        assert_eq!(phys.len(), 4);
        for b in bufs {
            p.free(b).unwrap();
        }
        assert_eq!(p.available(), 4);
    }

    #[test]
    fn parked_buffers_come_back_whole() {
        let mut p = heap_pool(2, 3);
        let mut b = p.alloc().unwrap();
        let phys = b.slot_phys();
        assert!(b.set_len(10));
        b.data_mut().copy_from_slice(b"0123456789");
        let t = p.park(b).unwrap();
        assert_eq!(p.slot_phys_of(t), phys);
        assert_eq!(p.available(), 1, "a parked buffer is still taken");
        // SAFETY: t was parked just above and is unparked once.
        let mut b = unsafe { p.unpark(t) };
        assert_eq!((b.slot_phys(), b.start(), b.len()), (phys, HEADROOM, 0));
        assert!(b.set_len(10));
        assert_eq!(b.data(), b"0123456789");
        let t = p.park(b).unwrap();
        // SAFETY: t is parked and released once.
        unsafe { p.release(t) };
        assert_eq!(p.available(), 2);
        let q = heap_pool(1, 4);
        assert!(q.park(p.alloc().unwrap()).is_err(), "another pool's buffer");
    }

    #[test]
    fn foreign_buffers_are_refused() {
        let mut a = heap_pool(1, 1);
        let mut b = heap_pool(1, 2);
        let x = a.alloc().unwrap();
        let x = b.free(x).unwrap_err();
        assert_eq!(b.available(), 1);
        a.free(x).unwrap();
    }
}
