//! How the driver reaches the 82599's registers: a 32-bit read/write at a BAR0 offset.
//! [`Mmio`] does volatile accesses to the mapped BAR in the guest; the host tests put the
//! device model behind the same trait (`super::sim`).

use core::ptr::NonNull;

/// Register access at a BAR0 offset (the constants of `ferrix_ixgbe_regs`).
pub trait Regs: Clone + Send + Sync + 'static {
    fn read(&self, off: u32) -> u32;
    fn write(&self, off: u32, v: u32);

    /// Sets `bits` in the register at `off` (read-modify-write).
    fn set_bits(&self, off: u32, bits: u32) {
        self.write(off, self.read(off) | bits);
    }

    /// Polls the register at `off` until `done(value)`, at most `polls` reads. Returns the last
    /// value read, or None if it never got there.
    fn poll(&self, off: u32, polls: u32, done: impl Fn(u32) -> bool) -> Option<u32> {
        (0..polls).map(|_| self.read(off)).find(|&v| done(v))
    }
}

/// The memory-mapped BAR0 of a real (or VMM-emulated) 82599.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the registers are device memory; concurrent 32-bit volatile accesses from several
// cores are what the hardware expects (each queue pair touches its own tail registers).
unsafe impl Send for Mmio {}
// SAFETY: as for Send; `Mmio` holds no Rust-visible state.
unsafe impl Sync for Mmio {}

impl Mmio {
    /// The BAR mapped at `base` (uncached), `len` bytes long.
    ///
    /// # Safety
    /// `[base, base + len)` must be the mapped BAR0 of an 82599, mapped for the life of the
    /// driver and used by nothing else.
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Mmio {
        Mmio { base, len }
    }

    fn at(&self, off: u32) -> Option<*mut u32> {
        let off = off as usize;
        (off.is_multiple_of(4) && off + 4 <= self.len)
            // SAFETY: off + 4 <= len: the address lies inside the mapped BAR.
            .then(|| unsafe { self.base.as_ptr().add(off) } as *mut u32)
    }
}

impl Regs for Mmio {
    fn read(&self, off: u32) -> u32 {
        match self.at(off) {
            // SAFETY: an aligned register inside the BAR (checked by `at`).
            Some(p) => unsafe { p.read_volatile() },
            None => u32::MAX,
        }
    }
    fn write(&self, off: u32, v: u32) {
        if let Some(p) = self.at(off) {
            // SAFETY: an aligned register inside the BAR (checked by `at`).
            unsafe { p.write_volatile(v) }
        }
    }
}
