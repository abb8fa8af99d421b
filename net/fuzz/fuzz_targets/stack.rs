//! Fuzzes the whole receive path: the input is a sequence of frames (2-byte big-endian length
//! prefixes) fed to one stack, which answers ARP/ICMP into a capturing TX queue; delivered UDP
//! datagrams are echoed in place. Seeds: `net/fuzz/seeds.sh` writes the corpus frames.
#![no_main]

use ferrix_net::corpus::{CaptureTx, Endpoints};
use ferrix_net::{ArpConfig, ArpTable, NetStack};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let ep = Endpoints::default();
    let arp = ArpTable::new(ArpConfig {
        capacity: 4,
        ..ArpConfig::default()
    });
    let mut s = NetStack::new(ep.server_config(), Arc::new(arp));
    let _ = s.bind_udp(ep.server_port);
    let mut tx = CaptureTx::default();
    let mut rest = data;
    let mut now = 0u64;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        now += 1_000_000_000;
        let mut buf = frame.to_vec();
        let payload = s.receive(frame, now, &mut tx).map(|d| d.payload.len());
        if let Some(n) = payload {
            let reply_len = s
                .udp_reply_in_place(&mut buf, n)
                .expect("accepted frame replies");
            assert!(reply_len <= buf.len());
        }
        if tx.frames.len() > 64 {
            tx.frames.clear();
        }
    }
    assert!(s.stats().total_drops() <= s.stats().rx_packets);
});
