//! Instructions the virtio-net driver spends per echoed frame, counted on the host: the real
//! driver (`VirtioNet`, its split virtqueues and buffer pool) runs against the simulated device
//! of `ferrix_drivers::sim`, and `driver_round` (receive one frame, transmit it back from the
//! same buffer) is the only code counted:
//!
//! ```text
//! cargo build --release -p ferrix-drivers --features sim --example virtio_instructions
//! valgrind --tool=callgrind --toggle-collect='*driver_round*' \
//!     target/release/examples/virtio_instructions 10000
//! ```
//!
//! Collected / N is the driver's share of one request/reply (receive refills and transmit
//! reclaims amortised over their batches). The device side (`SimWire`) is not counted.

use ferrix_drivers::Nic;
use ferrix_drivers::sim::{self, HeapHal};
use ferrix_drivers::virtio_net::VirtioNet;

#[path = "common/round.rs"]
mod round;
use round::{driver_round, rounds};

fn main() {
    let n = rounds();
    let (transport, wire) = sim::device([2, 0, 0, 0, 0, 1]);
    let mut nic = match VirtioNet::new::<HeapHal, _>(transport, 1, sim::buffer_memory) {
        Ok(nic) => nic,
        Err(e) => {
            eprintln!("virtio_instructions: the driver refused the simulated device: {e:?}");
            std::process::exit(1);
        }
    };
    let mut queues = nic.take_queues();
    let q = &mut *queues[0];
    let frame = [0x5au8; 106]; // a 64-byte UDP payload behind Ethernet/IPv4/UDP headers
    let mut bufs = Vec::with_capacity(32);
    let mut echoed = 0u64;
    for _ in 0..n {
        if !wire.inject(&frame) {
            eprintln!("virtio_instructions: no receive buffer posted");
            std::process::exit(1);
        }
        echoed += driver_round(q, &mut bufs) as u64;
        if wire.take_sent().len() != 1 {
            eprintln!("virtio_instructions: the echo was not transmitted");
            std::process::exit(1);
        }
    }
    let s = q.stats();
    println!(
        "virtio_instructions: {n} rounds, {echoed} frames, rx {} tx {} device_errors {}",
        s.rx_packets, s.tx_packets, s.device_errors
    );
}
