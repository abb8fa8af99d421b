//! The PVH `hvm_start_info` structure and its memory map, parsed from raw guest memory.
//!
//! Layout (Xen public/arch-x86/hvm/start_info.h): magic u32 (0x336ec578), version u32,
//! flags u32, nr_modules u32, modlist_paddr u64, cmdline_paddr u64, rsdp_paddr u64,
//! memmap_paddr u64, memmap_entries u32, reserved u32. Memory map entries (version >= 1):
//! addr u64, size u64, type u32, reserved u32.

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Size of `hvm_start_info` (version 1).
pub const START_INFO_SIZE: usize = 56;
/// Size of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;
/// Memory map type of usable RAM (E820 numbering).
pub const E820_RAM: u32 = 1;
/// Most memory map entries ferrix keeps.
pub const MAX_REGIONS: usize = 32;

/// A physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

impl Region {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// The fields of start_info ferrix uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    pub version: u32,
    pub cmdline_paddr: u64,
    pub memmap_paddr: u64,
    pub memmap_entries: u32,
}

/// Why start_info or its memory map was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Wrong magic: not booted through PVH.
    BadMagic(u32),
    /// Version 0 has no memory map.
    NoMemoryMap,
    /// More entries than ferrix keeps.
    TooManyEntries(u32),
    /// No usable RAM above 1 MiB.
    NoRam,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32_at(b, o)) | (u64::from(u32_at(b, o + 4)) << 32)
}

/// Parses start_info from its bytes.
pub fn parse_start_info(b: &[u8; START_INFO_SIZE]) -> Result<StartInfo, StartInfoError> {
    let magic = u32_at(b, 0);
    if magic != START_INFO_MAGIC {
        return Err(StartInfoError::BadMagic(magic));
    }
    let info = StartInfo {
        version: u32_at(b, 4),
        cmdline_paddr: u64_at(b, 24),
        memmap_paddr: u64_at(b, 40),
        memmap_entries: u32_at(b, 48),
    };
    if info.version < 1 || info.memmap_paddr == 0 || info.memmap_entries == 0 {
        return Err(StartInfoError::NoMemoryMap);
    }
    if info.memmap_entries as usize > MAX_REGIONS {
        return Err(StartInfoError::TooManyEntries(info.memmap_entries));
    }
    Ok(info)
}

/// Usable RAM: the RAM entries of a memory map, page-aligned inward, sorted, merged.
#[derive(Clone, Copy, Debug)]
pub struct RamMap {
    regions: [Region; MAX_REGIONS],
    len: usize,
}

impl RamMap {
    /// Builds the RAM map from raw memory map entries (`MEMMAP_ENTRY_SIZE` bytes each).
    pub fn from_entries(raw: &[u8]) -> Result<RamMap, StartInfoError> {
        let n = raw.len() / MEMMAP_ENTRY_SIZE;
        if n > MAX_REGIONS {
            return Err(StartInfoError::TooManyEntries(n as u32));
        }
        let mut map = RamMap {
            regions: [Region::default(); MAX_REGIONS],
            len: 0,
        };
        for e in raw.chunks_exact(MEMMAP_ENTRY_SIZE) {
            let (addr, size, ty) = (u64_at(e, 0), u64_at(e, 8), u32_at(e, 16));
            if ty != E820_RAM {
                continue;
            }
            let start = addr.saturating_add(0xfff) & !0xfff;
            let end = addr.saturating_add(size) & !0xfff;
            if end > start {
                map.regions[map.len] = Region { start, end };
                map.len += 1;
            }
        }
        map.regions[..map.len].sort_unstable_by_key(|r| r.start);
        // Merge touching or overlapping regions.
        let mut out = 0;
        for i in 0..map.len {
            let r = map.regions[i];
            if out > 0 && r.start <= map.regions[out - 1].end {
                let last = &mut map.regions[out - 1];
                last.end = last.end.max(r.end);
            } else {
                map.regions[out] = r;
                out += 1;
            }
        }
        map.len = out;
        if map.top() <= 0x10_0000 {
            return Err(StartInfoError::NoRam);
        }
        Ok(map)
    }

    /// The RAM regions.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// End of the highest RAM region.
    pub fn top(&self) -> u64 {
        self.regions().last().map_or(0, |r| r.end)
    }

    /// Total RAM bytes.
    pub fn total(&self) -> u64 {
        self.regions().iter().map(Region::len).sum()
    }

    /// Whether `[addr, addr + len)` lies inside one RAM region.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        self.regions()
            .iter()
            .any(|r| addr >= r.start && end <= r.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(addr: u64, size: u64, ty: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&addr.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v
    }

    fn start_info(version: u32, cmdline: u64, memmap: u64, n: u32) -> [u8; START_INFO_SIZE] {
        let mut b = [0u8; START_INFO_SIZE];
        b[0..4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&version.to_le_bytes());
        b[24..32].copy_from_slice(&cmdline.to_le_bytes());
        b[40..48].copy_from_slice(&memmap.to_le_bytes());
        b[48..52].copy_from_slice(&n.to_le_bytes());
        b
    }

    #[test]
    fn parses_start_info() {
        let si = parse_start_info(&start_info(1, 0x7000, 0x6040, 3)).unwrap();
        assert_eq!(si.cmdline_paddr, 0x7000);
        assert_eq!(si.memmap_paddr, 0x6040);
        assert_eq!(si.memmap_entries, 3);
    }

    #[test]
    fn rejects_bad_magic_and_version0() {
        let mut b = start_info(1, 0, 0x6040, 1);
        b[0] ^= 1;
        assert!(matches!(
            parse_start_info(&b),
            Err(StartInfoError::BadMagic(_))
        ));
        assert_eq!(
            parse_start_info(&start_info(0, 0, 0, 0)),
            Err(StartInfoError::NoMemoryMap)
        );
        assert_eq!(
            parse_start_info(&start_info(1, 0, 0x6040, 99)),
            Err(StartInfoError::TooManyEntries(99))
        );
    }

    #[test]
    fn ram_map_filters_aligns_sorts_merges() {
        let mut raw = Vec::new();
        raw.extend(entry(0x10_0000, 0x70_0000, E820_RAM));
        raw.extend(entry(0, 0x9fc00, E820_RAM));
        raw.extend(entry(0x9fc00, 0x60400, 2));
        raw.extend(entry(0x80_0000, 0x80_0800, E820_RAM)); // touches the first; unaligned end
        raw.extend(entry(0xfeff_c000, 0x4000, 2));
        let m = RamMap::from_entries(&raw).unwrap();
        assert_eq!(
            m.regions(),
            &[
                Region {
                    start: 0,
                    end: 0x9f000
                },
                Region {
                    start: 0x10_0000,
                    end: 0x100_0000
                }
            ]
        );
        assert_eq!(m.top(), 0x100_0000);
        assert_eq!(m.total(), 0x9f000 + 0xf0_0000);
        assert!(m.contains(0x20_0000, 0x1000));
        assert!(!m.contains(0xa0000, 0x10));
        assert!(!m.contains(u64::MAX, 2));
    }

    #[test]
    fn ram_map_needs_memory_above_1mib() {
        let raw = entry(0, 0x9fc00, E820_RAM);
        assert_eq!(
            RamMap::from_entries(&raw).unwrap_err(),
            StartInfoError::NoRam
        );
    }
}
