//! The boot sequence, from the first Rust code on the boot CPU to the app entry on every core.
//!
//! Boot CPU: detect the VMM, console, per-CPU area + GDT/TSS + IDT, memory (start_info, page
//! tables, heap, DMA), command line, APIC, clock calibration, start the APs, release everyone.
//! APs: per-CPU area, IDT, APIC, report online, wait for the release.

use crate::arch::gdt::IST_COUNT;
use crate::arch::{apic, boot, cpu, idt, smp, vmm};
use crate::percpu::MAX_CPUS;
use crate::{cmdline, console, mem, println, sdk, time};
use core::sync::atomic::{AtomicU64, Ordering};
use ferrix_abi::exit::BOOT_FAILED;

/// Size of each interrupt stack (a guard page lies below each).
pub const IST_STACK_SIZE: usize = 16 * 1024;

/// One boot-CPU interrupt stack with the guard page below it (unmapped by `mem::kernel::init`).
#[repr(C, align(4096))]
struct GuardedStack {
    guard: [u8; 4096],
    stack: [u8; IST_STACK_SIZE],
}

/// The boot CPU's interrupt stacks, static so that faults during early boot are reported
/// (APs get theirs from the frame allocator).
static mut BSP_IST: [GuardedStack; IST_COUNT] = [const {
    GuardedStack {
        guard: [0; 4096],
        stack: [0; IST_STACK_SIZE],
    }
}; IST_COUNT];

/// Interrupt-stack tops for each AP, prepared by the boot CPU before it starts the AP.
static AP_IST: [[AtomicU64; IST_COUNT]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; IST_COUNT] }; MAX_CPUS];

fn initial_apic_id() -> u32 {
    cpu::cpuid(1, 0).ebx >> 24
}

fn fail(what: &str, detail: &dyn core::fmt::Debug) -> ! {
    println!("ferrix: boot failed: {what}: {detail:?}");
    vmm::exit(BOOT_FAILED)
}

#[unsafe(no_mangle)]
extern "C" fn ferrix_boot_main(start_info: u64) -> ! {
    if vmm::detect() == vmm::Vmm::Qemu {
        console::init_serial();
    }
    let base = core::ptr::addr_of!(BSP_IST) as u64;
    let each = core::mem::size_of::<GuardedStack>() as u64;
    let ist: [u64; IST_COUNT] = core::array::from_fn(|i| base + (i as u64 + 1) * each);
    let mut guards = [boot::boot_stack_guard(); IST_COUNT + 1];
    for (i, g) in guards.iter_mut().skip(1).enumerate() {
        *g = base + i as u64 * each;
    }
    // SAFETY: first and only per-CPU init of core 0, on core 0.
    unsafe { crate::percpu::init(0, initial_apic_id(), ist) };
    idt::load();

    if let Err(e) = mem::kernel::init(start_info, &guards) {
        fail("memory", &e);
    }
    let opts = match cmdline::parse(mem::kernel::cmdline(), MAX_CPUS) {
        Ok(o) => o,
        Err(e) => fail("command line", &e),
    };
    apic::init_this_cpu();
    if !time::calibrate() {
        println!("ferrix: warning: no PIT to calibrate the TSC; assuming 1 GHz");
    }

    for (core, slots) in AP_IST.iter().enumerate().take(opts.cpus).skip(1) {
        for slot in slots {
            match mem::kernel::alloc_stack(IST_STACK_SIZE as u64) {
                Ok(top) => slot.store(top, Ordering::Relaxed),
                Err(e) => fail("interrupt stacks", &(core, e)),
            }
        }
    }
    if let Err(e) = smp::start_aps(opts.cpus, mem::kernel::page_table_root(), ap_entry) {
        fail("starting CPUs", &e);
    }
    crate::devices::init(mem::kernel::cmdline(), opts.cpus, opts.pci);
    if opts.netcost {
        crate::net::cost::enable();
    }
    if opts.profile_hz > 0 {
        crate::profile::enable(opts.profile_hz, opts.cpus);
    }
    crate::net::report::enable_live(opts.stats_ms);
    sdk::release(opts.cpus, opts.bootstats, opts.stats);
    sdk::run(0)
}

extern "C" fn ap_entry(core: usize) -> ! {
    let ist: [u64; IST_COUNT] = core::array::from_fn(|i| AP_IST[core][i].load(Ordering::Relaxed));
    // SAFETY: first and only per-CPU init of this core, on this core.
    unsafe { crate::percpu::init(core, initial_apic_id(), ist) };
    idt::load();
    apic::init_this_cpu();
    smp::mark_online();
    sdk::run(core)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let this = crate::percpu::try_this();
    let core = this.map_or(0, |c| c.id);
    if this.is_some_and(|c| c.in_exception.swap(true, Ordering::AcqRel)) {
        vmm::exit(ferrix_abi::exit::PANIC);
    }
    println!("ferrix: core {core} panicked: {info}");
    crate::arch::fault::backtrace(0, cpu::frame_pointer());
    vmm::exit(ferrix_abi::exit::PANIC)
}
