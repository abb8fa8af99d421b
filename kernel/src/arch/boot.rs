//! The PVH entry: the ELF note that names the 32-bit entry point, the switch from 32-bit
//! protected mode to long mode with a temporary identity map of the first 4 GiB (2 MiB pages),
//! and the call into Rust (`ferrix_boot_main`) on the boot stack.
//!
//! PVH boot protocol: flat 32-bit protected mode, paging off, EBX = start_info physical address.
//! The loader (QEMU's PVH option ROM or the ferrix shim) has zeroed the image's bss.

use core::arch::global_asm;

/// Size of the boot CPU's stack (the page below it is left unmapped as a guard).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

/// Boot CPU stack: one guard page followed by the stack proper (grows down to the guard).
#[repr(C, align(4096))]
pub struct BootStack {
    pub guard: [u8; 4096],
    pub stack: [u8; BOOT_STACK_SIZE],
}

#[unsafe(no_mangle)]
static mut BOOT_STACK: BootStack = BootStack {
    guard: [0; 4096],
    stack: [0; BOOT_STACK_SIZE],
};

/// TSC value read by the first instruction of the PVH entry (boot statistics).
#[unsafe(no_mangle)]
static mut BOOT_TSC: u64 = 0;

/// Address of the boot stack's guard page.
pub fn boot_stack_guard() -> u64 {
    core::ptr::addr_of!(BOOT_STACK) as u64
}

/// TSC at the PVH entry.
pub fn boot_tsc() -> u64 {
    // SAFETY: written once by the entry code before Rust runs; read-only afterwards.
    unsafe { core::ptr::addr_of!(BOOT_TSC).read_volatile() }
}

// Boot GDT (also used by the AP trampoline): 0x08 64-bit code, 0x10 data, 0x18 32-bit code.
// Temporary page tables: PML4 -> PDPT -> 4 page directories of 2 MiB pages = 4 GiB identity.
global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4

    .section .rodata.boot_gdt, "a"
    .balign 16
    .global ferrix_boot_gdt
ferrix_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00cf9a000000ffff
ferrix_boot_gdt_end:
    .balign 8
    .global ferrix_boot_gdtr
ferrix_boot_gdtr:
    .word ferrix_boot_gdt_end - ferrix_boot_gdt - 1
    .quad ferrix_boot_gdt

    .section .bss.boot_pt, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov esi, ebx
    rdtsc
    mov dword ptr [BOOT_TSC], eax
    mov dword ptr [BOOT_TSC + 4], edx

    /* PML4[0] -> PDPT, PDPT[0..4] -> PDs */
    mov eax, offset boot_pdpt
    or eax, 3
    mov dword ptr [boot_pml4], eax
    mov edi, offset boot_pdpt
    mov eax, offset boot_pd
    or eax, 3
    mov ecx, 4
1:
    mov dword ptr [edi], eax
    add eax, 4096
    add edi, 8
    dec ecx
    jnz 1b

    /* 2048 PD entries: 2 MiB pages, present | writable | huge */
    mov edi, offset boot_pd
    mov eax, 0x83
    xor edx, edx
    mov ecx, 2048
2:
    mov dword ptr [edi], eax
    mov dword ptr [edi + 4], edx
    add eax, 0x200000
    adc edx, 0
    add edi, 8
    dec ecx
    jnz 2b

    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax

    lgdt [ferrix_boot_gdtr]
    .byte 0xea
    .long pvh_start64
    .word 0x08

    .code64
pvh_start64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov edi, esi
    lea rsp, [BOOT_STACK + 4096 + {stack_size}]
    xor ebp, ebp
    call ferrix_boot_main
3:
    cli
    hlt
    jmp 3b
    "#,
    stack_size = const BOOT_STACK_SIZE,
);
