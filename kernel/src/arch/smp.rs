//! Starting the other vCPUs: INIT-SIPI-SIPI to each APIC id in turn (the same path under QEMU
//! and under the shim, whose in-kernel irqchip holds APs in wait-for-SIPI). A 16-bit trampoline
//! copied to [`TRAMPOLINE`] goes real mode -> protected mode -> long mode with the kernel's page
//! tables and jumps to `ap_entry` on a fresh guarded stack.

use super::apic;
use super::boot::BOOT_STACK_SIZE;
use crate::arch::cpu::rdtsc;
use crate::time::{ns_to_ticks, tsc_hz};
use core::arch::global_asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Physical address of the trampoline (below 1 MiB, page aligned: SIPI vector 0x08).
pub const TRAMPOLINE: u64 = 0x8000;

global_asm!(
    r#"
    .section .rodata.trampoline, "a"
    .global ferrix_ap_trampoline
    .global ferrix_ap_trampoline_end
    .set TBASE, 0x8000
ferrix_ap_trampoline:
    .code16
    cli
    cld
    mov ax, cs
    mov ds, ax
    /* o32 lgdt [MAILBOX_GDTR] (DS = 0x800, so the offset is MAILBOX - TBASE) */
    .byte 0x66, 0x0f, 0x01, 0x16
    .word {gdtr} - 0x8000
    mov eax, cr0
    or al, 1
    mov cr0, eax
    /* o32 ljmp 0x18:pm32 */
    .byte 0x66, 0xea
    .long TBASE + (tr_pm32 - ferrix_ap_trampoline)
    .word 0x18

    .code32
tr_pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, dword ptr [{cr3}]
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax
    .byte 0xea
    .long TBASE + (tr_lm64 - ferrix_ap_trampoline)
    .word 0x08

    .code64
tr_lm64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, qword ptr [{stack}]
    mov rdi, qword ptr [{arg}]
    mov rax, qword ptr [{entry}]
    xor ebp, ebp
    call rax
4:
    cli
    hlt
    jmp 4b
ferrix_ap_trampoline_end:
    .code64
    "#,
    gdtr = const MAILBOX_GDTR,
    cr3 = const MAILBOX_CR3,
    stack = const MAILBOX_STACK,
    entry = const MAILBOX_ENTRY,
    arg = const MAILBOX_ARG,
);

unsafe extern "C" {
    static ferrix_ap_trampoline: u8;
    static ferrix_ap_trampoline_end: u8;
    static ferrix_boot_gdt: u8;
}

/// The mailbox: fixed addresses in the trampoline page, past the code, that the boot CPU fills
/// before each SIPI. GDTR (limit u16 + 32-bit base), then CR3, stack top, entry, argument.
const MAILBOX_GDTR: u64 = TRAMPOLINE + 0xf00;
const MAILBOX_CR3: u64 = TRAMPOLINE + 0xf10;
const MAILBOX_STACK: u64 = TRAMPOLINE + 0xf18;
const MAILBOX_ENTRY: u64 = TRAMPOLINE + 0xf20;
const MAILBOX_ARG: u64 = TRAMPOLINE + 0xf28;
/// Boot GDT limit: four descriptors.
const BOOT_GDT_LIMIT: u64 = 4 * 8 - 1;

/// Cores that have reached Rust (the boot CPU counts as one).
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// Number of cores that have started.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Called by each AP from its entry once its per-CPU state is up.
pub fn mark_online() {
    ONLINE.fetch_add(1, Ordering::AcqRel);
}

/// Why an AP did not start.
#[derive(Debug)]
pub enum SmpError {
    TrampolineTooBig(usize),
    NoStack(usize),
    Timeout(usize),
}

fn wait_until(deadline_ns: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = rdtsc().saturating_add(ns_to_ticks(deadline_ns, tsc_hz()));
    while rdtsc() < end {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    done()
}

/// Starts cores 1..n (APIC ids 1..n, as QEMU and the shim number them), one at a time.
/// `entry(core_id)` runs on each new core's stack.
pub fn start_aps(n: usize, cr3: u64, entry: extern "C" fn(usize) -> !) -> Result<(), SmpError> {
    if n <= 1 {
        return Ok(());
    }
    // Linker symbols bounding the trampoline bytes in .rodata; only addresses are taken.
    let (start, end) = (
        core::ptr::addr_of!(ferrix_ap_trampoline),
        core::ptr::addr_of!(ferrix_ap_trampoline_end),
    );
    let len = end as usize - start as usize;
    if len > (MAILBOX_GDTR - TRAMPOLINE) as usize {
        return Err(SmpError::TrampolineTooBig(len));
    }
    // SAFETY: [TRAMPOLINE, +4 KiB) is low RAM below 1 MiB that the frame allocator never hands
    // out (its floor is 1 MiB), identity-mapped; only the boot CPU writes it, before SIPI.
    unsafe { core::ptr::copy_nonoverlapping(start, TRAMPOLINE as *mut u8, len) };
    let mailbox = |addr: u64, v: u64| {
        // SAFETY: mailbox words lie in the trampoline page past the code, 8-byte aligned.
        unsafe { (addr as *mut u64).write_volatile(v) }
    };
    let gdt = core::ptr::addr_of!(ferrix_boot_gdt) as u64;
    mailbox(MAILBOX_GDTR, BOOT_GDT_LIMIT | (gdt << 16));
    mailbox(MAILBOX_CR3, cr3);
    mailbox(MAILBOX_ENTRY, entry as usize as u64);
    let me = apic::id();
    let mut apic_id = 0u32;
    for core in 1..n {
        if apic_id == me {
            apic_id += 1;
        }
        let stack = crate::mem::kernel::alloc_stack(BOOT_STACK_SIZE as u64)
            .map_err(|_| SmpError::NoStack(core))?;
        mailbox(MAILBOX_STACK, stack);
        mailbox(MAILBOX_ARG, core as u64);
        let want = ONLINE.load(Ordering::Acquire) + 1;
        apic::send_init(apic_id);
        crate::time::delay_ns(1_000_000);
        apic::send_sipi(apic_id, (TRAMPOLINE >> 12) as u8);
        if !wait_until(20_000_000, || ONLINE.load(Ordering::Acquire) >= want) {
            apic::send_sipi(apic_id, (TRAMPOLINE >> 12) as u8);
            // Emulated CPUs (nested KVM here) can take long to run the trampoline.
            if !wait_until(10_000_000_000, || ONLINE.load(Ordering::Acquire) >= want) {
                return Err(SmpError::Timeout(core));
            }
        }
        apic_id += 1;
    }
    Ok(())
}
