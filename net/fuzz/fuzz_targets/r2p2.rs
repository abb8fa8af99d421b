//! Fuzzes R2P2: the header parser, then a server and a client (with a multi-packet request in
//! flight) fed each input as a sequence of datagrams (2-byte big-endian length prefixes).
#![no_main]

use ferrix_net::corpus::{FixedClock, NullTransport};
use ferrix_net::r2p2::{Client, ClientConfig, Header, Policy, Server, ServerConfig};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddrV4;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, payload)) = Header::parse(data) {
        assert!(payload.len() + 8 <= data.len());
    }
    let peer: SocketAddrV4 = "10.0.0.1:5000"
        .parse()
        .unwrap_or(SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 1));
    let mut server = Server::new(
        NullTransport::default(),
        FixedClock(1),
        ServerConfig::default(),
    );
    let mut client = Client::new(
        NullTransport::default(),
        FixedClock(1),
        ClientConfig::default(),
    );
    let _ = client.send_request(peer, &[7; 4000], Policy::LbRoute, 10, 0);
    let mut rest = data;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let n = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (dgram, tail) = tail.split_at(n);
        if let Some(req) = server.handle_datagram(peer, dgram) {
            let meta = req.meta;
            let _ = server.send_response(&meta, &[1; 3000]);
        }
        client.handle_datagram(peer, dgram);
        rest = tail;
    }
    server.poll_timers();
    client.poll_timers();
});
