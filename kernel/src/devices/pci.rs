//! PCI through the legacy configuration ports (0xcf8/0xcfc, present on QEMU's pc and q35):
//! enumerate bus 0 and bring up a virtio-net-pci function. BARs are the firmware's (SeaBIOS
//! assigns them before the PVH entry); we enable memory decoding and bus mastering.

use crate::arch::cpu::{inl, outl};
use crate::println;
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
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
