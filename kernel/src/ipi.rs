//! Inter-processor interrupts for apps and kernel services: send to one core, to all others or
//! to all; the receiving core runs the registered callback (with its own core id) from the
//! interrupt handler, then returns to whatever it was doing.

#[cfg(target_os = "none")]
pub use imp::*;

#[cfg(target_os = "none")]
mod imp {
    use crate::arch::apic;
    use crate::arch::vectors::IPI_VECTOR;
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// The callback, a `fn(usize)` stored as usize (0: none).
    static HANDLER: AtomicUsize = AtomicUsize::new(0);
    /// The kernel's own hook (the ZygOS scheduler's), run before the app's; same encoding.
    static KERNEL_HOOK: AtomicUsize = AtomicUsize::new(0);

    /// Registers the kernel service that runs first on every IPI (the scheduler registers
    /// itself when it starts, so this module need not know it).
    pub(crate) fn set_kernel_hook(f: fn(usize)) {
        KERNEL_HOOK.store(f as usize, Ordering::Release);
    }

    /// Registers the function every core runs when it receives an IPI.
    pub fn set_handler(f: fn(usize)) {
        HANDLER.store(f as usize, Ordering::Release);
    }

    /// Sends an IPI to core `core`. Returns false if that core is not up.
    pub fn send(core: usize) -> bool {
        match crate::percpu::get(core) {
            Some(c) => {
                apic::send_ipi(c.apic_id, IPI_VECTOR);
                true
            }
            None => false,
        }
    }

    /// Sends an IPI to every other core.
    pub fn send_all_others() {
        apic::send_ipi_all_others(IPI_VECTOR);
    }

    /// Sends an IPI to every core, this one included.
    pub fn send_all() {
        apic::send_ipi_all(IPI_VECTOR);
    }

    /// IPIs received by core `core` so far.
    pub fn received(core: usize) -> u64 {
        crate::percpu::get(core).map_or(0, |c| c.ipis_received.load(Ordering::Relaxed))
    }

    pub(crate) fn on_ipi() {
        let me = crate::percpu::core_id();
        // The scheduler's IPIs (a no-op unless this core serves TCP and runs app code).
        let k = KERNEL_HOOK.load(Ordering::Acquire);
        if k != 0 {
            // SAFETY: KERNEL_HOOK only ever holds a `fn(usize)` stored by `set_kernel_hook`.
            let k: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(k) };
            k(me);
        }
        let f = HANDLER.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: HANDLER only ever holds a `fn(usize)` stored by `set_handler`.
            let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(f) };
            f(me);
        }
    }
}
