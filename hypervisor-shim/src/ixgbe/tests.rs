//! The real ferrix ixgbe driver (`ferrix-drivers`) against the shim's 82599: found through
//! the PCI ports, BAR0 through the MMIO handlers, rings and buffers in a real guest RAM
//! mapping, frames through a socketpair backend.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferrix_abi::rss::{INDIRECTION_ENTRIES, MICROSOFT_RSS_KEY, frame_hash};
use ferrix_drivers::ixgbe::{Ixgbe, IxgbeConfig, Regs};
use ferrix_drivers::{Nic, QueuePair};
use ferrix_ixgbe_model::frames::{Flow, ipv4_frame};
use vm_memory::{GuestAddress, GuestMemoryBackend};

use super::pci::{CMD_BUS_MASTER, CMD_MEMORY, CONFIG_ADDRESS, CONFIG_DATA, IXGBE_SLOT};
use super::*;
use crate::net::test_driver::PairBackend;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x82, 0x59, 9];

/// The driver's register access: guest-physical BAR0 addresses through the MMIO handlers.
#[derive(Clone)]
struct ExitRegs {
    port: Arc<IxgbePort>,
    bar0: u64,
}

impl Regs for ExitRegs {
    fn read(&self, off: u32) -> u32 {
        let mut d = [0u8; 4];
        match self.port.bar_offset(self.bar0 + u64::from(off)) {
            Some(o) => self.port.mmio_read(o, &mut d),
            None => d = [0xff; 4],
        }
        u32::from_le_bytes(d)
    }
    fn write(&self, off: u32, v: u32) {
        if let Some(o) = self.port.bar_offset(self.bar0 + u64::from(off)) {
            self.port.mmio_write(o, &v.to_le_bytes());
        }
    }
}

fn config(port: &IxgbePort, reg: u8, write: Option<u32>) -> u32 {
    let a = 0x8000_0000u32 | (u32::from(IXGBE_SLOT) << 11) | u32::from(reg);
    assert!(port.pio_write(CONFIG_ADDRESS, &a.to_le_bytes()));
    let mut d = [0u8; 4];
    match write {
        Some(v) => assert!(port.pio_write(CONFIG_DATA, &v.to_le_bytes())),
        None => assert!(port.pio_read(CONFIG_DATA, &mut d)),
    }
    u32::from_le_bytes(d)
}

/// A port and the driver's view of it, brought up with `pairs` queues.
fn bring_up(pairs: usize) -> (Arc<IxgbePort>, Ixgbe<ExitRegs>, UnixDatagram) {
    let ram = GuestRam::new(64 << 20).unwrap();
    let (backend, wire) = PairBackend::new();
    let port = Arc::new(IxgbePort::new(ram.clone(), MAC, Box::new(backend)));
    // What the guest kernel does: find 8086:10fb, read BAR0, enable decoding and mastering.
    assert_eq!(config(&port, 0, None), 0x10fb_8086);
    let bar0 = u64::from(config(&port, 0x10, None) & !0xf);
    config(&port, 4, Some(u32::from(CMD_MEMORY | CMD_BUS_MASTER)));
    let regs = ExitRegs {
        port: port.clone(),
        bar0,
    };
    // DMA memory: a bump allocator over guest RAM from 16 MiB (host pointer, guest address).
    let next = AtomicU64::new(16 << 20);
    let dma = move |bytes: usize| {
        let gpa = next.fetch_add((bytes as u64).div_ceil(4096) * 4096, Ordering::Relaxed);
        let host = ram.mmap().get_host_address(GuestAddress(gpa)).ok()?;
        Some((std::ptr::NonNull::new(host)?, gpa))
    };
    let config = IxgbeConfig {
        queue_pairs: pairs,
        flow_director: false,
    };
    let nic = Ixgbe::new(regs, config, dma).expect("bring-up through the shim");
    (port, nic, wire)
}

#[test]
fn the_real_driver_runs_on_the_shims_82599() {
    let pairs = 4;
    let (port, mut nic, wire) = bring_up(pairs);
    let info = nic.info();
    assert_eq!(
        (info.mac, info.link_up, info.queue_pairs),
        (MAC, true, pairs)
    );
    let mut qs: Vec<Box<dyn QueuePair>> = nic.take_queues();
    let mut buf = vec![0u8; 2048];
    let mut got = vec![0u8; 2048];
    for i in 0..300u32 {
        let flow = Flow {
            dst_mac: MAC,
            src: [192, 0, 2, i as u8],
            dst: [192, 0, 2, 200],
            tcp: i % 2 == 1,
            sport: 2000 + i as u16,
            dport: 6379,
        };
        let f = ipv4_frame(&flow, &vec![i as u8; (i % 700) as usize]);
        let h = frame_hash(&MICROSOFT_RSS_KEY, &f).unwrap();
        let want = (h as usize % INDIRECTION_ENTRIES) % pairs;
        wire.send(&f).unwrap();
        assert_eq!(port.poll_backend(&mut buf, 8), 1);
        let q = &mut qs[want];
        let mut rx = Vec::new();
        assert_eq!(q.rx_burst(&mut rx, 4), 1, "frame {i} on queue {want}");
        assert_eq!(rx[0].data(), &f[..]);
        assert!(rx[0].l4_checksum_ok());
        // Echo: the TDT write transmits on this (the "vCPU") thread.
        assert_eq!(q.tx_burst(&mut rx), 1);
        let n = wire.recv(&mut got).unwrap();
        assert_eq!(&got[..n], &f[..]);
    }
    let errors: u64 = qs.iter().map(|q| q.stats().device_errors).sum();
    assert_eq!(errors, 0);
    assert_eq!(port.model_counters(), ModelCounters::default());
    assert_eq!(port.stats.tx_frames.load(Ordering::Relaxed), 300);
    assert_eq!(nic.hw_stats().rx_good_packets, 300);
}

#[test]
fn a_guest_pointing_dma_outside_ram_is_counted() {
    let (port, _nic, wire) = bring_up(1);
    // The guest moves queue 0's RX ring beyond its 64 MiB of RAM: the model reads nothing,
    // counts it, and the shim goes on.
    port.mmio_write(
        u64::from(ferrix_ixgbe_regs::rdbal(0)),
        &0x8000_0000u32.to_le_bytes(),
    );
    port.mmio_write(u64::from(ferrix_ixgbe_regs::rdbah(0)), &7u32.to_le_bytes());
    let f = ipv4_frame(
        &Flow {
            dst_mac: MAC,
            src: [1, 1, 1, 1],
            dst: [2, 2, 2, 2],
            tcp: false,
            sport: 1,
            dport: 2,
        },
        b"x",
    );
    wire.send(&f).unwrap();
    assert_eq!(port.poll_backend(&mut [0u8; 2048], 8), 1);
    assert_eq!(port.model_counters().dma_errors, 1);
    // A byte write is not merged into a register: counted, ignored.
    let rdt = u64::from(ferrix_ixgbe_regs::rdt(0));
    let mut before = [0u8; 4];
    port.mmio_read(rdt, &mut before);
    port.mmio_write(rdt, &[0x11]);
    let mut after = [0u8; 4];
    port.mmio_read(rdt, &mut after);
    assert_eq!(before, after);
    assert_eq!(port.stats.odd_writes.load(Ordering::Relaxed), 1);
}
