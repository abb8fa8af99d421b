//! ferrix NIC drivers behind one multi-queue trait ([`nic::Nic`], [`nic::QueuePair`]):
//! virtio-net (MMIO and PCI transports through `virtio-drivers`), the Intel 82599 ([`ixgbe`]), a loopback device and a fake
//! device for host tests; plus the packet buffers ([`buf::PacketBuf`]) they all move.
#![cfg_attr(not(any(test, feature = "sim")), no_std)]

extern crate alloc;

pub mod buf;
pub mod fake;
pub mod ixgbe;
pub mod loopback;
pub mod nic;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod virtio_net;
pub mod virtqueue;

pub use buf::{BUF_SIZE, BufPool, HEADROOM, PacketBuf};
pub use nic::{Nic, NicInfo, Offloads, QueuePair, QueueStats};
