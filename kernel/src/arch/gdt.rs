//! Per-CPU GDT and 64-bit TSS (with the interrupt stacks, IST), and loading them.
//!
//! Selectors: 0x08 kernel code (64-bit), 0x10 kernel data, 0x18 32-bit code (AP trampoline),
//! 0x20 TSS (two slots).

use core::arch::asm;

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;
pub const TSS_SEL: u16 = 0x20;

/// IST slots (1-based as in the IDT gate's IST field).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_PAGE_FAULT: u8 = 3;
pub const IST_MACHINE_CHECK: u8 = 4;
/// Number of IST stacks each CPU has.
pub const IST_COUNT: usize = 4;

/// The 64-bit task-state segment.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct Tss {
    _reserved0: u32,
    pub rsp: [u64; 3],
    _reserved1: u64,
    pub ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    pub iomap_base: u16,
}

impl Default for Tss {
    fn default() -> Self {
        Self::new()
    }
}

impl Tss {
    pub const fn new() -> Tss {
        Tss {
            _reserved0: 0,
            rsp: [0; 3],
            _reserved1: 0,
            ist: [0; 7],
            _reserved2: 0,
            _reserved3: 0,
            iomap_base: core::mem::size_of::<Tss>() as u16,
        }
    }
}

/// One CPU's descriptor table.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct Gdt {
    entries: [u64; 6],
}

impl Default for Gdt {
    fn default() -> Self {
        Self::new()
    }
}

impl Gdt {
    pub const fn new() -> Gdt {
        Gdt {
            entries: [
                0,
                0x00af_9a00_0000_ffff,
                0x00cf_9200_0000_ffff,
                0x00cf_9a00_0000_ffff,
                0,
                0,
            ],
        }
    }

    /// Points the TSS descriptor at `tss`.
    pub fn set_tss(&mut self, tss: &Tss) {
        let base = tss as *const Tss as u64;
        let limit = (core::mem::size_of::<Tss>() - 1) as u64;
        self.entries[4] = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        self.entries[5] = base >> 32;
    }

    /// Loads this GDT, reloads the segment registers and the task register.
    ///
    /// # Safety
    /// `self` must stay at this address for as long as the CPU uses it (per-CPU static data),
    /// and `set_tss` must have been called with a TSS that lives as long.
    pub unsafe fn load(&'static self) {
        #[repr(C, packed)]
        struct Ptr {
            limit: u16,
            base: u64,
        }
        let ptr = Ptr {
            limit: (core::mem::size_of::<Gdt>() - 1) as u16,
            base: self as *const Gdt as u64,
        };
        // SAFETY: the GDT is valid and 'static; code/data selectors match the entries above;
        // the far return reloads CS with the 64-bit code segment at the next instruction.
        unsafe {
            asm!(
                "lgdt [{ptr}]",
                "push {cs}",
                "lea {tmp}, [rip + 2f]",
                "push {tmp}",
                "retfq",
                "2:",
                "mov ds, {ds:x}",
                "mov es, {ds:x}",
                "mov ss, {ds:x}",
                "ltr {tss:x}",
                ptr = in(reg) &ptr,
                cs = const KERNEL_CS as u64,
                tmp = out(reg) _,
                ds = in(reg) KERNEL_DS as u64,
                tss = in(reg) TSS_SEL as u64,
            );
        }
    }
}
