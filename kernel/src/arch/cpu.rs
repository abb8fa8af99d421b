//! Thin wrappers over privileged x86-64 instructions (port IO, MSRs, control registers, TSC,
//! CPUID, interrupt flag). Each wrapper is one instruction; callers own the semantics.
use core::arch::asm;

/// Writes a byte to an IO port.
///
/// # Safety
/// Port IO can reconfigure devices; the caller must own the device behind `port`.
#[inline]
pub unsafe fn outb(port: u16, val: u8) {
    // SAFETY: the caller guarantees the port write is meaningful (see the function contract).
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") val, options(nomem, nostack, preserves_flags))
    }
}

/// Reads a byte from an IO port.
///
/// # Safety
/// Reading some ports has side effects; the caller must own the device behind `port`.
#[inline]
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as in the function contract.
    unsafe {
        asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a 32-bit value to an IO port.
///
/// # Safety
/// As [`outb`].
#[inline]
pub unsafe fn outl(port: u16, val: u32) {
    // SAFETY: as in the function contract.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") val, options(nostack, preserves_flags)) }
}

/// Reads a 32-bit value from an IO port.
///
/// # Safety
/// As [`inb`].
#[inline]
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as in the function contract.
    unsafe {
        asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a model-specific register.
///
/// # Safety
/// Reading an MSR the CPU does not implement raises #GP.
#[inline]
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: as in the function contract.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// MSRs control the CPU; the caller must know the effect of the write.
#[inline]
pub unsafe fn wrmsr(msr: u32, val: u64) {
    // SAFETY: as in the function contract.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") val as u32, in("edx") (val >> 32) as u32,
             options(nostack, preserves_flags))
    }
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter; CR4.TSD is never set by ferrix.
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Result of one CPUID leaf.
#[derive(Clone, Copy, Debug)]
pub struct Cpuid {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Executes CPUID for `leaf`/`subleaf`.
#[inline]
pub fn cpuid(leaf: u32, subleaf: u32) -> Cpuid {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    Cpuid {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Reads CR2 (the faulting address of the last page fault).
#[inline]
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects; ferrix runs in ring 0.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR3 (the page-table root).
#[inline]
pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects; ferrix runs in ring 0.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3 (switches page tables, flushing non-global TLB entries).
///
/// # Safety
/// `root` must be a valid PML4 that maps the running code, stack and data identically.
#[inline]
pub unsafe fn write_cr3(root: u64) {
    // SAFETY: as in the function contract.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) }
}

/// Invalidates the TLB entry of one page.
#[inline]
pub fn invlpg(addr: u64) {
    // SAFETY: invalidating a TLB entry is always safe; the next access re-walks the tables.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) }
}

/// Enables interrupts. Also a compiler barrier (no `nomem`): memory accesses are not moved
/// across it, so code that must run with interrupts off (it holds a lock an interrupt handler
/// takes) stays on the right side.
#[inline]
pub fn enable_interrupts() {
    // SAFETY: ferrix installs its IDT before any core enables interrupts; sti changes only IF.
    unsafe { asm!("sti", options(nostack)) }
}

/// Disables interrupts (a compiler barrier too, see [`enable_interrupts`]).
#[inline]
pub fn disable_interrupts() {
    // SAFETY: clearing IF only defers interrupts; no memory is touched.
    unsafe { asm!("cli", options(nostack)) }
}

/// Whether interrupts are enabled on this core.
#[inline]
pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: reading RFLAGS has no side effects.
    unsafe { asm!("pushfq; pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    flags & (1 << 9) != 0
}

/// Halts until the next interrupt (with interrupts enabled, atomically: `sti; hlt`).
#[inline]
pub fn wait_for_interrupt() {
    // SAFETY: `sti; hlt` sleeps until an interrupt; the IDT is installed before this runs.
    unsafe { asm!("sti; hlt", options(nomem, nostack)) }
}

/// Halts forever with interrupts disabled.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` stops the core; nothing is left to run on it.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}

/// Current frame pointer (RBP), for backtraces.
#[inline(always)]
pub fn frame_pointer() -> u64 {
    let v: u64;
    // SAFETY: reading RBP has no side effects.
    unsafe { asm!("mov {}, rbp", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// MSR numbers used by ferrix.
pub mod msr {
    pub const IA32_APIC_BASE: u32 = 0x1b;
    pub const IA32_EFER: u32 = 0xc000_0080;
    pub const IA32_GS_BASE: u32 = 0xc000_0101;
    /// First x2APIC register MSR; register at xAPIC offset `o` is `X2APIC_BASE + (o >> 4)`.
    pub const X2APIC_BASE: u32 = 0x800;
}
