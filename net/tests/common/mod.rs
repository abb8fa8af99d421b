//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ferrix_net::corpus::{CaptureTx, Endpoints};
use ferrix_net::{ArpConfig, ArpTable, NetStack};
use std::sync::Arc;

pub fn server(ep: &Endpoints) -> NetStack {
    let mut s = NetStack::new(
        ep.server_config(),
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    s.bind_udp(ep.server_port).unwrap();
    s
}

pub fn tx() -> CaptureTx {
    CaptureTx::default()
}
