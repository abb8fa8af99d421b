//! Setting the NIC up for a VM: checking its configuration, opening the backend and capture
//! (before KVM, so that configuration errors come first), then attaching the device to the
//! KVM VM (irqfd on GSI 5, one ioeventfd per queue on QueueNotify) and starting its thread.

use std::sync::Arc;

use kvm_ioctls::{IoEventAddress, VmFd};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::backend;
use super::device::{DeviceConfig, NetDevice, NetIo};
use super::pcap::PcapSink;
use super::rss::MICROSOFT_RSS_KEY;
use super::worker::Worker;
use super::{MAX_QUEUE_PAIRS, NET_GSI, NET_MMIO_BASE, NetConfig, default_mac};
use crate::error::ShimError;
use crate::memory::GuestRam;
use crate::virtio::mmio::REG_QUEUE_NOTIFY;

/// A NIC whose configuration was checked and whose backend is open.
pub struct Prepared {
    /// Device parameters.
    pub cfg: DeviceConfig,
    /// Backend and capture.
    pub io: NetIo,
}

/// Checks `net` (queue count, RSS key) for a VM of `cpus` vCPUs: the device parameters.
pub fn device_config(net: &NetConfig, cpus: u32) -> Result<DeviceConfig, ShimError> {
    let queues = net.queues.unwrap_or(cpus.min(MAX_QUEUE_PAIRS));
    if queues == 0 || queues > MAX_QUEUE_PAIRS {
        return Err(ShimError::BadQueueCount {
            queues,
            max: MAX_QUEUE_PAIRS,
        });
    }
    let rss_key = net.rss_key.clone().unwrap_or(MICROSOFT_RSS_KEY.to_vec());
    if !(16..=40).contains(&rss_key.len()) {
        return Err(ShimError::BadRssKey { len: rss_key.len() });
    }
    Ok(DeviceConfig {
        mac: net.mac.unwrap_or_else(default_mac),
        pairs: queues as u16,
        rss_key,
    })
}

/// Checks the configuration and opens backend and capture file.
pub fn prepare(net: &NetConfig, cpus: u32) -> Result<Prepared, ShimError> {
    let cfg = device_config(net, cpus)?;
    let backend = backend::open(&net.backend)?;
    let pcap = net.pcap.as_deref().map(PcapSink::create).transpose()?;
    Ok(Prepared {
        cfg,
        io: NetIo { backend, pcap },
    })
}

/// A device attached to a VM, with its running thread.
pub struct Attached {
    /// The device (its registers are served from the vCPU threads).
    pub device: Arc<NetDevice>,
    /// The device thread.
    pub worker: Worker,
}

fn host(op: &'static str) -> impl Fn(std::io::Error) -> ShimError {
    move |source| ShimError::Host { op, source }
}

/// Creates the device over `ram`, wires irqfd and ioeventfds into `vm`, starts its thread.
pub fn attach(vm: &VmFd, ram: &GuestRam, p: Prepared) -> Result<Attached, ShimError> {
    let irq = EventFd::new(EFD_NONBLOCK).map_err(host("creating the NIC irqfd"))?;
    vm.register_irqfd(&irq, NET_GSI)
        .map_err(|e| ShimError::kvm("KVM_IRQFD", e))?;
    let device = NetDevice::new(Arc::new(ram.clone()), p.cfg, Arc::new(irq))
        .map_err(host("creating the NIC notification eventfds"))?;
    let notify = IoEventAddress::Mmio(NET_MMIO_BASE + REG_QUEUE_NOTIFY);
    for (q, kick) in device.kicks().iter().enumerate() {
        vm.register_ioevent(kick, &notify, q as u32)
            .map_err(|e| ShimError::kvm("KVM_IOEVENTFD", e))?;
    }
    let device = Arc::new(device);
    let worker =
        Worker::spawn(Arc::clone(&device), p.io).map_err(host("starting the NIC device thread"))?;
    Ok(Attached { device, worker })
}
