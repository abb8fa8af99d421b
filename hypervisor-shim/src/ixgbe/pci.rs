//! A one-bus PCI configuration space behind the legacy ports 0xcf8 (address) and 0xcfc..0xcff
//! (data), enough for a guest to enumerate bus 0 and size and enable BAR0: a host bridge at
//! 00:00.0 and the 82599 at [`IXGBE_SLOT`] with one 64-bit memory BAR.
//!
//! Writable: the command register, BAR0/BAR1 (sized by the all-ones protocol: the low bits of
//! a 128 KiB BAR read back as zero) and the interrupt line; everything else is read only.

/// The address port.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
/// The data ports (0xcfc + byte offset within the selected dword).
pub const CONFIG_DATA: u16 = 0xcfc;
/// The 82599's device number on bus 0.
pub const IXGBE_SLOT: u8 = 2;
/// PCI command register: memory space decoding, bus mastering.
pub const CMD_MEMORY: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;

/// One function's 256 configuration bytes as dwords, and the writable bits of each dword.
#[derive(Clone, Debug)]
struct Function {
    regs: [u32; 64],
    writable: [u32; 64],
}

impl Function {
    fn new(vendor: u16, device: u16, class: u32) -> Function {
        let mut f = Function {
            regs: [0; 64],
            writable: [0; 64],
        };
        f.regs[0] = u32::from(vendor) | (u32::from(device) << 16);
        f.regs[2] = class << 8 | 0x01; // class code, revision 1
        f.writable[1] = 0xffff; // command (status is read only here)
        f
    }
}

/// The bus.
#[derive(Clone, Debug)]
pub struct PciBus {
    address: u32,
    bridge: Function,
    ixgbe: Function,
}

impl PciBus {
    /// A bus whose 82599 has BAR0 (`bar_size` bytes, a power of two) at `bar0`.
    pub fn new(bar0: u64, bar_size: u64) -> PciBus {
        let mut ixgbe = Function::new(
            ferrix_ixgbe_regs::PCI_VENDOR_INTEL,
            ferrix_ixgbe_regs::PCI_DEVICE_82599_SFP,
            0x02_0000, // network controller, Ethernet
        );
        // BAR0: memory, 64-bit (type 10b), not prefetchable; BAR1 its upper half.
        ixgbe.regs[4] = (bar0 as u32 & !0xf) | 0x4;
        ixgbe.regs[5] = (bar0 >> 32) as u32;
        ixgbe.writable[4] = !(bar_size as u32 - 1) & !0xf;
        ixgbe.writable[5] = u32::MAX;
        ixgbe.regs[11] = 0x000c_8086; // subsystem: Intel
        ixgbe.regs[15] = 0x0100; // interrupt pin INTA, line 0
        ixgbe.writable[15] = 0xff;
        PciBus {
            address: 0,
            bridge: Function::new(0x8086, 0x29c0, 0x06_0000), // a host bridge
            ixgbe,
        }
    }

    fn selected(&mut self) -> Option<(&mut Function, usize)> {
        let a = self.address;
        let (enabled, bus, dev, func) = (
            a >> 31 == 1,
            (a >> 16) & 0xff,
            (a >> 11) & 0x1f,
            (a >> 8) & 7,
        );
        if !enabled || bus != 0 || func != 0 {
            return None;
        }
        let reg = ((a & 0xfc) >> 2) as usize;
        match dev as u8 {
            0 => Some((&mut self.bridge, reg)),
            IXGBE_SLOT => Some((&mut self.ixgbe, reg)),
            _ => None,
        }
    }

    /// An `in` from `port`; false if the port is not PCI's.
    pub fn pio_read(&mut self, port: u16, data: &mut [u8]) -> bool {
        let value = match port {
            CONFIG_ADDRESS => self.address,
            CONFIG_DATA..=0xcff => {
                let shift = 8 * u32::from(port - CONFIG_DATA);
                self.selected()
                    .map_or(u32::MAX, |(f, r)| f.regs[r])
                    .checked_shr(shift)
                    .unwrap_or(0)
            }
            _ => return false,
        };
        for (i, b) in data.iter_mut().enumerate() {
            *b = (value >> (8 * i)) as u8;
        }
        true
    }

    /// An `out` to `port`; false if the port is not PCI's.
    pub fn pio_write(&mut self, port: u16, data: &[u8]) -> bool {
        let mut v = 0u32;
        for (i, b) in data.iter().take(4).enumerate() {
            v |= u32::from(*b) << (8 * i);
        }
        match port {
            CONFIG_ADDRESS if data.len() == 4 => self.address = v,
            CONFIG_ADDRESS => {}
            CONFIG_DATA..=0xcff => {
                let shift = 8 * u32::from(port - CONFIG_DATA);
                let width = if data.len() >= 4 {
                    u32::MAX
                } else {
                    (1 << (8 * data.len())) - 1
                };
                if let Some((f, r)) = self.selected() {
                    let mask = (width << shift) & f.writable[r];
                    f.regs[r] = (f.regs[r] & !mask) | ((v << shift) & mask);
                }
            }
            _ => return false,
        }
        true
    }

    /// Where the guest put BAR0, if memory decoding is on.
    pub fn bar0(&self) -> Option<u64> {
        let f = &self.ixgbe;
        let on = f.regs[1] as u16 & CMD_MEMORY != 0;
        on.then(|| u64::from(f.regs[4] & !0xf) | (u64::from(f.regs[5]) << 32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_read(bus: &mut PciBus, dev: u8, reg: u8) -> u32 {
        let a = 0x8000_0000 | (u32::from(dev) << 11) | u32::from(reg);
        assert!(bus.pio_write(CONFIG_ADDRESS, &a.to_le_bytes()));
        let mut d = [0u8; 4];
        assert!(bus.pio_read(CONFIG_DATA, &mut d));
        u32::from_le_bytes(d)
    }
    fn cfg_write(bus: &mut PciBus, dev: u8, reg: u8, v: u32) {
        let a = 0x8000_0000 | (u32::from(dev) << 11) | u32::from(reg);
        bus.pio_write(CONFIG_ADDRESS, &a.to_le_bytes());
        bus.pio_write(CONFIG_DATA, &v.to_le_bytes());
    }

    #[test]
    fn enumerate_size_and_enable_bar0() {
        let mut bus = PciBus::new(0xe000_0000, 128 * 1024);
        assert_eq!(cfg_read(&mut bus, 0, 0) & 0xffff, 0x8086, "host bridge");
        assert_eq!(cfg_read(&mut bus, 1, 0), u32::MAX, "empty slot");
        assert_eq!(cfg_read(&mut bus, IXGBE_SLOT, 0), 0x10fb_8086);
        assert_eq!(cfg_read(&mut bus, IXGBE_SLOT, 8) >> 8, 0x02_0000);
        assert_eq!(bus.bar0(), None, "decoding off");
        // Sizing: all ones, read back the mask, restore.
        cfg_write(&mut bus, IXGBE_SLOT, 0x10, u32::MAX);
        assert_eq!(cfg_read(&mut bus, IXGBE_SLOT, 0x10), 0xfffe_0004);
        cfg_write(&mut bus, IXGBE_SLOT, 0x10, 0xe000_0000);
        cfg_write(
            &mut bus,
            IXGBE_SLOT,
            4,
            u32::from(CMD_MEMORY | CMD_BUS_MASTER),
        );
        assert_eq!(bus.bar0(), Some(0xe000_0000));
        // Read only: the id; a 16-bit read of the device id through port 0xcfe.
        cfg_write(&mut bus, IXGBE_SLOT, 0, 0);
        let mut d = [0u8; 2];
        bus.pio_read(CONFIG_DATA + 2, &mut d);
        assert_eq!(u16::from_le_bytes(d), 0x10fb);
        assert!(!bus.pio_read(0x60, &mut d), "not a PCI port");
    }
}
