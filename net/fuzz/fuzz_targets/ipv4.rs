//! Fuzzes the IPv4 parser (and ICMP echo on its payload) with an MTU taken from the input.
#![no_main]

use ferrix_net::icmp::EchoRequest;
use ferrix_net::ipv4::{IPPROTO_ICMP, IPV4_HEADER_LEN, Ipv4Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&m, data)) = data.split_first() else {
        return;
    };
    let mtu = if m == 0 { 1500 } else { usize::from(m) * 8 };
    if let Ok(p) = Ipv4Packet::parse(data, mtu) {
        assert!(p.payload.len() + IPV4_HEADER_LEN <= data.len().min(mtu));
        if p.protocol == IPPROTO_ICMP {
            let _ = EchoRequest::parse(p.payload);
        }
    }
});
