//! The per-vCPU host thread: the `KVM_RUN` loop, the handling of each VM exit, and the
//! "kick" (a real-time signal plus `immediate_exit`) that pulls a vCPU out of `KVM_RUN`
//! when the VM is stopped, including an AP still waiting in KVM for INIT-SIPI-SIPI.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};

use ferrix_abi::{ABI_VERSION, PORT_EXIT, PORT_HYPERCALL, PORT_PROBE, PORT_VERSION, PROBE_MAGIC};
use kvm_bindings::kvm_run;
use kvm_ioctls::{VcpuExit, VcpuFd};
use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

use crate::VmOutcome;
use crate::cpu::register_dump;
use crate::error::ShimError;
use crate::hypercall::{self, Action};
use crate::ixgbe::IxgbePort;
use crate::net::device::NetDevice;
use crate::net::{NET_MMIO_BASE, NET_MMIO_SIZE};
use crate::vm::Shared;

thread_local! {
    /// The `kvm_run` area of the vCPU that this thread runs (null when none).
    static KVM_RUN_AREA: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The signal used to kick vCPU threads out of `KVM_RUN`.
pub fn kick_signal() -> c_int {
    SIGRTMIN()
}

extern "C" fn kick_handler(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    let _ = KVM_RUN_AREA.try_with(|area| {
        let p = area.get();
        if !p.is_null() {
            // `p` is set before the run loop and reset to null before the VcpuFd is dropped.
            // SAFETY: `p` is the live `kvm_run` mapping of this thread's VcpuFd; a volatile
            // byte store is what KVM expects for `immediate_exit`.
            unsafe { std::ptr::addr_of_mut!((*p).immediate_exit).write_volatile(1) };
        }
    });
}

/// Installs the (process-wide) kick handler once.
pub fn install_kick_handler() -> Result<(), ShimError> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result =
            register_signal_handler(kick_signal(), kick_handler).map_err(|e| ShimError::Host {
                op: "installing the vCPU kick signal handler",
                source: std::io::Error::from_raw_os_error(e.errno()),
            });
    });
    result
}

/// What the run loop does after one exit.
enum Step {
    Continue,
    Exit(u32),
    Fail(String),
}

/// Zero-extends up to four little-endian bytes.
fn le_u32(data: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    let n = data.len().min(4);
    w[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(w)
}

/// Fills an `in` or MMIO read with `value` (little-endian, truncated or repeated as all ones).
fn fill(data: &mut [u8], value: u32) {
    let bytes = value.to_le_bytes();
    for (i, b) in data.iter_mut().enumerate() {
        *b = bytes.get(i).copied().unwrap_or(0xff);
    }
}

/// A device whose registers the vCPU threads serve on MMIO exits.
trait MmioDevice {
    fn mmio_read(&self, off: u64, data: &mut [u8]);
    fn mmio_write(&self, off: u64, data: &[u8]);
}

impl MmioDevice for NetDevice {
    fn mmio_read(&self, off: u64, data: &mut [u8]) {
        NetDevice::mmio_read(self, off, data);
    }
    fn mmio_write(&self, off: u64, data: &[u8]) {
        NetDevice::mmio_write(self, off, data);
    }
}

impl MmioDevice for IxgbePort {
    fn mmio_read(&self, off: u64, data: &mut [u8]) {
        IxgbePort::mmio_read(self, off, data);
    }
    fn mmio_write(&self, off: u64, data: &[u8]) {
        IxgbePort::mmio_write(self, off, data);
    }
}

/// The device whose registers cover `addr` and the offset inside them: the virtio-net
/// register page, or the 82599's BAR0 (where the guest put it, once decoding is on).
fn mmio_device(shared: &Shared, addr: u64) -> Option<(&dyn MmioDevice, u64)> {
    if let Some(dev) = &shared.net {
        let off = addr.wrapping_sub(NET_MMIO_BASE);
        if addr >= NET_MMIO_BASE && off < NET_MMIO_SIZE {
            return Some((&**dev, off));
        }
    }
    let dev = shared.ixgbe.as_ref()?;
    Some((&**dev, dev.bar_offset(addr)?))
}

fn handle_exit(exit: VcpuExit<'_>, shared: &Shared) -> Step {
    match exit {
        VcpuExit::IoIn(port, data) => {
            match port {
                PORT_PROBE => fill(data, PROBE_MAGIC),
                PORT_VERSION => fill(data, ABI_VERSION),
                _ if shared
                    .ixgbe
                    .as_ref()
                    .is_some_and(|d| d.pio_read(port, data)) => {}
                _ => {
                    fill(data, u32::MAX);
                    shared.stats.ignored_pio.fetch_add(1, Ordering::Relaxed);
                }
            }
            Step::Continue
        }
        VcpuExit::IoOut(PORT_EXIT, data) => Step::Exit(le_u32(data)),
        VcpuExit::IoOut(PORT_HYPERCALL, data) => {
            let gpa = u64::from(le_u32(data));
            let mut console = shared.console();
            let out = hypercall::Outputs {
                console: &mut **console,
                stats: shared.stats_sink.as_ref(),
            };
            match hypercall::handle(&shared.ram, gpa, out) {
                Action::Continue => Step::Continue,
                Action::Exit(code) => Step::Exit(code),
                Action::BadBlock => {
                    shared.stats.bad_hypercalls.fetch_add(1, Ordering::Relaxed);
                    Step::Continue
                }
            }
        }
        VcpuExit::IoOut(port, data) => {
            if !shared
                .ixgbe
                .as_ref()
                .is_some_and(|d| d.pio_write(port, data))
            {
                shared.stats.ignored_pio.fetch_add(1, Ordering::Relaxed);
            }
            Step::Continue
        }
        VcpuExit::MmioRead(addr, data) => {
            match mmio_device(shared, addr) {
                Some((dev, off)) => dev.mmio_read(off, data),
                None => {
                    fill(data, u32::MAX);
                    shared.stats.ignored_mmio.fetch_add(1, Ordering::Relaxed);
                }
            }
            Step::Continue
        }
        VcpuExit::MmioWrite(addr, data) => {
            match mmio_device(shared, addr) {
                Some((dev, off)) => dev.mmio_write(off, data),
                None => {
                    shared.stats.ignored_mmio.fetch_add(1, Ordering::Relaxed);
                }
            }
            Step::Continue
        }
        VcpuExit::Hlt | VcpuExit::Intr | VcpuExit::IrqWindowOpen => Step::Continue,
        VcpuExit::Shutdown => Step::Fail("guest triple-faulted (KVM shutdown exit)".into()),
        VcpuExit::FailEntry(reason, cpu) => Step::Fail(format!(
            "KVM entry failed (hardware entry failure reason {reason:#x}, host cpu {cpu})"
        )),
        VcpuExit::InternalError => Step::Fail("KVM internal error (emulation failure)".into()),
        VcpuExit::SystemEvent(kind, _) => Step::Fail(format!(
            "guest requested a system reset or shutdown (KVM system event {kind})"
        )),
        other => Step::Fail(format!("unexpected KVM exit {other:?}")),
    }
}

/// Runs vCPU `index` until the VM stops; records the outcome if this vCPU ends the VM.
pub fn run_vcpu(mut vcpu: VcpuFd, index: u32, shared: Arc<Shared>) {
    let area: *mut kvm_run = vcpu.get_kvm_run();
    KVM_RUN_AREA.with(|a| a.set(area));
    let result = loop {
        if shared.stop.load(Ordering::SeqCst) {
            break None;
        }
        let step = match vcpu.run() {
            Ok(exit) => handle_exit(exit, &shared),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                vcpu.set_kvm_immediate_exit(0);
                Step::Continue
            }
            Err(e) => break Some(Err(ShimError::kvm("KVM_RUN", e))),
        };
        match step {
            Step::Continue => {}
            Step::Exit(code) => break Some(Ok(VmOutcome::Exited(code))),
            Step::Fail(reason) => {
                break Some(Err(ShimError::VmFailed {
                    vcpu: index,
                    reason,
                    regs: register_dump(&vcpu),
                }));
            }
        }
    };
    KVM_RUN_AREA.with(|a| a.set(std::ptr::null_mut()));
    if let Some(r) = result {
        shared.finish(r);
    }
    drop(vcpu);
}
