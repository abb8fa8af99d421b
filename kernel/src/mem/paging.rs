//! Four-level x86-64 page tables for ferrix's identity map: build, map with 2 MiB pages where
//! alignment allows (4 KiB elsewhere), unmap single 4 KiB pages (splitting a 2 MiB page when
//! needed: guard pages), and translate.
//!
//! The tables live in memory reached through [`TableMemory`]; the kernel backs it with frames
//! from the frame allocator, host tests with a map.

/// Entry flag: present.
pub const PRESENT: u64 = 1 << 0;
/// Entry flag: writable.
pub const WRITABLE: u64 = 1 << 1;
/// Entry flag: write-through.
pub const WRITE_THROUGH: u64 = 1 << 3;
/// Entry flag: cache disable.
pub const NO_CACHE: u64 = 1 << 4;
/// Entry flag (PDE/PDPTE): this entry maps a large page.
pub const HUGE: u64 = 1 << 7;
/// Physical address bits of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Flag bits carried over when a large page is split.
const FLAG_MASK: u64 = !ADDR_MASK & !HUGE;

const SIZE_4K: u64 = 1 << 12;
const SIZE_2M: u64 = 1 << 21;

/// Storage of page-table pages.
pub trait TableMemory {
    /// A new zeroed 4 KiB table; its physical address.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write(&mut self, table: u64, index: usize, entry: u64);
}

/// Mapping failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No memory for a page-table page.
    OutOfTables,
    /// Address not page aligned or not canonical.
    BadAddress(u64),
}

/// A page-table hierarchy (its PML4's physical address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTables {
    pub root: u64,
}

fn index(addr: u64, level: u32) -> usize {
    ((addr >> (12 + 9 * level)) & 0x1ff) as usize
}

impl PageTables {
    /// An empty hierarchy.
    pub fn new(mem: &mut impl TableMemory) -> Result<PageTables, MapError> {
        Ok(PageTables {
            root: mem.alloc_table().ok_or(MapError::OutOfTables)?,
        })
    }

    /// The table below entry `idx` of `table`, creating it if absent. Fails on a huge entry
    /// unless `split` is set, in which case the huge page is split into the next level.
    fn next(
        &self,
        mem: &mut impl TableMemory,
        table: u64,
        idx: usize,
        level: u32,
    ) -> Result<u64, MapError> {
        let e = mem.read(table, idx);
        if e & PRESENT == 0 {
            let t = mem.alloc_table().ok_or(MapError::OutOfTables)?;
            mem.write(table, idx, t | PRESENT | WRITABLE);
            return Ok(t);
        }
        if e & HUGE == 0 {
            return Ok(e & ADDR_MASK);
        }
        // Split a large page (level 1: a 2 MiB page into 512 4 KiB pages).
        let t = mem.alloc_table().ok_or(MapError::OutOfTables)?;
        let base = e & ADDR_MASK & !(SIZE_2M - 1);
        let flags = e & FLAG_MASK;
        let child = if level == 1 { SIZE_4K } else { SIZE_2M };
        let huge = if level == 1 { 0 } else { HUGE };
        for i in 0..512 {
            mem.write(t, i, (base + i as u64 * child) | flags | huge);
        }
        mem.write(table, idx, t | PRESENT | WRITABLE);
        Ok(t)
    }

    /// Identity-maps `[start, end)` (page aligned) with `flags` (PRESENT is implied).
    pub fn map_identity(
        &mut self,
        mem: &mut impl TableMemory,
        start: u64,
        end: u64,
        flags: u64,
    ) -> Result<(), MapError> {
        for a in [start, end] {
            if a % SIZE_4K != 0 || a >= 1 << 47 {
                return Err(MapError::BadAddress(a));
            }
        }
        let mut a = start;
        while a < end {
            let pdpt = self.next(mem, self.root, index(a, 3), 3)?;
            let pd = self.next(mem, pdpt, index(a, 2), 2)?;
            if a.is_multiple_of(SIZE_2M)
                && end - a >= SIZE_2M
                && mem.read(pd, index(a, 1)) & (PRESENT | HUGE) != PRESENT
            {
                mem.write(pd, index(a, 1), a | flags | PRESENT | HUGE);
                a += SIZE_2M;
            } else {
                let pt = self.next(mem, pd, index(a, 1), 1)?;
                mem.write(pt, index(a, 0), a | flags | PRESENT);
                a += SIZE_4K;
            }
        }
        Ok(())
    }

    /// Removes the 4 KiB page at `addr` (splitting its 2 MiB page if needed). The caller
    /// flushes the TLB entry if these tables are live.
    pub fn unmap_4k(&mut self, mem: &mut impl TableMemory, addr: u64) -> Result<(), MapError> {
        if !addr.is_multiple_of(SIZE_4K) || addr >= 1 << 47 {
            return Err(MapError::BadAddress(addr));
        }
        let pdpt = self.next(mem, self.root, index(addr, 3), 3)?;
        let pd = self.next(mem, pdpt, index(addr, 2), 2)?;
        let pt = self.next(mem, pd, index(addr, 1), 1)?;
        mem.write(pt, index(addr, 0), 0);
        Ok(())
    }

    /// The physical address `addr` maps to and the flags of the final entry, if mapped.
    pub fn translate(&self, mem: &impl TableMemory, addr: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for level in (0..4).rev() {
            let e = mem.read(table, index(addr, level));
            if e & PRESENT == 0 {
                return None;
            }
            let page = 1u64 << (12 + 9 * level);
            if level == 0 || (e & HUGE != 0 && level <= 2) {
                return Some((
                    (e & ADDR_MASK & !(page - 1)) | (addr & (page - 1)),
                    e & !ADDR_MASK,
                ));
            }
            table = e & ADDR_MASK;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem {
        tables: HashMap<u64, Box<[u64; 512]>>,
        next: u64,
        limit: usize,
    }

    impl TableMemory for Mem {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.limit != 0 && self.tables.len() >= self.limit {
                return None;
            }
            self.next += 4096;
            self.tables
                .insert(self.next + 0x1000_0000, Box::new([0; 512]));
            Some(self.next + 0x1000_0000)
        }
        fn read(&self, t: u64, i: usize) -> u64 {
            self.tables[&t][i]
        }
        fn write(&mut self, t: u64, i: usize, e: u64) {
            self.tables.get_mut(&t).unwrap()[i] = e;
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn identity_map_uses_large_pages() {
        let mut m = Mem::default();
        let mut pt = PageTables::new(&mut m).unwrap();
        pt.map_identity(&mut m, 0, 64 * MIB, WRITABLE).unwrap();
        // root + pdpt + pd: no 4 KiB tables needed.
        assert_eq!(m.tables.len(), 3);
        for a in [0, 0x1234, 2 * MIB + 5, 64 * MIB - 1] {
            let (p, f) = pt.translate(&m, a).unwrap();
            assert_eq!(p, a);
            assert_ne!(f & WRITABLE, 0);
        }
        assert_eq!(pt.translate(&m, 64 * MIB), None);
    }

    #[test]
    fn unaligned_edges_use_small_pages() {
        let mut m = Mem::default();
        let mut pt = PageTables::new(&mut m).unwrap();
        pt.map_identity(&mut m, MIB, 5 * MIB + 4096, 0).unwrap();
        assert_eq!(pt.translate(&m, MIB - 1), None);
        assert_eq!(pt.translate(&m, MIB).unwrap().0, MIB);
        assert_eq!(pt.translate(&m, 3 * MIB).unwrap().0, 3 * MIB);
        assert_eq!(pt.translate(&m, 5 * MIB + 4095).unwrap().0, 5 * MIB + 4095);
        assert_eq!(pt.translate(&m, 5 * MIB + 4096), None);
    }

    #[test]
    fn unmap_splits_large_page_and_keeps_neighbours() {
        let mut m = Mem::default();
        let mut pt = PageTables::new(&mut m).unwrap();
        pt.map_identity(&mut m, 0, 8 * MIB, WRITABLE | NO_CACHE)
            .unwrap();
        let guard = 2 * MIB + 7 * 4096;
        pt.unmap_4k(&mut m, guard).unwrap();
        assert_eq!(pt.translate(&m, guard), None);
        assert_eq!(pt.translate(&m, guard + 4095), None);
        let (p, f) = pt.translate(&m, guard - 1).unwrap();
        assert_eq!(p, guard - 1);
        assert_eq!(f & (WRITABLE | NO_CACHE), WRITABLE | NO_CACHE);
        assert_eq!(f & HUGE, 0);
        assert_eq!(pt.translate(&m, guard + 4096).unwrap().0, guard + 4096);
        assert_eq!(pt.translate(&m, 5 * MIB).unwrap().0, 5 * MIB);
        assert_eq!(pt.unmap_4k(&mut m, 123), Err(MapError::BadAddress(123)));
    }

    #[test]
    fn high_addresses_and_errors() {
        let mut m = Mem::default();
        let mut pt = PageTables::new(&mut m).unwrap();
        pt.map_identity(&mut m, 0xfee0_0000, 0xfee0_0000 + 2 * MIB, NO_CACHE)
            .unwrap();
        assert_eq!(pt.translate(&m, 0xfee0_0300).unwrap().0, 0xfee0_0300);
        assert_eq!(
            pt.map_identity(&mut m, 1 << 47, (1 << 47) + 4096, 0),
            Err(MapError::BadAddress(1 << 47))
        );
        let mut small = Mem {
            limit: 2,
            ..Default::default()
        };
        let mut pt2 = PageTables::new(&mut small).unwrap();
        assert_eq!(
            pt2.map_identity(&mut small, 0, 4096, 0),
            Err(MapError::OutOfTables)
        );
    }
}
