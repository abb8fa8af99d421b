//! x86-64 machine support (guest only): entry, descriptor tables, traps, APIC, SMP, VMM.
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod fault;
pub mod gdt;
pub mod idt;
pub mod smp;
pub mod vectors;
pub mod vmm;
