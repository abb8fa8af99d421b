//! Which VMM runs us (the ferrix shim or QEMU), the shim's hypercalls, and the exit protocol.
//!
//! Detection reads the shim's probe port once at boot: the shim answers `PROBE_MAGIC`, QEMU
//! answers something else for an unassigned port. Exit: the shim's exit port, or QEMU's
//! `isa-debug-exit` device at port 0xf4 (QEMU then exits with status `(code << 1) | 1`).

use super::cpu::{halt_forever, inl, outl};
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use ferrix_abi::{
    ABI_VERSION, HypercallBlock, MIN_ABI_VERSION, PORT_EXIT, PORT_HYPERCALL, PORT_PROBE,
    PORT_VERSION, PROBE_MAGIC, nr,
};

/// QEMU `isa-debug-exit` port (set in the qemu/ profiles).
pub const QEMU_DEBUG_EXIT_PORT: u16 = 0xf4;

/// The virtual machine monitor below us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vmm {
    /// QEMU (or any VMM without the ferrix hypercall interface): 16550 serial + isa-debug-exit.
    Qemu,
    /// The ferrix shim: hypercall console and exit.
    Shim,
}

static VMM: AtomicU8 = AtomicU8::new(0);
/// The ABI version spoken with the shim: the lower of ours and the shim's.
static VERSION: AtomicU32 = AtomicU32::new(MIN_ABI_VERSION);

/// Probes the VMM; called once by the boot CPU before the console is used.
pub fn detect() -> Vmm {
    // SAFETY: reading the probe port has no side effects under the shim; under QEMU the port
    // is unassigned and reads return a fixed pattern.
    let magic = unsafe { inl(PORT_PROBE) };
    let vmm = if magic == PROBE_MAGIC {
        // SAFETY: as above; the shim answers its ABI version.
        let version = unsafe { inl(PORT_VERSION) };
        if version < MIN_ABI_VERSION {
            // Too old to trust its console: report through the exit code only.
            // SAFETY: the exit port ends the VM; nothing runs after it.
            unsafe { outl(PORT_EXIT, ferrix_abi::exit::BOOT_FAILED) };
        }
        VERSION.store(version.min(ABI_VERSION), Ordering::Relaxed);
        Vmm::Shim
    } else {
        Vmm::Qemu
    };
    VMM.store(vmm as u8 + 1, Ordering::Release);
    vmm
}

/// The VMM found by [`detect`] (QEMU before detection).
pub fn current() -> Vmm {
    if VMM.load(Ordering::Acquire) == Vmm::Shim as u8 + 1 {
        Vmm::Shim
    } else {
        Vmm::Qemu
    }
}

/// Issues a hypercall described by `block` (which must live below 4 GiB: kernel statics and
/// stacks do, the image is linked at 1 MiB and guest RAM is identity-mapped).
pub fn hypercall(block: &mut HypercallBlock) -> i64 {
    block.version = VERSION.load(Ordering::Relaxed);
    let addr = block as *mut HypercallBlock as u64;
    debug_assert!(addr < (1 << 32));
    // SAFETY: the shim reads the block at `addr` (identity-mapped: virtual == physical) and
    // writes back `ret`; the volatile read below observes that write.
    unsafe {
        outl(PORT_HYPERCALL, addr as u32);
        core::ptr::addr_of!(block.ret).read_volatile()
    }
}

/// Sends one live statistics record (`ferrix_abi::stats`) to the host: the shim's
/// `STATS_PUSH` hypercall (if the shim is new enough), or QEMU's `isa-debugcon` at
/// `QEMU_STATS_PORT` (without that device the writes go nowhere). Safe from interrupt
/// handlers: no lock, no allocation.
pub fn push_stats(record: &[u8]) {
    match current() {
        Vmm::Shim => {
            if VERSION.load(Ordering::Relaxed) >= nr::since(nr::STATS_PUSH) {
                let mut blk = HypercallBlock {
                    nr: nr::STATS_PUSH,
                    args: [record.as_ptr() as u64, record.len() as u64, 0, 0],
                    ..Default::default()
                };
                hypercall(&mut blk);
            }
        }
        Vmm::Qemu => {
            // `cld` first: an interrupt handler may run while the interrupted code had DF set.
            // The stats port belongs to this function alone.
            // SAFETY: `rep outsb` only reads `record.len()` bytes of the live slice `record`.
            unsafe {
                core::arch::asm!(
                    "cld",
                    "rep outsb",
                    in("dx") ferrix_abi::stats::QEMU_STATS_PORT,
                    inout("rsi") record.as_ptr() => _,
                    inout("rcx") record.len() => _,
                    options(nostack, readonly)
                );
            }
        }
    }
}

/// Ends the VM with `code` under either VMM. Never returns.
pub fn exit(code: u32) -> ! {
    // SAFETY: both ports end the VM; if neither device exists the core halts below.
    unsafe {
        match current() {
            Vmm::Shim => outl(PORT_EXIT, code),
            Vmm::Qemu => outl(QEMU_DEBUG_EXIT_PORT, code),
        }
    }
    halt_forever()
}
