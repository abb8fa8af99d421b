//! The emulated Intel 82599 NIC of the shim: the `ferrix-ixgbe-model` device as PCI function
//! 00:02.0 (configuration space through ports 0xcf8/0xcfc, [`pci`]), its BAR0 served from the
//! vCPU threads' MMIO exits, DMA into guest RAM through checked accesses, frames to and from
//! a TAP or switch [`Backend`]: transmit runs on the vCPU thread that writes a TDT doorbell,
//! receive on the device thread ([`worker`]) that waits on the backend.
//!
//! Not wired yet: interrupts (the model raises EICR causes, but no irqfd is signalled: the
//! ferrix driver polls), MSI-X, the pcap capture and per-queue statistics of the virtio device.

pub mod pci;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use ferrix_ixgbe_model::{DmaError, GuestMemory, Ixgbe82599, ModelCounters};
use ferrix_ixgbe_regs::BAR0_SIZE;

use crate::hypercall::{GuestMem, checked_range};
use crate::memory::GuestRam;
use crate::net::backend::{Backend, MAX_FRAME};

/// Guest-physical address the shim gives BAR0 (the guest may move it).
pub const BAR0_BASE: u64 = 0xe000_0000;
/// The kernel command line word that tells a ferrix guest to probe PCI under the shim.
pub const CMDLINE: &str = "ferrix.pci=1";

/// Guest RAM as the model's DMA target: every access range-checked.
pub struct RamDma(pub GuestRam);

impl GuestMemory for RamDma {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let ok = checked_range(self.0.size(), addr, buf.len() as u64).is_some()
            && self.0.read(addr, buf);
        ok.then_some(()).ok_or(DmaError {
            addr,
            len: buf.len(),
        })
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let ok = checked_range(self.0.size(), addr, data.len() as u64).is_some()
            && self.0.write(addr, data);
        ok.then_some(()).ok_or(DmaError {
            addr,
            len: data.len(),
        })
    }
}

/// Frame counters of the port (the model counts the rest).
#[derive(Debug, Default)]
pub struct PortStats {
    pub rx_frames: AtomicU64,
    pub tx_frames: AtomicU64,
    pub backend_errors: AtomicU64,
    /// BAR0 writes that were not 32 bits wide (ignored).
    pub odd_writes: AtomicU64,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The device: PCI function, model and backend.
pub struct IxgbePort {
    pci: Mutex<pci::PciBus>,
    model: Mutex<Ixgbe82599<RamDma>>,
    backend: Mutex<Box<dyn Backend>>,
    pub stats: PortStats,
}

/// Whether BAR0 offset `off` is a TDT (transmit doorbell) of queues 0..127.
fn is_tdt(off: u64) -> bool {
    (0x6000..0x8000).contains(&off) && off & 0x3f == 0x18
}

impl IxgbePort {
    /// A port with MAC `mac` over guest `ram`, frames on `backend`.
    pub fn new(ram: GuestRam, mac: [u8; 6], backend: Box<dyn Backend>) -> IxgbePort {
        IxgbePort {
            pci: Mutex::new(pci::PciBus::new(BAR0_BASE, BAR0_SIZE)),
            model: Mutex::new(Ixgbe82599::new(mac, RamDma(ram))),
            backend: Mutex::new(backend),
            stats: PortStats::default(),
        }
    }

    /// An `in`; false if the port is not the device's.
    pub fn pio_read(&self, port: u16, data: &mut [u8]) -> bool {
        lock(&self.pci).pio_read(port, data)
    }

    /// An `out`; false if the port is not the device's.
    pub fn pio_write(&self, port: u16, data: &[u8]) -> bool {
        lock(&self.pci).pio_write(port, data)
    }

    /// The BAR0 offset of guest-physical `addr`, if BAR0 is enabled there.
    pub fn bar_offset(&self, addr: u64) -> Option<u64> {
        let base = lock(&self.pci).bar0()?;
        let off = addr.checked_sub(base)?;
        (off < BAR0_SIZE).then_some(off)
    }

    /// An MMIO read at BAR0 offset `off` (registers are 32-bit; narrower reads take the low
    /// bytes of the dword, as the guest's byte lanes would).
    pub fn mmio_read(&self, off: u64, data: &mut [u8]) {
        let v = lock(&self.model).mmio_read(off & !3);
        let shift = 8 * (off & 3) as u32;
        for (i, b) in data.iter_mut().enumerate() {
            *b = (v.checked_shr(shift + 8 * i as u32).unwrap_or(0)) as u8;
        }
    }

    /// An MMIO write at BAR0 offset `off`. The registers take 32-bit writes; a narrower or
    /// wider one is counted in [`PortStats::odd_writes`] and ignored (merging it into the
    /// register would need a read, and reads have side effects). A TDT write transmits.
    pub fn mmio_write(&self, off: u64, data: &[u8]) {
        let Ok(w) = <[u8; 4]>::try_from(data) else {
            self.stats.odd_writes.fetch_add(1, Ordering::Relaxed);
            return;
        };
        lock(&self.model).mmio_write(off, u32::from_le_bytes(w));
        if is_tdt(off) {
            self.flush_tx();
        }
    }

    /// Sends every frame the guest queued.
    pub fn flush_tx(&self) {
        let frames = lock(&self.model).take_tx();
        if frames.is_empty() {
            return;
        }
        let mut backend = lock(&self.backend);
        for f in &frames {
            match backend.send(f) {
                Ok(()) => self.stats.tx_frames.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.stats.backend_errors.fetch_add(1, Ordering::Relaxed),
            };
        }
    }

    /// Moves up to `max` pending backend frames into the device. Returns how many were read
    /// (false-y 0 when the backend had nothing).
    pub fn poll_backend(&self, buf: &mut [u8], max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let got = lock(&self.backend).recv(buf);
            match got {
                Ok(Some(len)) => {
                    let frame = &buf[..len.min(buf.len()).min(MAX_FRAME)];
                    lock(&self.model).inject_rx(frame);
                    self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    self.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        n
    }

    /// The backend's pollable fd.
    pub fn backend_fd(&self) -> std::os::fd::RawFd {
        lock(&self.backend).raw_fd()
    }

    /// What the model counted (bad DMA, bad rings, ...).
    pub fn model_counters(&self) -> ModelCounters {
        lock(&self.model).counters()
    }
}

#[cfg(test)]
mod tests;
