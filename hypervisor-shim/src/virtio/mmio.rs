//! The virtio-mmio transport, version 2 ("modern", virtio 1.x §4.2.2): register offsets and
//! the register state machine (feature negotiation, queue setup, status, interrupt status).
//!
//! Device-independent: the device model supplies its ids, features, queue count and config
//! bytes, and acts on the [`Effect`] a register write returns. Registers are 32 bits wide;
//! other access widths outside the config space read as zero and are ignored on write.

use super::queue::Queue;
use super::{STATUS_DEVICE_NEEDS_RESET, STATUS_FEATURES_OK, VIRTIO_F_VERSION_1};

/// "virt" in little-endian.
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// The modern transport version.
pub const VERSION: u32 = 2;

/// MagicValue register.
pub const REG_MAGIC_VALUE: u64 = 0x000;
/// Version register.
pub const REG_VERSION: u64 = 0x004;
/// DeviceID register.
pub const REG_DEVICE_ID: u64 = 0x008;
/// VendorID register.
pub const REG_VENDOR_ID: u64 = 0x00c;
/// DeviceFeatures register.
pub const REG_DEVICE_FEATURES: u64 = 0x010;
/// DeviceFeaturesSel register.
pub const REG_DEVICE_FEATURES_SEL: u64 = 0x014;
/// DriverFeatures register.
pub const REG_DRIVER_FEATURES: u64 = 0x020;
/// DriverFeaturesSel register.
pub const REG_DRIVER_FEATURES_SEL: u64 = 0x024;
/// QueueSel register.
pub const REG_QUEUE_SEL: u64 = 0x030;
/// QueueNumMax register.
pub const REG_QUEUE_NUM_MAX: u64 = 0x034;
/// QueueNum register.
pub const REG_QUEUE_NUM: u64 = 0x038;
/// QueueReady register.
pub const REG_QUEUE_READY: u64 = 0x044;
/// QueueNotify register.
pub const REG_QUEUE_NOTIFY: u64 = 0x050;
/// InterruptStatus register.
pub const REG_INTERRUPT_STATUS: u64 = 0x060;
/// InterruptACK register.
pub const REG_INTERRUPT_ACK: u64 = 0x064;
/// Status register.
pub const REG_STATUS: u64 = 0x070;
/// QueueDescLow register.
pub const REG_QUEUE_DESC_LOW: u64 = 0x080;
/// QueueDescHigh register.
pub const REG_QUEUE_DESC_HIGH: u64 = 0x084;
/// QueueDriverLow register.
pub const REG_QUEUE_DRIVER_LOW: u64 = 0x090;
/// QueueDriverHigh register.
pub const REG_QUEUE_DRIVER_HIGH: u64 = 0x094;
/// QueueDeviceLow register.
pub const REG_QUEUE_DEVICE_LOW: u64 = 0x0a0;
/// QueueDeviceHigh register.
pub const REG_QUEUE_DEVICE_HIGH: u64 = 0x0a4;
/// ConfigGeneration register.
pub const REG_CONFIG_GENERATION: u64 = 0x0fc;
/// Start of the device-specific configuration space.
pub const REG_CONFIG: u64 = 0x100;

/// What the device model must do after a register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// The driver notified queue `n` (a QueueNotify write that KVM did not absorb).
    Notify(u16),
    /// The driver wrote 0 to Status: the device must reset.
    Reset,
    /// Status changed (e.g. DRIVER_OK or FEATURES_OK set).
    Status,
    /// Queue `n` was made ready: its layout must be checked.
    QueueReady(u16),
}

/// Register state of one virtio-mmio device.
#[derive(Clone, Debug)]
pub struct Transport {
    /// DeviceID.
    pub device_id: u32,
    /// VendorID.
    pub vendor_id: u32,
    /// Offered features.
    pub device_features: u64,
    /// Features the driver accepted (valid once FEATURES_OK is set).
    pub driver_features: u64,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
    /// QueueNumMax of every queue.
    pub queue_num_max: u16,
    /// The queues.
    pub queues: Vec<Queue>,
    status: u32,
    /// DEVICE_NEEDS_RESET (device-owned status bit).
    pub needs_reset: bool,
    /// InterruptStatus.
    pub interrupt_status: u32,
}

fn set_low(v: &mut u64, lo: u32) {
    *v = (*v & !0xffff_ffff) | u64::from(lo);
}

fn set_high(v: &mut u64, hi: u32) {
    *v = (*v & 0xffff_ffff) | (u64::from(hi) << 32);
}

impl Transport {
    /// A device in reset state with `queues` queues of at most `queue_num_max` entries.
    pub fn new(device_id: u32, vendor_id: u32, features: u64, queues: usize, max: u16) -> Self {
        Transport {
            device_id,
            vendor_id,
            device_features: features,
            driver_features: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            queue_sel: 0,
            queue_num_max: max,
            queues: vec![Queue::default(); queues],
            status: 0,
            needs_reset: false,
            interrupt_status: 0,
        }
    }

    /// Returns every register to its reset value (queues included).
    pub fn reset(&mut self) {
        *self = Transport::new(
            self.device_id,
            self.vendor_id,
            self.device_features,
            self.queues.len(),
            self.queue_num_max,
        );
    }

    /// The Status register as the driver reads it.
    pub fn status(&self) -> u32 {
        self.status
            | if self.needs_reset {
                STATUS_DEVICE_NEEDS_RESET
            } else {
                0
            }
    }

    /// Whether the driver accepted feature `bit`.
    pub fn has_feature(&self, bit: u32) -> bool {
        self.status & STATUS_FEATURES_OK != 0 && self.driver_features & (1 << bit) != 0
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Reads a register (not the config space) with a 32-bit access.
    pub fn read(&self, offset: u64) -> u32 {
        let q = self.queues.get(self.queue_sel as usize);
        match offset {
            REG_MAGIC_VALUE => MAGIC_VALUE,
            REG_VERSION => VERSION,
            REG_DEVICE_ID => self.device_id,
            REG_VENDOR_ID => self.vendor_id,
            REG_DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device_features as u32,
                1 => (self.device_features >> 32) as u32,
                _ => 0,
            },
            REG_QUEUE_NUM_MAX => q.map_or(0, |_| u32::from(self.queue_num_max)),
            REG_QUEUE_NUM => q.map_or(0, |q| u32::from(q.size)),
            REG_QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            REG_INTERRUPT_STATUS => self.interrupt_status,
            REG_STATUS => self.status(),
            REG_QUEUE_DESC_LOW => q.map_or(0, |q| q.desc as u32),
            REG_QUEUE_DESC_HIGH => q.map_or(0, |q| (q.desc >> 32) as u32),
            REG_QUEUE_DRIVER_LOW => q.map_or(0, |q| q.driver as u32),
            REG_QUEUE_DRIVER_HIGH => q.map_or(0, |q| (q.driver >> 32) as u32),
            REG_QUEUE_DEVICE_LOW => q.map_or(0, |q| q.device as u32),
            REG_QUEUE_DEVICE_HIGH => q.map_or(0, |q| (q.device >> 32) as u32),
            // The config space never changes while the driver reads it.
            REG_CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    /// Writes a register (not the config space) with a 32-bit access.
    pub fn write(&mut self, offset: u64, v: u32) -> Effect {
        match offset {
            REG_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            REG_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            REG_DRIVER_FEATURES => match self.driver_features_sel {
                0 => set_low(&mut self.driver_features, v),
                1 => set_high(&mut self.driver_features, v),
                _ => {}
            },
            REG_QUEUE_SEL => self.queue_sel = v,
            REG_QUEUE_NOTIFY => {
                if (v as usize) < self.queues.len() {
                    return Effect::Notify(v as u16);
                }
            }
            REG_INTERRUPT_ACK => self.interrupt_status &= !v,
            REG_STATUS => return self.write_status(v),
            REG_QUEUE_READY => {
                let sel = self.queue_sel as u16;
                if let Some(q) = self.selected() {
                    let ready = v & 1 != 0;
                    let was = q.ready;
                    q.ready = ready;
                    if ready && !was {
                        return Effect::QueueReady(sel);
                    }
                }
            }
            _ => self.write_queue_field(offset, v),
        }
        Effect::None
    }

    /// QueueNum and the ring addresses: only while the selected queue is not ready.
    fn write_queue_field(&mut self, offset: u64, v: u32) {
        let Some(q) = self.selected() else { return };
        if q.ready {
            return;
        }
        match offset {
            REG_QUEUE_NUM => q.size = u16::try_from(v).unwrap_or(0),
            REG_QUEUE_DESC_LOW => set_low(&mut q.desc, v),
            REG_QUEUE_DESC_HIGH => set_high(&mut q.desc, v),
            REG_QUEUE_DRIVER_LOW => set_low(&mut q.driver, v),
            REG_QUEUE_DRIVER_HIGH => set_high(&mut q.driver, v),
            REG_QUEUE_DEVICE_LOW => set_low(&mut q.device, v),
            REG_QUEUE_DEVICE_HIGH => set_high(&mut q.device, v),
            _ => {}
        }
    }

    fn write_status(&mut self, v: u32) -> Effect {
        if v == 0 {
            self.reset();
            return Effect::Reset;
        }
        let mut v = v & !STATUS_DEVICE_NEEDS_RESET;
        if v & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            // Accept only a subset of the offered features that includes VERSION_1.
            let subset = self.driver_features & !self.device_features == 0;
            let modern = self.driver_features & (1 << VIRTIO_F_VERSION_1) != 0;
            if !(subset && modern) {
                v &= !STATUS_FEATURES_OK;
            }
        }
        self.status = v;
        Effect::Status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Transport {
        Transport::new(1, 0x5852_5246, (1 << 32) | (1 << 5), 3, 256)
    }

    #[test]
    fn identity_and_features() {
        let mut t = t();
        assert_eq!(t.read(REG_MAGIC_VALUE), 0x7472_6976);
        assert_eq!((t.read(REG_VERSION), t.read(REG_DEVICE_ID)), (2, 1));
        assert_eq!(t.read(REG_DEVICE_FEATURES), 1 << 5);
        t.write(REG_DEVICE_FEATURES_SEL, 1);
        assert_eq!(t.read(REG_DEVICE_FEATURES), 1);
        // FEATURES_OK without VERSION_1 is refused.
        t.write(REG_STATUS, 1 | 2 | 8);
        assert_eq!(t.read(REG_STATUS), 3);
        t.write(REG_DRIVER_FEATURES_SEL, 1);
        t.write(REG_DRIVER_FEATURES, 1);
        t.write(REG_STATUS, 1 | 2 | 8);
        assert_eq!(t.read(REG_STATUS), 11);
        assert!(t.has_feature(32) && !t.has_feature(5));
        assert_eq!(t.write(REG_STATUS, 0), Effect::Reset);
        assert_eq!(t.read(REG_STATUS), 0);
    }

    #[test]
    fn queue_setup() {
        let mut t = t();
        t.write(REG_QUEUE_SEL, 2);
        assert_eq!(t.read(REG_QUEUE_NUM_MAX), 256);
        t.write(REG_QUEUE_NUM, 64);
        t.write(REG_QUEUE_DESC_LOW, 0x1000);
        t.write(REG_QUEUE_DESC_HIGH, 1);
        assert_eq!(t.queues[2].desc, 0x1_0000_1000);
        assert_eq!(t.write(REG_QUEUE_READY, 1), Effect::QueueReady(2));
        t.write(REG_QUEUE_NUM, 8);
        assert_eq!(t.queues[2].size, 64, "fields are frozen while ready");
        assert_eq!(t.write(REG_QUEUE_NOTIFY, 2), Effect::Notify(2));
        assert_eq!(t.write(REG_QUEUE_NOTIFY, 3), Effect::None);
        t.write(REG_QUEUE_SEL, 3);
        assert_eq!(t.read(REG_QUEUE_NUM_MAX), 0);
        t.interrupt_status = 3;
        t.write(REG_INTERRUPT_ACK, 1);
        assert_eq!(t.read(REG_INTERRUPT_STATUS), 2);
        t.needs_reset = true;
        assert_eq!(t.read(REG_STATUS) & 0x40, 0x40);
    }
}
