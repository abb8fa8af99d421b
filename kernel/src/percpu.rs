//! Per-CPU data, reached through the GS base: each core's id, APIC id, GDT, TSS and counters.

use crate::arch::gdt::{Gdt, Tss};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Most CPUs ferrix runs on.
pub const MAX_CPUS: usize = 64;

/// One core's private area. `self_ptr` must stay the first field (read through `gs:[0]`).
#[repr(C, align(64))]
pub struct PerCpu {
    self_ptr: u64,
    /// Core id: 0 for the boot CPU, then in start order.
    pub id: usize,
    /// Local APIC id.
    pub apic_id: u32,
    pub gdt: Gdt,
    pub tss: Tss,
    /// Set while this core is handling an exception (nested-fault detection).
    pub in_exception: AtomicBool,
    /// Interrupts taken, by kind.
    pub timer_ticks: AtomicU64,
    pub ipis_received: AtomicU64,
}

impl PerCpu {
    const fn new() -> PerCpu {
        PerCpu {
            self_ptr: 0,
            id: 0,
            apic_id: 0,
            gdt: Gdt::new(),
            tss: Tss::new(),
            in_exception: AtomicBool::new(false),
            timer_ticks: AtomicU64::new(0),
            ipis_received: AtomicU64::new(0),
        }
    }
}

#[cfg(target_os = "none")]
mod imp {
    use super::*;
    use crate::arch::cpu::{msr, wrmsr};
    use core::arch::asm;

    static mut CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
    static READY: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

    /// Initialises core `id`'s area, points GS at it and loads its GDT/TSS. `ist` holds the
    /// tops of its IST stacks.
    ///
    /// # Safety
    /// Called once per core, on that core, before any other per-CPU access.
    pub unsafe fn init(
        id: usize,
        apic_id: u32,
        ist: [u64; crate::arch::gdt::IST_COUNT],
    ) -> &'static PerCpu {
        // SAFETY: each core initialises only its own slot, once, before publishing it.
        let cpu: &'static mut PerCpu = unsafe { &mut (*core::ptr::addr_of_mut!(CPUS))[id] };
        cpu.self_ptr = cpu as *mut PerCpu as u64;
        cpu.id = id;
        cpu.apic_id = apic_id;
        let mut slots = [0u64; 7];
        slots[..ist.len()].copy_from_slice(&ist);
        cpu.tss.ist = slots;
        let tss: *const Tss = &cpu.tss;
        // SAFETY: tss points into the same 'static slot.
        cpu.gdt.set_tss(unsafe { &*tss });
        // SAFETY: GS base points at this core's 'static area; the GDT and TSS are 'static.
        unsafe {
            wrmsr(msr::IA32_GS_BASE, cpu.self_ptr);
            let cpu: &'static PerCpu = cpu;
            cpu.gdt.load();
        }
        READY[id].store(true, Ordering::Release);
        // SAFETY: re-borrow shared; no more mutation.
        unsafe { &(*core::ptr::addr_of!(CPUS))[id] }
    }

    /// This core's area, if initialised.
    pub fn try_this() -> Option<&'static PerCpu> {
        let p: u64;
        // SAFETY: reads gs:[0]; GS base is 0 until `init`, and ferrix keeps address 0
        // unmapped, so check the GS base MSR instead of dereferencing blindly.
        let base = unsafe { crate::arch::cpu::rdmsr(msr::IA32_GS_BASE) };
        if base == 0 {
            return None;
        }
        // SAFETY: GS base points at an initialised PerCpu whose first field is self_ptr.
        unsafe { asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags)) };
        // SAFETY: self_ptr points at the 'static PerCpu slot of this core.
        Some(unsafe { &*(p as *const PerCpu) })
    }

    /// Core `id`'s area, if that core is up.
    pub fn get(id: usize) -> Option<&'static PerCpu> {
        if id < MAX_CPUS && READY[id].load(Ordering::Acquire) {
            // SAFETY: the slot was initialised before READY was set and is not mutated after.
            Some(unsafe { &(*core::ptr::addr_of!(CPUS))[id] })
        } else {
            None
        }
    }
}

#[cfg(target_os = "none")]
pub use imp::*;

/// This core's id, if per-CPU data is set up.
#[cfg(target_os = "none")]
pub fn try_core_id() -> Option<usize> {
    try_this().map(|c| c.id)
}

/// This core's id (0 before per-CPU setup).
#[cfg(target_os = "none")]
pub fn core_id() -> usize {
    try_core_id().unwrap_or(0)
}
