//! The IDT, the assembly entry stubs for every vector ferrix handles, and the common trap
//! dispatcher: exceptions are reported (vector, error code, RIP, CR2, registers, frame-pointer
//! backtrace) and end the VM with `exit::EXCEPTION`; the timer and IPI vectors run their
//! registered callbacks.

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI, IST_PAGE_FAULT, KERNEL_CS};
use core::arch::{asm, global_asm};
use core::sync::atomic::Ordering;

use super::vectors::{IPI_VECTOR, TIMER_VECTOR};

/// Registers saved by the entry stubs, lowest address first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// Stubs: vectors with a CPU-pushed error code push only the vector; others push a 0 first.
global_asm!(
    r#"
    .section .text.isr, "ax"
    .code64
    .altmacro
    .macro ISR n
    .balign 16
isr_\n:
    .if (\n == 8) || (\n == 10) || (\n == 11) || (\n == 12) || (\n == 13) || (\n == 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    push 0
    .endif
    push \n
    jmp isr_common
    .endm

    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,255
    ISR \n
    .endr

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call ferrix_trap
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    .section .rodata.isr_table, "a"
    .balign 8
    .global ferrix_isr_table
ferrix_isr_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,255
    .quad isr_\n
    .endr
    "#
);

/// Vectors with a stub, in the order of `ferrix_isr_table`.
const STUB_VECTORS: [u8; 35] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 33, 255,
];

unsafe extern "C" {
    static ferrix_isr_table: [u64; 35];
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attrs: u8,
    offset_mid: u16,
    offset_high: u32,
    zero: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attrs: 0,
        offset_mid: 0,
        offset_high: 0,
        zero: 0,
    };

    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist,
            attrs: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            zero: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate::MISSING; 256]);
static IDT_BUILT: spin::Once<()> = spin::Once::new();

/// Builds the shared IDT (first call) and loads it on this core.
pub fn load() {
    IDT_BUILT.call_once(|| {
        // SAFETY: built once, before any core loads it; read-only afterwards.
        let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
        for (i, &v) in STUB_VECTORS.iter().enumerate() {
            // SAFETY: the table is defined above with one entry per stub vector.
            let handler = unsafe { ferrix_isr_table[i] };
            let ist = match v {
                8 => IST_DOUBLE_FAULT,
                2 => IST_NMI,
                14 => IST_PAGE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            idt.0[v as usize] = Gate::interrupt(handler, ist);
        }
    });
    #[repr(C, packed)]
    struct Ptr {
        limit: u16,
        base: u64,
    }
    let ptr = Ptr {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as u64,
    };
    // SAFETY: the IDT is 'static and fully built; every present gate points at a stub above.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}

/// Name of an exception vector.
pub fn exception_name(v: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error",
        "debug",
        "NMI",
        "breakpoint",
        "overflow",
        "bound range",
        "invalid opcode",
        "device not available",
        "double fault",
        "coprocessor overrun",
        "invalid TSS",
        "segment not present",
        "stack fault",
        "general protection",
        "page fault",
        "reserved",
        "x87 FP",
        "alignment check",
        "machine check",
        "SIMD FP",
        "virtualization",
        "control protection",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "hypervisor injection",
        "VMM communication",
        "security",
        "reserved",
    ];
    NAMES.get(v as usize).copied().unwrap_or("interrupt")
}

#[unsafe(no_mangle)]
extern "C" fn ferrix_trap(frame: &mut TrapFrame) {
    match frame.vector {
        0..=31 => super::fault::report_and_exit(frame),
        v if v == u64::from(TIMER_VECTOR) => {
            crate::profile::sample(frame.rip);
            crate::time::on_timer_interrupt();
            super::apic::eoi();
        }
        v if v == u64::from(IPI_VECTOR) => {
            if let Some(c) = crate::percpu::try_this() {
                c.ipis_received.fetch_add(1, Ordering::Relaxed);
            }
            crate::ipi::on_ipi();
            super::apic::eoi();
        }
        _ => {} // spurious: no EOI
    }
}
