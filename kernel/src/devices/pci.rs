//! PCI through the legacy configuration ports (0xcf8/0xcfc, present on QEMU's pc and q35 and
//! emulated by the ferrix shim for its 82599): enumerate bus 0 and find a virtio-net-pci
//! function or an Intel 82599 (8086:10fb). BARs are the firmware's (SeaBIOS assigns them
//! before the PVH entry; the shim presets them); we enable memory decoding and bus mastering.

use crate::arch::cpu::{inl, outl};
use crate::println;
use core::ptr::NonNull;
use ferrix_drivers::ixgbe::Mmio;
use ferrix_ixgbe_regs::{BAR0_SIZE, PCI_DEVICE_82599_SFP, PCI_VENDOR_INTEL};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, PciRoot,
};
use virtio_drivers::transport::pci::{PciTransport, virtio_device_type};

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Configuration space through the 0xcf8/0xcfc port pair.
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (u32::from(df.bus) << 16)
        | (u32::from(df.device & 0x1f) << 11)
        | (u32::from(df.function & 0x7) << 8)
        | u32::from(offset & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        // SAFETY: the configuration ports only select and read PCI configuration registers;
        // devices are probed by the boot CPU alone, so the two-step access is not interleaved.
        unsafe {
            outl(CONFIG_ADDRESS, address(df, offset));
            inl(CONFIG_DATA)
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        // SAFETY: as in read_word; writes go to the selected function's configuration space.
        unsafe {
            outl(CONFIG_ADDRESS, address(df, offset));
            outl(CONFIG_DATA, data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// Whether a PCI host bridge answers (function 00:00.0 exists).
pub fn present() -> bool {
    PortCam.read_word(
        DeviceFunction {
            bus: 0,
            device: 0,
            function: 0,
        },
        0,
    ) != u32::MAX
}

/// Finds virtio-net functions on bus 0 and returns the transport of the first.
pub fn find_virtio_net() -> Option<(DeviceFunction, PciTransport)> {
    let mut root = PciRoot::new(PortCam);
    let found: Option<DeviceFunction> = root
        .enumerate_bus(0)
        .find(|(_, info)| virtio_device_type(info) == Some(DeviceType::Network))
        .map(|(df, _)| df);
    let df = found?;
    let (_, cmd) = root.get_status_command(df);
    root.set_command(df, cmd | Command::MEMORY_SPACE | Command::BUS_MASTER);
    match PciTransport::new::<super::hal::KernelHal, _>(&mut root, df) {
        Ok(t) => Some((df, t)),
        Err(e) => {
            println!("ferrix: virtio-net-pci at {df}: {e:?}");
            None
        }
    }
}

/// Finds an Intel 82599 on bus 0, maps its BAR0 (uncached) and enables it: its registers.
pub fn find_ixgbe() -> Option<(DeviceFunction, Mmio)> {
    let mut root = PciRoot::new(PortCam);
    let df = root
        .enumerate_bus(0)
        .find(|(_, i)| i.vendor_id == PCI_VENDOR_INTEL && i.device_id == PCI_DEVICE_82599_SFP)
        .map(|(df, _)| df)?;
    let (address, size) = match root.bar_info(df, 0) {
        Ok(Some(BarInfo::Memory { address, size, .. })) if size >= BAR0_SIZE && address != 0 => {
            (address, size)
        }
        other => {
            println!("ferrix: ixgbe at {df}: unusable BAR0 {other:?}");
            return None;
        }
    };
    if !crate::mem::kernel::map_mmio(address, size) {
        println!("ferrix: ixgbe at {df}: cannot map BAR0 at {address:#x}");
        return None;
    }
    let (_, cmd) = root.get_status_command(df);
    root.set_command(df, cmd | Command::MEMORY_SPACE | Command::BUS_MASTER);
    let base = NonNull::new(address as *mut u8)?;
    // SAFETY: BAR0 of the 82599 at df, `size` bytes, is now mapped uncached at its physical
    // address (identity) and used by nothing else.
    Some((df, unsafe { Mmio::new(base, size as usize) }))
}
