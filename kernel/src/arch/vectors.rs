//! The interrupt vectors the kernel uses: the IDT dispatches on them, the APIC code programs
//! them, the timer and IPI services send them. Kept apart so none of those imports another
//! just for a number.

/// APIC timer interrupt vector.
pub const TIMER_VECTOR: u8 = 0x20;
/// Inter-processor "call" interrupt vector.
pub const IPI_VECTOR: u8 = 0x21;
/// APIC spurious interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;
