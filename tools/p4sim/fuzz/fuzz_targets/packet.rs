//! Fuzzes p4sim's packet path on p4/jbsq.p4 with five servers: each input is a sequence of
//! frames (2-byte big-endian length prefixes, the first byte after it the ingress port),
//! each run to completion with a bound on recirculations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p4sim::control::jbsq::{self, JbsqConfig, Server};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::OnceLock;

/// The loaded program with its entries, built once and cloned per input.
fn base() -> Option<&'static p4sim::Switch> {
    static BASE: OnceLock<Option<p4sim::Switch>> = OnceLock::new();
    BASE.get_or_init(|| {
        let cfg = JbsqConfig {
            router: vec![
                SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 8000),
                SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 9000),
            ],
            router_mac: [2, 0, 0, 0, 0, 1],
            servers: (0..5u8)
                .map(|i| Server {
                    addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + i), 8000),
                    mac: [2, 0, 0, 0, 1, i],
                    egress_port: 1 + u16::from(i),
                })
                .collect(),
            n: 2,
            recirc_port: 68,
            routes: vec![],
            hosts: vec![],
        };
        jbsq::switch(&cfg, 1).ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(mut sw) = base().cloned() else {
        return;
    };
    for (port, frame) in p4sim::fuzzing::frames(data) {
        let _ = sw.run(port, frame, 0, 256);
    }
});
