//! The ixgbe driver on the host against the `ferrix-ixgbe-model` device model: [`SimRegs`]
//! routes register accesses to the model, [`HostDma`] lets the model reach (only) the heap
//! regions handed to the driver as DMA memory, and [`SimPort`] is the test's end of the wire.

use super::regs::Regs;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use ferrix_ixgbe_model::{DmaError, GuestMemory, Hostile, Ixgbe82599, ModelCounters, RxOutcome};
use std::sync::{Mutex, MutexGuard};

/// The DMA regions the driver was given: (address, length). "Physical" = host virtual.
#[derive(Clone, Default)]
pub struct HostDma {
    regions: Arc<Mutex<Vec<(u64, usize)>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostDma {
    /// Whether `[addr, addr + len)` lies inside one region.
    fn inside(&self, addr: u64, len: usize) -> bool {
        let end = addr.checked_add(len as u64);
        lock(&self.regions)
            .iter()
            .any(|&(a, l)| addr >= a && end.is_some_and(|e| e <= a + l as u64))
    }

    /// Allocates `bytes` of zeroed, 4 KiB-aligned heap memory (never freed) and registers it.
    pub fn alloc(&self, bytes: usize) -> Option<(NonNull<u8>, u64)> {
        let layout = std::alloc::Layout::from_size_align(bytes.max(1), 4096).ok()?;
        // SAFETY: layout has a non-zero size.
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        lock(&self.regions).push((p.as_ptr() as u64, bytes));
        Some((p, p.as_ptr() as u64))
    }
}

impl GuestMemory for HostDma {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        if !self.inside(addr, buf.len()) {
            return Err(DmaError {
                addr,
                len: buf.len(),
            });
        }
        // SAFETY: the range lies inside a live, never-freed region allocated by `alloc`; the
        // driver and the model access it from one thread at a time (the model's mutex).
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        if !self.inside(addr, data.len()) {
            return Err(DmaError {
                addr,
                len: data.len(),
            });
        }
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }
}

type Model = Arc<Mutex<Ixgbe82599<HostDma>>>;

/// Register access routed to the model.
#[derive(Clone)]
pub struct SimRegs {
    model: Model,
}

impl Regs for SimRegs {
    fn read(&self, off: u32) -> u32 {
        lock(&self.model).mmio_read(u64::from(off))
    }
    fn write(&self, off: u32, v: u32) {
        lock(&self.model).mmio_write(u64::from(off), v);
    }
}

/// The test's end: the wire, the model's knobs and the DMA allocator for the driver.
#[derive(Clone)]
pub struct SimPort {
    model: Model,
    dma: HostDma,
}

/// A modelled 82599 with MAC `mac`: the registers for the driver and the test's port.
pub fn device(mac: [u8; 6]) -> (SimRegs, SimPort) {
    let dma = HostDma::default();
    let model = Arc::new(Mutex::new(Ixgbe82599::new(mac, dma.clone())));
    (
        SimRegs {
            model: model.clone(),
        },
        SimPort { model, dma },
    )
}

impl SimPort {
    /// DMA memory for the driver (`Ixgbe::new`'s allocator).
    pub fn dma(&self) -> impl FnMut(usize) -> Option<(NonNull<u8>, u64)> + use<> {
        let dma = self.dma.clone();
        move |bytes| dma.alloc(bytes)
    }
    /// Receives `frame` from the wire.
    pub fn inject(&self, frame: &[u8]) -> RxOutcome {
        lock(&self.model).inject_rx(frame)
    }
    /// What the driver transmitted since the last call.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        lock(&self.model).take_tx()
    }
    /// The model itself (hostile modes, raw write-backs, interrupts, counters).
    pub fn model(&self) -> MutexGuard<'_, Ixgbe82599<HostDma>> {
        lock(&self.model)
    }
    pub fn set_hostile(&self, h: Hostile) {
        self.model().set_hostile(h);
    }
    pub fn counters(&self) -> ModelCounters {
        self.model().counters()
    }
}
