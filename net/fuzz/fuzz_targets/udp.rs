//! Fuzzes the UDP parser; the pseudo-header addresses come from the first 8 input bytes.
#![no_main]

use ferrix_net::udp::{UDP_HEADER_LEN, UdpPacket};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let Some((addrs, seg)) = data.split_first_chunk::<8>() else {
        return;
    };
    let src = Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3]);
    let dst = Ipv4Addr::new(addrs[4], addrs[5], addrs[6], addrs[7]);
    if let Ok(u) = UdpPacket::parse(seg, src, dst) {
        assert!(u.payload.len() + UDP_HEADER_LEN <= seg.len());
    }
});
