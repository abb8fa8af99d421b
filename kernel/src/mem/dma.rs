//! DMA region allocator: carves driver buffers (descriptor rings, packet buffers) out of one
//! physically contiguous, identity-mapped region, so a buffer's address is also the address the
//! device uses. First fit over an address-ordered free list with coalescing on free; every
//! allocation is aligned to at least [`DMA_MIN_ALIGN`] bytes.

use alloc::collections::BTreeMap;

/// Smallest alignment and granularity of DMA allocations (a cache line).
pub const DMA_MIN_ALIGN: u64 = 64;

/// DMA allocation failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// No free block fits.
    OutOfMemory,
    /// Zero size or alignment not a power of two.
    Invalid,
    /// Freeing something that was not allocated (or twice).
    BadFree(u64),
}

/// The allocator over `[base, base + size)`.
#[derive(Debug)]
pub struct DmaAllocator {
    base: u64,
    size: u64,
    /// Free blocks: start -> length.
    free: BTreeMap<u64, u64>,
    /// Live allocations: start -> length.
    used: BTreeMap<u64, u64>,
}

impl DmaAllocator {
    /// A new allocator owning `[base, base + size)`.
    pub fn new(base: u64, size: u64) -> DmaAllocator {
        let start = base.next_multiple_of(DMA_MIN_ALIGN);
        let end = (base + size) / DMA_MIN_ALIGN * DMA_MIN_ALIGN;
        let mut free = BTreeMap::new();
        if end > start {
            free.insert(start, end - start);
        }
        DmaAllocator {
            base,
            size,
            free,
            used: BTreeMap::new(),
        }
    }

    /// The region this allocator owns.
    pub fn region(&self) -> (u64, u64) {
        (self.base, self.size)
    }

    /// Bytes free.
    pub fn free_bytes(&self) -> u64 {
        self.free.values().sum()
    }

    /// Allocates `size` bytes aligned to `align` (rounded up to [`DMA_MIN_ALIGN`]).
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64, DmaError> {
        if size == 0 || !align.is_power_of_two() {
            return Err(DmaError::Invalid);
        }
        let align = align.max(DMA_MIN_ALIGN);
        let size = size
            .checked_next_multiple_of(DMA_MIN_ALIGN)
            .ok_or(DmaError::Invalid)?;
        let (start, len, at) = self
            .free
            .iter()
            .find_map(|(&s, &l)| {
                let at = s.checked_next_multiple_of(align)?;
                (at.checked_add(size)? <= s + l).then_some((s, l, at))
            })
            .ok_or(DmaError::OutOfMemory)?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        if at + size < start + len {
            self.free.insert(at + size, start + len - (at + size));
        }
        self.used.insert(at, size);
        Ok(at)
    }

    /// Frees an allocation made by [`DmaAllocator::alloc`].
    pub fn free(&mut self, addr: u64) -> Result<(), DmaError> {
        let size = self.used.remove(&addr).ok_or(DmaError::BadFree(addr))?;
        let mut start = addr;
        let mut len = size;
        if let Some((&ps, &pl)) = self.free.range(..addr).next_back()
            && ps + pl == addr
        {
            self.free.remove(&ps);
            start = ps;
            len += pl;
        }
        if let Some(nl) = self.free.remove(&(addr + size)) {
            len += nl;
        }
        self.free.insert(start, len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_allocations_do_not_overlap() {
        let mut d = DmaAllocator::new(0x10_0000, 0x1_0000);
        let a = d.alloc(100, 64).unwrap();
        let b = d.alloc(4096, 4096).unwrap();
        let c = d.alloc(1, 1).unwrap();
        assert_eq!(b % 4096, 0);
        let mut v = [(a, 128), (b, 4096), (c, 64)];
        v.sort();
        for w in v.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0);
        }
    }

    #[test]
    fn free_coalesces_back_to_one_block() {
        let mut d = DmaAllocator::new(0x10_0000, 0x1_0000);
        let total = d.free_bytes();
        let xs: Vec<u64> = (0..16)
            .map(|i| d.alloc(64 * (i + 1), 64).unwrap())
            .collect();
        for (i, x) in xs.iter().enumerate().rev().step_by(2) {
            d.free(*x).unwrap_or_else(|e| panic!("{i}: {e:?}"));
        }
        for x in xs.iter().rev().skip(1).step_by(2) {
            d.free(*x).unwrap();
        }
        assert_eq!(d.free_bytes(), total);
        assert_eq!(d.free.len(), 1);
    }

    #[test]
    fn errors() {
        let mut d = DmaAllocator::new(0x1000, 4096);
        assert_eq!(d.alloc(0, 64), Err(DmaError::Invalid));
        assert_eq!(d.alloc(64, 3), Err(DmaError::Invalid));
        assert_eq!(d.alloc(8192, 64), Err(DmaError::OutOfMemory));
        let a = d.alloc(64, 64).unwrap();
        d.free(a).unwrap();
        assert_eq!(d.free(a), Err(DmaError::BadFree(a)));
        assert_eq!(d.alloc(u64::MAX, 64), Err(DmaError::Invalid));
    }
}
