//! The hypercall ABI between a ferrix guest and the ferrix shim (VMM).
//!
//! Transport: x86 port IO, so a hypercall is one `in`/`out` instruction and one VM exit.
//!
//! * [`PORT_PROBE`]: a 32-bit `in` returns [`PROBE_MAGIC`] under the shim. Any other value
//!   (QEMU answers all-ones or zero for an unassigned port) means "not the shim". The guest
//!   then reads [`PORT_VERSION`] to learn the ABI version the shim speaks.
//! * [`PORT_EXIT`]: a 32-bit `out` of the exit code ends the VM with that code. It takes no
//!   memory argument so that it works even from a corrupted guest (panic, exception).
//! * [`PORT_HYPERCALL`]: a 32-bit `out` of the guest-physical address of a [`HypercallBlock`]
//!   (8-byte aligned, below 4 GiB). The shim validates every address and length in the block
//!   against guest memory, performs the call and writes [`HypercallBlock::ret`].
//!
//! Versioning: [`ABI_VERSION`] is bumped whenever a call is added or its meaning changes; the
//! block carries the version the guest speaks (the lower of its own and the shim's, read from
//! [`PORT_VERSION`]) and the shim refuses (with [`ERR_VERSION`]) a version outside
//! [`MIN_ABI_VERSION`]..=[`ABI_VERSION`]. A call newer than the block's version is unknown
//! ([`ERR_NR`]). History: 1 console write, exit; 2 adds [`nr::STATS_PUSH`].
#![no_std]

pub mod rss;
pub mod stats;

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 2;
/// The oldest ABI version a shim built from this crate still serves.
pub const MIN_ABI_VERSION: u32 = 1;

/// `in` (32 bit): returns [`PROBE_MAGIC`] under the shim.
pub const PORT_PROBE: u16 = 0x0f00;
/// `in` (32 bit): the ABI version the shim speaks.
pub const PORT_VERSION: u16 = 0x0f04;
/// `out` (32 bit): exit code; ends the VM.
pub const PORT_EXIT: u16 = 0x0f08;
/// `out` (32 bit): guest-physical address of a [`HypercallBlock`].
pub const PORT_HYPERCALL: u16 = 0x0f0c;

/// "FRX1" read as a little-endian u32.
pub const PROBE_MAGIC: u32 = u32::from_le_bytes(*b"FRX1");

/// Hypercall numbers ([`HypercallBlock::nr`]).
pub mod nr {
    /// Write `args[1]` bytes at guest-physical `args[0]` to the console.
    /// Returns the number of bytes written.
    pub const CONSOLE_WRITE: u32 = 1;
    /// Exit with code `args[0]` (same as an `out` to [`crate::PORT_EXIT`]).
    pub const EXIT: u32 = 2;
    /// Since ABI 2: one live statistics record (format: [`crate::stats`]) of `args[1]` bytes
    /// at guest-physical `args[0]`, at most [`crate::stats::RECORD_MAX`]. Returns the length.
    /// The shim hands the bytes to its host unparsed; the host validates them.
    pub const STATS_PUSH: u32 = 3;
    /// The ABI version that introduced each call.
    pub const fn since(nr: u32) -> u32 {
        match nr {
            STATS_PUSH => 2,
            _ => 1,
        }
    }
}

/// Largest console write the shim accepts in one call; longer writes are split by the guest.
pub const CONSOLE_MAX: u64 = 64 * 1024;

/// Highest sampling rate of the guest profiler (`ferrix.profile=HZ`, `ferrix run --profile-hz`).
pub const MAX_PROFILE_HZ: u32 = 1_000_000;

/// Return values (negative: error).
pub const OK: i64 = 0;
/// Unknown hypercall number.
pub const ERR_NR: i64 = -1;
/// An address/length argument falls outside guest memory.
pub const ERR_FAULT: i64 = -2;
/// Unsupported [`HypercallBlock::version`].
pub const ERR_VERSION: i64 = -3;
/// Argument out of range (e.g. a console write longer than [`CONSOLE_MAX`]).
pub const ERR_INVAL: i64 = -4;

/// The in-memory argument block of a [`PORT_HYPERCALL`] call. Little-endian, 48 bytes.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HypercallBlock {
    /// [`ABI_VERSION`] the guest was built for.
    pub version: u32,
    /// Call number (see [`nr`]).
    pub nr: u32,
    /// Arguments; meaning depends on `nr`.
    pub args: [u64; 4],
    /// Written by the shim: result (>= 0) or an `ERR_*` code.
    pub ret: i64,
}

impl HypercallBlock {
    /// Size of the block in guest memory.
    pub const SIZE: usize = 48;
    /// Offset of `ret` inside the block.
    pub const RET_OFFSET: usize = 40;

    /// Decodes a block from its little-endian bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(w)
        };
        HypercallBlock {
            version: u32_at(0),
            nr: u32_at(4),
            args: [u64_at(8), u64_at(16), u64_at(24), u64_at(32)],
            ret: u64_at(40) as i64,
        }
    }
}

/// Exit codes with a fixed meaning. Apps use 0 for success and 1..=99 for their own failures.
pub mod exit {
    /// Success.
    pub const SUCCESS: u32 = 0;
    /// A Rust panic in the guest.
    pub const PANIC: u32 = 101;
    /// An unhandled CPU exception in the guest (the console shows vector, error code, RIP, CR2).
    pub const EXCEPTION: u32 = 102;
    /// In-guest tests ran and at least one failed.
    pub const TEST_FAILED: u32 = 103;
    /// The kernel could not boot (bad start info, not enough memory, a CPU did not start).
    pub const BOOT_FAILED: u32 = 104;
    /// Host side: the VM was stopped by the timeout (same value as coreutils `timeout`).
    pub const HOST_TIMEOUT: u32 = 124;
    /// Host side: the guest reset itself (triple fault) or the VMM failed.
    pub const HOST_VM_FAILED: u32 = 125;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_layout_matches_constants() {
        assert_eq!(core::mem::size_of::<HypercallBlock>(), HypercallBlock::SIZE);
        assert_eq!(
            core::mem::offset_of!(HypercallBlock, ret),
            HypercallBlock::RET_OFFSET
        );
    }

    #[test]
    fn block_decodes_little_endian() {
        let mut b = [0u8; HypercallBlock::SIZE];
        b[0..4].copy_from_slice(&1u32.to_le_bytes());
        b[4..8].copy_from_slice(&nr::CONSOLE_WRITE.to_le_bytes());
        b[8..16].copy_from_slice(&0x1234_5678_9abc_u64.to_le_bytes());
        b[16..24].copy_from_slice(&42u64.to_le_bytes());
        b[40..48].copy_from_slice(&(-2i64).to_le_bytes());
        let blk = HypercallBlock::from_bytes(&b);
        assert_eq!(blk.version, 1);
        assert_eq!(blk.nr, nr::CONSOLE_WRITE);
        assert_eq!(blk.args, [0x1234_5678_9abc, 42, 0, 0]);
        assert_eq!(blk.ret, ERR_FAULT);
    }

    #[test]
    fn magic_is_frx1() {
        assert_eq!(PROBE_MAGIC.to_le_bytes(), *b"FRX1");
    }
}
