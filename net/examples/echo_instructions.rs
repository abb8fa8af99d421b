//! Runs the server's UDP echo path (`receive` + `udp_reply_in_place`) N times, for counting
//! instructions per echo under callgrind: run with N and 2N and divide the difference of the
//! totals by N (see net/README.md).
//!
//! Usage: `echo_instructions N [PAYLOAD_BYTES]`.

use ferrix_net::corpus::{CaptureTx, Endpoints};
use ferrix_net::{ArpConfig, ArpTable, NetStack};
use std::hint::black_box;
use std::sync::Arc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let ep = Endpoints::default();
    let mut s = NetStack::new(
        ep.server_config(),
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    s.bind_udp(ep.server_port).expect("bind");
    let mut tx = CaptureTx::default();
    let template = ep.udp(&vec![0xa5; size]);
    // Two frames: a request and the buffer being rewritten, swapped by copying the request in.
    let mut frame = template.clone();
    let mut total = 0usize;
    for _ in 0..n {
        frame.copy_from_slice(black_box(&template));
        let len = match s.receive(&frame, 0, &mut tx) {
            Some(d) => d.payload.len(),
            None => 0,
        };
        total += s.udp_reply_in_place(&mut frame, len).unwrap_or(0);
    }
    println!("{n} echoes, {total} reply bytes");
}
