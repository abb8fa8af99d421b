//! Loading the guest image: a 64-bit little-endian ELF with a PVH entry note, loaded by
//! `linux_loader` at its segments' physical addresses after the shim checked that every
//! segment fits guest RAM and leaves the PVH boot data area alone.

use std::io::Cursor;
use std::path::Path;

use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::{Elf, Error as ElfError, PvhBootCapability};
use vm_memory::Address;

use crate::error::ShimError;
use crate::memory::GuestRam;
use crate::start_info::{BOOT_DATA_END, BOOT_DATA_START};

const PT_LOAD: u32 = 1;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

/// Reads the image file with the shim's error classes.
pub fn read_image(path: &Path) -> Result<Vec<u8>, ShimError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ShimError::ImageNotFound {
            path: path.to_owned(),
        },
        _ => ShimError::ImageRead {
            path: path.to_owned(),
            source: e,
        },
    })
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

/// Checks the ELF header and that every `PT_LOAD` segment lies inside `[0, mem)` and outside
/// the boot data area.
pub fn check_elf(path: &Path, img: &[u8], mem: u64) -> Result<(), ShimError> {
    let bad = |reason: &str| ShimError::BadImage {
        path: path.to_owned(),
        reason: reason.into(),
    };
    if img.len() < 4 || &img[0..4] != b"\x7fELF" {
        return Err(ShimError::NotElf {
            path: path.to_owned(),
        });
    }
    if img.len() < EHDR_SIZE {
        return Err(bad("truncated ELF header"));
    }
    if img[4] != 2 {
        return Err(bad("not a 64-bit ELF (ELFCLASS64 required)"));
    }
    if img[5] != 1 {
        return Err(bad("not a little-endian ELF"));
    }
    let phoff = u64_at(img, 32);
    let phentsize = u16_at(img, 54) as usize;
    let phnum = u16_at(img, 56) as u64;
    if phentsize != PHDR_SIZE {
        return Err(bad("unexpected program header size"));
    }
    let table_end = phnum
        .checked_mul(PHDR_SIZE as u64)
        .and_then(|n| n.checked_add(phoff))
        .ok_or_else(|| bad("program header table overflows"))?;
    if table_end > img.len() as u64 {
        return Err(bad("program header table lies outside the file"));
    }
    for i in 0..phnum {
        let o = (phoff + i * PHDR_SIZE as u64) as usize;
        let ph = &img[o..o + PHDR_SIZE];
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let (offset, paddr, filesz, memsz) = (
            u64_at(ph, 8),
            u64_at(ph, 24),
            u64_at(ph, 32),
            u64_at(ph, 40),
        );
        if offset
            .checked_add(filesz)
            .is_none_or(|e| e > img.len() as u64)
        {
            return Err(bad("a segment's file range lies outside the file"));
        }
        let size = memsz.max(filesz);
        if size == 0 {
            continue;
        }
        let end = paddr.checked_add(size).filter(|&e| e <= mem);
        let Some(end) = end else {
            return Err(ShimError::ImageTooBig {
                path: path.to_owned(),
                addr: paddr,
                end: paddr.saturating_add(size),
                mem,
            });
        };
        if paddr < BOOT_DATA_END && end > BOOT_DATA_START {
            return Err(bad(&format!(
                "segment {paddr:#x}..{end:#x} overlaps the PVH boot data area \
                 {BOOT_DATA_START:#x}..{BOOT_DATA_END:#x}"
            )));
        }
    }
    Ok(())
}

/// Loads the image into guest RAM and returns the PVH entry point.
pub fn load(path: &Path, img: Vec<u8>, ram: &GuestRam) -> Result<u64, ShimError> {
    use crate::hypercall::GuestMem;
    check_elf(path, &img, ram.size())?;
    let mut cursor = Cursor::new(img);
    let res = Elf::load(ram.mmap(), None, &mut cursor, None).map_err(|e| match e {
        linux_loader::loader::Error::Elf(ElfError::InvalidElfMagicNumber) => ShimError::NotElf {
            path: path.to_owned(),
        },
        e => ShimError::BadImage {
            path: path.to_owned(),
            reason: e.to_string(),
        },
    })?;
    match res.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) if addr.raw_value() < ram.size() => {
            Ok(addr.raw_value())
        }
        PvhBootCapability::PvhEntryPresent(addr) => Err(ShimError::BadImage {
            path: path.to_owned(),
            reason: format!(
                "PVH entry {:#x} lies outside guest memory",
                addr.raw_value()
            ),
        }),
        _ => Err(ShimError::NoPvhNote {
            path: path.to_owned(),
        }),
    }
}
