//! Device discovery and bring-up at boot: virtio-mmio devices named on the command line
//! (QEMU microvm, the ferrix shim), then PCI bus 0 (virtio-net-pci, or an Intel 82599: vendor
//! 0x8086 device 0x10fb, driven by `ferrix_drivers::ixgbe`). The NIC found is initialised with one queue pair per core
//! and its queue pairs are handed to the cores through [`crate::net`]; a disk goes to
//! [`blk`].

pub mod blk;
pub mod hal;
pub mod pci;

use crate::cmdline::{self, VirtioMmioDevice};
use crate::println;
use core::ptr::NonNull;
use ferrix_drivers::Nic;
use ferrix_drivers::ixgbe::{Ixgbe, IxgbeConfig, Mmio};
use ferrix_drivers::virtio_net::VirtioNet;
use hal::KernelHal;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

/// Finds and starts the devices; `cpus` queue pairs are requested from the NIC. virtio-mmio
/// devices come from the command line; without them, PCI bus 0 is searched (under QEMU, or
/// under the shim when it says it emulates PCI (`pci`, from `ferrix.pci=1`): otherwise the
/// shim has no PCI and every probe would be a VM exit).
pub fn init(cmdline: &str, cpus: usize, pci: bool) {
    for dev in cmdline::virtio_mmio_devices(cmdline) {
        match dev {
            Ok(d) => probe_mmio(d, cpus),
            Err(tok) => println!("ferrix: ignoring malformed device description {tok:?}"),
        }
    }
    let probe_pci = pci || crate::arch::vmm::current() == crate::arch::vmm::Vmm::Qemu;
    if crate::net::has_nic() || !probe_pci || !pci::present() {
        return;
    }
    if let Some((df, transport)) = pci::find_virtio_net() {
        start_nic(transport, cpus, &alloc::format!("pci {df}"));
    } else if let Some((df, regs)) = pci::find_ixgbe() {
        start_ixgbe(regs, cpus, &alloc::format!("pci {df}"));
    }
}

/// Brings up an 82599 port and installs its queue pairs.
fn start_ixgbe(regs: Mmio, cpus: usize, what: &str) {
    let config = IxgbeConfig {
        queue_pairs: cpus,
        flow_director: true,
    };
    match Ixgbe::new(regs, config, buffer_memory) {
        Ok(mut nic) => install("ixgbe", what, &mut nic),
        Err(e) => println!("ferrix: ixgbe ({what}): {e:?}"),
    }
}

/// Brings up a virtio-net device and installs its queue pairs.
fn start_nic<T: Transport + Send + 'static>(transport: T, cpus: usize, what: &str) {
    match VirtioNet::new::<KernelHal, _>(transport, cpus, buffer_memory) {
        Ok(mut nic) => install("virtio-net", what, &mut nic),
        Err(e) => println!("ferrix: virtio-net ({what}): {e:?}"),
    }
}

/// Announces a NIC that came up (`kind` and where it is) and hands its queue pairs out.
fn install(kind: &str, what: &str, nic: &mut dyn Nic) {
    let info = nic.info();
    println!(
        "ferrix: {kind} ({what}): mac {} link {} queue pairs {}{}",
        crate::net::MacFmt(info.mac),
        if info.link_up { "up" } else { "down" },
        info.queue_pairs,
        if info.offloads.rss_toeplitz {
            " rss toeplitz"
        } else {
            ""
        }
    );
    crate::net::install(info, nic.take_queues());
}

fn probe_mmio(d: VirtioMmioDevice, cpus: usize) {
    if !crate::mem::kernel::map_mmio(d.base, d.size) {
        println!(
            "ferrix: virtio-mmio device at {:#x}: cannot map {:#x} bytes",
            d.base, d.size
        );
        return;
    }
    let Some(header) = NonNull::new(d.base as *mut VirtIOHeader) else {
        return;
    };
    // SAFETY: the VMM announced a virtio-mmio register block of d.size bytes at d.base, now
    // mapped uncached; nothing else uses it.
    let transport = match unsafe { MmioTransport::new(header, d.size as usize) } {
        Ok(t) => t,
        Err(e) => {
            println!("ferrix: virtio-mmio device at {:#x}: {e:?}", d.base);
            return;
        }
    };
    match transport.device_type() {
        DeviceType::Network => {
            if crate::net::has_nic() {
                println!(
                    "ferrix: second NIC at {:#x} ignored (one NIC supported)",
                    d.base
                );
                return;
            }
            start_nic(
                transport,
                cpus,
                &alloc::format!("mmio {:#x}, irq {}", d.base, d.irq),
            );
        }
        DeviceType::Block => blk::start(
            transport,
            &alloc::format!("mmio {:#x}, irq {}", d.base, d.irq),
        ),
        other => println!(
            "ferrix: virtio-mmio device at {:#x}: {other:?} not supported",
            d.base
        ),
    }
}

/// Packet-buffer memory: whole frames from the frame allocator (identity-mapped).
fn buffer_memory(bytes: usize) -> Option<(NonNull<u8>, u64)> {
    let pages = (bytes as u64).div_ceil(4096);
    let p = crate::mem::kernel::alloc_frames(pages, 4096)?;
    Some((NonNull::new(p as *mut u8)?, p))
}
