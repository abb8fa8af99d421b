//! The local APIC in x2APIC mode (MSRs) when the CPU offers it, xAPIC (MMIO at the APIC base)
//! otherwise (QEMU's TCG has no x2APIC). Enable, EOI, IPIs (fixed, INIT, SIPI), and the timer.

use super::cpu::{cpuid, msr, rdmsr, wrmsr};
use super::vectors::SPURIOUS_VECTOR;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static X2APIC: AtomicBool = AtomicBool::new(false);
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);

// Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16).
const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const ICR_LEVEL_ASSERT: u64 = 1 << 14;
const ICR_DELIVERY_PENDING: u64 = 1 << 12;
const ICR_INIT: u64 = 5 << 8;
const ICR_STARTUP: u64 = 6 << 8;
const ICR_ALL_EXCLUDING_SELF: u64 = 3 << 18;
const ICR_ALL_INCLUDING_SELF: u64 = 2 << 18;

/// Timer divide configuration value for "divide by 16".
pub const TIMER_DIVIDE_16: u32 = 0b0011;

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is enabled on this core; reg is an architectural APIC register.
        unsafe { rdmsr(msr::X2APIC_BASE + (reg >> 4)) as u32 }
    } else {
        // SAFETY: the xAPIC page is identity-mapped uncached; reg is a valid register offset.
        unsafe {
            ((XAPIC_BASE.load(Ordering::Relaxed) + u64::from(reg)) as *const u32).read_volatile()
        }
    }
}

fn write(reg: u32, val: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`.
        unsafe { wrmsr(msr::X2APIC_BASE + (reg >> 4), u64::from(val)) }
    } else {
        // SAFETY: as in `read`.
        unsafe {
            ((XAPIC_BASE.load(Ordering::Relaxed) + u64::from(reg)) as *mut u32).write_volatile(val)
        }
    }
}

/// Whether the APIC runs in x2APIC mode.
pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// Enables this core's local APIC (x2APIC if available), masks LINT0/1 and error, and sets
/// the spurious vector. Called on every core; the first call picks the mode.
pub fn init_this_cpu() {
    let x2 = cpuid(1, 0).ecx & (1 << 21) != 0;
    X2APIC.store(x2, Ordering::Relaxed);
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; setting the enable (and x2APIC)
    // bits is the architectural way to turn the APIC on.
    unsafe {
        let base = rdmsr(msr::IA32_APIC_BASE);
        XAPIC_BASE.store(base & 0xf_ffff_f000, Ordering::Relaxed);
        let mut v = base | (1 << 11);
        if x2 {
            v |= 1 << 10;
        }
        wrmsr(msr::IA32_APIC_BASE, v);
    }
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
}

/// This core's APIC id.
pub fn id() -> u32 {
    if is_x2apic() {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    }
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

fn send_icr(dest: u32, low: u64) {
    if is_x2apic() {
        // SAFETY: the x2APIC ICR takes destination (high 32 bits) and command in one write.
        unsafe {
            wrmsr(
                msr::X2APIC_BASE + (REG_ICR_LOW >> 4),
                (u64::from(dest) << 32) | low,
            )
        };
    } else {
        write(REG_ICR_HIGH, dest << 24);
        write(REG_ICR_LOW, low as u32);
        for _ in 0..1_000_000 {
            if u64::from(read(REG_ICR_LOW)) & ICR_DELIVERY_PENDING == 0 {
                break;
            }
            core::hint::spin_loop();
        }
    }
}

/// Sends a fixed interrupt with `vector` to the core with APIC id `dest`.
pub fn send_ipi(dest: u32, vector: u8) {
    send_icr(dest, ICR_LEVEL_ASSERT | u64::from(vector));
}

/// Sends `vector` to every other core.
pub fn send_ipi_all_others(vector: u8) {
    send_icr(
        0,
        ICR_ALL_EXCLUDING_SELF | ICR_LEVEL_ASSERT | u64::from(vector),
    );
}

/// Sends `vector` to every core including this one.
pub fn send_ipi_all(vector: u8) {
    send_icr(
        0,
        ICR_ALL_INCLUDING_SELF | ICR_LEVEL_ASSERT | u64::from(vector),
    );
}

/// Sends INIT (assert) to `dest`.
pub fn send_init(dest: u32) {
    send_icr(dest, ICR_INIT | ICR_LEVEL_ASSERT);
}

/// Sends a start-up IPI: `dest` starts in real mode at `page << 12`.
pub fn send_sipi(dest: u32, page: u8) {
    send_icr(dest, ICR_STARTUP | ICR_LEVEL_ASSERT | u64::from(page));
}

/// Starts the timer: `vector` every `count` ticks (divide by 16); `periodic` or one-shot.
pub fn timer_start(vector: u8, count: u32, periodic: bool) {
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_16);
    write(
        REG_LVT_TIMER,
        u32::from(vector) | if periodic { LVT_PERIODIC } else { 0 },
    );
    write(REG_TIMER_INIT, count);
}

/// Stops the timer.
pub fn timer_stop() {
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INIT, 0);
}

/// Starts a masked one-shot countdown from `count` (for calibration).
pub fn timer_calibration_start(count: u32) {
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_16);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INIT, count);
}

/// The timer's current count.
pub fn timer_current() -> u32 {
    read(REG_TIMER_CURRENT)
}
