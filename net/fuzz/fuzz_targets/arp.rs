//! Fuzzes the ARP parser: whatever parses re-encodes to the same 28 bytes.
#![no_main]

use ferrix_net::arp::{ARP_LEN, ArpPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ArpPacket::parse(data) {
        let mut out = [0u8; ARP_LEN];
        assert!(p.write(&mut out));
        assert_eq!(&out[..], &data[..ARP_LEN]);
    }
});
