//! Fuzzes p4sim's packet path on p4/aggregator.p4 with five members: each input is a
//! sequence of frames (2-byte big-endian length prefixes, the first byte after it the
//! ingress port). The program must never fault on any frame (every register index it uses
//! is checked first): a `PacketError` is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p4sim::control::aggregator::{self, AggConfig, Member};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::OnceLock;

/// The loaded program with its entries, built once and cloned per input.
fn base() -> Option<&'static p4sim::Switch> {
    static BASE: OnceLock<Option<p4sim::Switch>> = OnceLock::new();
    BASE.get_or_init(|| {
        let cfg = AggConfig {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 254), 7000),
            mac: [2, 0, 0, 0, 2, 0xfe],
            members: (0..5u8)
                .map(|i| Member {
                    addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 1 + i), 7000),
                    mac: [2, 0, 0, 0, 3, i],
                    egress_port: 1 + u16::from(i),
                })
                .collect(),
            group: 1,
        };
        aggregator::switch(&cfg, 1).ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(mut sw) = base().cloned() else {
        return;
    };
    for (port, frame) in p4sim::fuzzing::frames(data) {
        if frame.len() <= p4sim::switch::MAX_PACKET {
            let r = sw.run(port, frame, 0, 1);
            assert!(r.is_ok(), "{r:?}");
        }
    }
});
