//! Physical frame allocator: a sorted, coalescing list of free 4 KiB-aligned ranges, built
//! from the RAM map minus what is already in use (low memory, the kernel image).
//!
//! Contiguous allocations of any page count and power-of-two alignment are supported (stacks,
//! DMA regions, the heap). Pure logic: it never touches the memory it hands out, so it is
//! unit-tested on the host.

use super::memmap::{RamMap, Region};

/// Frame size.
pub const PAGE_SIZE: u64 = 4096;
/// Most disjoint free ranges tracked; a free that would need more is refused (and counted).
pub const MAX_FREE_RANGES: usize = 64;

/// Allocation failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// No free range fits the request.
    OutOfMemory { pages: u64 },
    /// Bad request (zero pages, alignment not a power of two multiple of a page, ...).
    Invalid,
    /// A freed range overlaps free memory (double free) or is not page aligned.
    BadFree,
    /// The free list is full; the range is leaked.
    TooFragmented,
}

/// The allocator.
#[derive(Clone, Debug)]
pub struct FrameAllocator {
    free: [Region; MAX_FREE_RANGES],
    len: usize,
    /// Pages leaked because the free list was full.
    pub leaked_pages: u64,
}

impl FrameAllocator {
    /// All RAM of `map` above `floor`, minus each range in `reserved`.
    pub fn new(map: &RamMap, floor: u64, reserved: &[Region]) -> FrameAllocator {
        let mut fa = FrameAllocator {
            free: [Region::default(); MAX_FREE_RANGES],
            len: 0,
            leaked_pages: 0,
        };
        for r in map.regions() {
            let r = Region {
                start: r.start.max(floor),
                end: r.end,
            };
            if !r.is_empty() {
                let _ = fa.insert(r);
            }
        }
        for res in reserved {
            let res = Region {
                start: res.start & !(PAGE_SIZE - 1),
                end: align_up(res.end, PAGE_SIZE),
            };
            fa.carve(res);
        }
        fa
    }

    /// Free ranges (sorted by address).
    pub fn free_ranges(&self) -> &[Region] {
        &self.free[..self.len]
    }

    /// Free bytes in total.
    pub fn free_bytes(&self) -> u64 {
        self.free_ranges().iter().map(Region::len).sum()
    }

    /// Allocates `pages` contiguous frames aligned to `align` bytes (a power of two >= 4096),
    /// below `limit` (exclusive end address). Lowest address first.
    pub fn alloc_below(&mut self, pages: u64, align: u64, limit: u64) -> Result<u64, FrameError> {
        if pages == 0 || !align.is_power_of_two() || align < PAGE_SIZE {
            return Err(FrameError::Invalid);
        }
        let bytes = pages.checked_mul(PAGE_SIZE).ok_or(FrameError::Invalid)?;
        for i in 0..self.len {
            let r = self.free[i];
            let start = align_up(r.start, align);
            let Some(end) = start.checked_add(bytes) else {
                continue;
            };
            if end <= r.end && end <= limit {
                self.carve(Region { start, end });
                return Ok(start);
            }
        }
        Err(FrameError::OutOfMemory { pages })
    }

    /// Allocates `pages` contiguous frames aligned to `align` bytes, anywhere.
    pub fn alloc(&mut self, pages: u64, align: u64) -> Result<u64, FrameError> {
        self.alloc_below(pages, align, u64::MAX)
    }

    /// Returns `pages` frames at `addr` to the allocator.
    pub fn free(&mut self, addr: u64, pages: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(PAGE_SIZE) || pages == 0 {
            return Err(FrameError::BadFree);
        }
        let end = addr
            .checked_add(pages * PAGE_SIZE)
            .ok_or(FrameError::BadFree)?;
        let r = Region { start: addr, end };
        if self
            .free_ranges()
            .iter()
            .any(|f| f.start < r.end && r.start < f.end)
        {
            return Err(FrameError::BadFree);
        }
        self.insert(r).inspect_err(|_| self.leaked_pages += pages)
    }

    /// Inserts a free range, keeping the list sorted and merging neighbours.
    fn insert(&mut self, r: Region) -> Result<(), FrameError> {
        let pos = self.free_ranges().partition_point(|f| f.start < r.start);
        let merge_prev = pos > 0 && self.free[pos - 1].end == r.start;
        let merge_next = pos < self.len && self.free[pos].start == r.end;
        match (merge_prev, merge_next) {
            (true, true) => {
                self.free[pos - 1].end = self.free[pos].end;
                self.remove_at(pos);
            }
            (true, false) => self.free[pos - 1].end = r.end,
            (false, true) => self.free[pos].start = r.start,
            (false, false) => {
                if self.len == MAX_FREE_RANGES {
                    return Err(FrameError::TooFragmented);
                }
                self.free.copy_within(pos..self.len, pos + 1);
                self.free[pos] = r;
                self.len += 1;
            }
        }
        Ok(())
    }

    fn remove_at(&mut self, i: usize) {
        self.free.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }

    /// Removes `cut` from the free ranges (any part of it that is free).
    fn carve(&mut self, cut: Region) {
        let mut i = 0;
        while i < self.len {
            let f = self.free[i];
            if f.end <= cut.start || cut.end <= f.start {
                i += 1;
                continue;
            }
            let left = Region {
                start: f.start,
                end: cut.start,
            };
            let right = Region {
                start: cut.end,
                end: f.end,
            };
            match (left.start < left.end, right.start < right.end) {
                (false, false) => {
                    self.remove_at(i);
                    continue;
                }
                (true, false) => self.free[i] = left,
                (false, true) => self.free[i] = right,
                (true, true) => {
                    self.free[i] = left;
                    if self.len == MAX_FREE_RANGES {
                        // Cannot split: drop the right part (leak it rather than corrupt).
                        self.leaked_pages += right.len() / PAGE_SIZE;
                    } else {
                        self.free.copy_within(i + 1..self.len, i + 2);
                        self.free[i + 1] = right;
                        self.len += 1;
                    }
                }
            }
            i += 1;
        }
    }
}

/// Rounds `v` up to a multiple of the power of two `a`.
pub fn align_up(v: u64, a: u64) -> u64 {
    v.saturating_add(a - 1) & !(a - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::memmap::{E820_RAM, MEMMAP_ENTRY_SIZE};

    fn map(entries: &[(u64, u64)]) -> RamMap {
        let mut raw = Vec::new();
        for &(a, s) in entries {
            let mut e = [0u8; MEMMAP_ENTRY_SIZE];
            e[0..8].copy_from_slice(&a.to_le_bytes());
            e[8..16].copy_from_slice(&s.to_le_bytes());
            e[16..20].copy_from_slice(&E820_RAM.to_le_bytes());
            raw.extend_from_slice(&e);
        }
        RamMap::from_entries(&raw).unwrap()
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn new_excludes_floor_and_reserved() {
        let m = map(&[(0, 0x9f000), (MIB, 63 * MIB)]);
        let fa = FrameAllocator::new(
            &m,
            MIB,
            &[Region {
                start: MIB,
                end: MIB + 0x1234,
            }],
        );
        assert_eq!(
            fa.free_ranges(),
            &[Region {
                start: MIB + 0x2000,
                end: 64 * MIB
            }]
        );
    }

    #[test]
    fn alloc_aligned_and_contiguous() {
        let m = map(&[(MIB, 15 * MIB)]);
        let mut fa = FrameAllocator::new(
            &m,
            0,
            &[Region {
                start: MIB,
                end: MIB + 4096,
            }],
        );
        let a = fa.alloc(1, 4096).unwrap();
        assert_eq!(a, MIB + 4096);
        let b = fa.alloc(512, 2 * MIB).unwrap();
        assert_eq!(b % (2 * MIB), 0);
        assert_eq!(b, 2 * MIB);
        // The gap below b stays allocatable.
        let c = fa.alloc(1, 4096).unwrap();
        assert_eq!(c, MIB + 8192);
        let before = fa.free_bytes();
        fa.free(b, 512).unwrap();
        assert_eq!(fa.free_bytes(), before + 2 * MIB);
    }

    #[test]
    fn free_merges_and_detects_double_free() {
        let m = map(&[(MIB, 64 * PAGE_SIZE)]);
        let mut fa = FrameAllocator::new(&m, 0, &[]);
        let pages: Vec<u64> = (0..64).map(|_| fa.alloc(1, 4096).unwrap()).collect();
        assert!(fa.alloc(1, 4096).is_err());
        for &p in pages.iter().step_by(2) {
            fa.free(p, 1).unwrap();
        }
        assert_eq!(fa.free(pages[0], 1), Err(FrameError::BadFree));
        for &p in pages.iter().skip(1).step_by(2) {
            fa.free(p, 1).unwrap();
        }
        assert_eq!(
            fa.free_ranges(),
            &[Region {
                start: MIB,
                end: MIB + 64 * PAGE_SIZE
            }]
        );
        assert_eq!(fa.leaked_pages, 0);
    }

    #[test]
    fn alloc_below_limit() {
        let m = map(&[(MIB, 7 * MIB)]);
        let mut fa = FrameAllocator::new(&m, 0, &[]);
        assert!(fa.alloc_below(1024, 4096, 4 * MIB).is_err());
        let a = fa.alloc_below(512, 4096, 4 * MIB).unwrap();
        assert!(a + 2 * MIB <= 4 * MIB);
    }

    #[test]
    fn invalid_requests() {
        let m = map(&[(MIB, MIB)]);
        let mut fa = FrameAllocator::new(&m, 0, &[]);
        assert_eq!(fa.alloc(0, 4096), Err(FrameError::Invalid));
        assert_eq!(fa.alloc(1, 3000), Err(FrameError::Invalid));
        assert_eq!(fa.alloc(u64::MAX, 4096), Err(FrameError::Invalid));
        assert_eq!(fa.free(123, 1), Err(FrameError::BadFree));
    }

    #[test]
    fn fragmentation_is_bounded_and_counted() {
        let m = map(&[(MIB, 4 * MIB)]);
        let mut fa = FrameAllocator::new(&m, 0, &[]);
        let pages: Vec<u64> = (0..1024).map(|_| fa.alloc(1, 4096).unwrap()).collect();
        let mut refused = 0;
        for &p in pages.iter().step_by(2) {
            if fa.free(p, 1).is_err() {
                refused += 1;
            }
        }
        assert_eq!(fa.free_ranges().len(), MAX_FREE_RANGES);
        assert_eq!(fa.leaked_pages, refused);
        assert!(refused > 0);
    }
}
