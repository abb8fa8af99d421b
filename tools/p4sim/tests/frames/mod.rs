//! Frames the switch tests send, built with ferrix-net's encoders (not the program's view).

use ferrix_net::MacAddr;
use ferrix_net::arp::{ARP_LEN, ArpOp, ArpPacket};
use ferrix_net::eth::{ETHERTYPE_ARP, write_header};
use std::net::Ipv4Addr;

/// A broadcast ARP request from `mac`/`ip` for `target`.
pub fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + ARP_LEN];
    assert!(write_header(
        &mut f,
        MacAddr::BROADCAST,
        MacAddr(mac),
        ETHERTYPE_ARP
    ));
    let arp = ArpPacket {
        op: ArpOp::Request,
        sender_mac: MacAddr(mac),
        sender_ip: ip,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    assert!(arp.write(&mut f[14..]));
    f
}
