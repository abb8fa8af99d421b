//! The PVH boot data the shim writes into guest RAM: `hvm_start_info`, the memory map and the
//! command line (layout: <https://xenbits.xen.org/docs/unstable/misc/pvh.html>).
//!
//! | GPA      | content                                   |
//! |----------|-------------------------------------------|
//! | 0x6000   | `hvm_start_info` (56 bytes, version 1)    |
//! | 0x6040   | memory map, 3 × `hvm_memmap_table_entry`  |
//! | 0x7000   | command line, NUL-terminated, ≤ 2047 bytes |

use crate::error::ShimError;
use crate::hypercall::GuestMem;

/// Guest-physical address of `hvm_start_info` (handed to the guest in RBX).
pub const START_INFO_GPA: u64 = 0x6000;
/// Guest-physical address of the memory map.
pub const MEMMAP_GPA: u64 = 0x6040;
/// Guest-physical address of the command line.
pub const CMDLINE_GPA: u64 = 0x7000;
/// Longest command line (without its NUL).
pub const CMDLINE_MAX: usize = 2047;
/// Start of the boot data area that image segments must not overlap.
pub const BOOT_DATA_START: u64 = START_INFO_GPA;
/// End (exclusive) of the boot data area.
pub const BOOT_DATA_END: u64 = CMDLINE_GPA + CMDLINE_MAX as u64 + 1;

/// `hvm_start_info.magic`.
pub const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
/// E820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;

const _: () = assert!(START_INFO_GPA + 56 <= MEMMAP_GPA);
const _: () = assert!(MEMMAP_GPA + 3 * 24 <= CMDLINE_GPA);

/// Builds the final command line: the user's plus ` ferrix.cpus=N`.
pub fn cmdline(user: &str, cpus: u32) -> Result<String, ShimError> {
    let user = user.trim();
    let line = if user.is_empty() {
        format!("ferrix.cpus={cpus}")
    } else {
        format!("{user} ferrix.cpus={cpus}")
    };
    if line.as_bytes().contains(&0) {
        return Err(ShimError::CmdlineNul);
    }
    if line.len() > CMDLINE_MAX {
        return Err(ShimError::CmdlineTooLong {
            len: line.len(),
            max: CMDLINE_MAX,
        });
    }
    Ok(line)
}

/// The memory map for `mem` bytes of RAM: `(addr, size, type)`.
pub fn memory_map(mem: u64) -> [(u64, u64, u32); 3] {
    [
        (0, 0x9fc00, E820_RAM),
        (0x9fc00, 0x10_0000 - 0x9fc00, E820_RESERVED),
        (0x10_0000, mem - 0x10_0000, E820_RAM),
    ]
}

/// Encodes `hvm_start_info` (56 bytes, little-endian).
fn start_info_bytes(memmap_entries: u32) -> [u8; 56] {
    let mut b = [0u8; 56];
    b[0..4].copy_from_slice(&XEN_HVM_START_MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
    // flags (8..12), nr_modules (12..16), modlist_paddr (16..24): zero.
    b[24..32].copy_from_slice(&CMDLINE_GPA.to_le_bytes());
    // rsdp_paddr (32..40): zero, no ACPI.
    b[40..48].copy_from_slice(&MEMMAP_GPA.to_le_bytes());
    b[48..52].copy_from_slice(&memmap_entries.to_le_bytes());
    b
}

/// Writes start info, memory map and command line into guest RAM.
pub fn write(mem: &dyn GuestMem, cmdline: &str) -> Result<(), ShimError> {
    let map = memory_map(mem.size());
    let mut ok = mem.write(START_INFO_GPA, &start_info_bytes(map.len() as u32));
    for (i, (addr, size, ty)) in map.iter().enumerate() {
        let mut e = [0u8; 24];
        e[0..8].copy_from_slice(&addr.to_le_bytes());
        e[8..16].copy_from_slice(&size.to_le_bytes());
        e[16..20].copy_from_slice(&ty.to_le_bytes());
        ok &= mem.write(MEMMAP_GPA + 24 * i as u64, &e);
    }
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    ok &= mem.write(CMDLINE_GPA, &line);
    if ok {
        Ok(())
    } else {
        Err(ShimError::Host {
            op: "writing PVH start info",
            source: std::io::Error::other("guest memory write failed"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_appends_cpus() {
        assert_eq!(cmdline("", 2).unwrap(), "ferrix.cpus=2");
        assert_eq!(cmdline("  ", 1).unwrap(), "ferrix.cpus=1");
        assert_eq!(cmdline("quiet x=1", 4).unwrap(), "quiet x=1 ferrix.cpus=4");
    }

    #[test]
    fn cmdline_limits() {
        let long = "a".repeat(CMDLINE_MAX);
        let e = cmdline(&long, 1).unwrap_err();
        assert!(matches!(e, ShimError::CmdlineTooLong { .. }), "{e}");
        assert!(e.to_string().contains("2047"));
        let fits = "a".repeat(CMDLINE_MAX - " ferrix.cpus=1".len());
        assert_eq!(cmdline(&fits, 1).unwrap().len(), CMDLINE_MAX);
        assert!(matches!(cmdline("a\0b", 1), Err(ShimError::CmdlineNul)));
    }

    #[test]
    fn layout() {
        let b = start_info_bytes(3);
        assert_eq!(&b[0..4], &0x336e_c578u32.to_le_bytes());
        let m = memory_map(128 << 20);
        assert_eq!(m[2], (0x10_0000, (128 << 20) - 0x10_0000, 1));
        assert_eq!(m[1].0 + m[1].1, 0x10_0000);
    }
}
