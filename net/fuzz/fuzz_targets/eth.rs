//! Fuzzes the Ethernet header parser: any input either parses into a header whose payload is
//! the rest of the input, or is refused; never a panic.
#![no_main]

use ferrix_net::eth::{ETH_HEADER_LEN, EthFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = EthFrame::parse(data) {
        assert_eq!(f.payload.len() + ETH_HEADER_LEN, data.len());
    }
});
