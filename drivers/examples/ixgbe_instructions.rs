//! Instructions the ixgbe driver spends per echoed frame, counted on the host: the real
//! driver (`Ixgbe`, its descriptor rings and buffer pool) against the 82599 model of
//! `ferrix_ixgbe_model` through `ixgbe::sim`, the twin of `virtio_instructions.rs`:
//!
//! ```text
//! cargo build --release -p ferrix-drivers --features sim --example ixgbe_instructions
//! valgrind --tool=callgrind --toggle-collect='*driver_round*' \
//!     target/release/examples/ixgbe_instructions 10000
//! ```
//!
//! Collected / N includes the model: in the simulation a register access is a call into it
//! (a tail write transmits there and then), where on hardware it is one MMIO instruction. Take
//! the inclusive cost of `SimRegs`' `read` and `write` out (`callgrind_annotate
//! --inclusive=yes`), and add back one instruction per access, for the driver's own share.

use ferrix_drivers::Nic;
use ferrix_drivers::ixgbe::sim::device;
use ferrix_drivers::ixgbe::{Ixgbe, IxgbeConfig};

#[path = "common/round.rs"]
mod round;
use round::{driver_round, rounds};

fn main() {
    let n = rounds();
    let mac = [2, 0, 0, 0, 0, 1];
    let (regs, port) = device(mac);
    let config = IxgbeConfig {
        queue_pairs: 1,
        flow_director: false,
    };
    let mut nic = match Ixgbe::new(regs, config, port.dma()) {
        Ok(nic) => nic,
        Err(e) => {
            eprintln!("ixgbe_instructions: the driver refused the model: {e:?}");
            std::process::exit(1);
        }
    };
    let mut queues = nic.take_queues();
    let q = &mut *queues[0];
    // A 64-byte UDP payload behind Ethernet/IPv4/UDP headers, to this NIC's MAC.
    let mut frame = [0x5au8; 106];
    frame[..6].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let mut bufs = Vec::with_capacity(32);
    let mut echoed = 0u64;
    for _ in 0..n {
        port.inject(&frame);
        echoed += driver_round(q, &mut bufs) as u64;
        if port.take_sent().len() != 1 {
            eprintln!("ixgbe_instructions: the echo was not transmitted");
            std::process::exit(1);
        }
    }
    let s = q.stats();
    println!(
        "ixgbe_instructions: {n} rounds, {echoed} frames, rx {} tx {} device_errors {}",
        s.rx_packets, s.tx_packets, s.device_errors
    );
    if echoed != n {
        std::process::exit(1);
    }
}
