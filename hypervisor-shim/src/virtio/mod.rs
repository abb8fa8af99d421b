//! Generic virtio 1.x device-side building blocks: the virtio-mmio (version 2) transport
//! registers and split virtqueues. Device models (see [`crate::net`]) are built on top.

pub mod mmio;
pub mod queue;

/// Device status bit ACKNOWLEDGE (virtio 1.x §2.1).
pub const STATUS_ACKNOWLEDGE: u32 = 1;
/// Device status bit DRIVER.
pub const STATUS_DRIVER: u32 = 2;
/// Device status bit DRIVER_OK.
pub const STATUS_DRIVER_OK: u32 = 4;
/// Device status bit FEATURES_OK.
pub const STATUS_FEATURES_OK: u32 = 8;
/// Device status bit DEVICE_NEEDS_RESET.
pub const STATUS_DEVICE_NEEDS_RESET: u32 = 0x40;
/// Device status bit FAILED.
pub const STATUS_FAILED: u32 = 0x80;

/// Feature bit VIRTIO_F_VERSION_1.
pub const VIRTIO_F_VERSION_1: u32 = 32;

/// InterruptStatus bit: a used buffer notification.
pub const INT_USED_BUFFER: u32 = 1;
/// InterruptStatus bit: a configuration change notification.
pub const INT_CONFIG_CHANGE: u32 = 2;

#[cfg(test)]
pub(crate) mod testmem;
