//! Runs the R2P2 server path N times, for counting instructions per request under callgrind:
//! `valgrind --tool=callgrind --toggle-collect='*serve_one*' r2p2_instructions N` counts only
//! the served requests (the frames are built before), so the total divided by N is the cost
//! per request (net/README.md). The path: a one-packet 64-byte echo
//! request through Ethernet/IPv4/UDP receive, R2P2 parse, and the reply packetized into a null
//! transport; `udp` instead runs the plain UDP echo path (receive + reply in place) as the
//! baseline, and `udp-offload` the same with the reply's UDP checksum left to the NIC (as in
//! the guest on virtio-net with VIRTIO_NET_F_CSUM). Each request has its own request id, as
//! from a real client.
//!
//! Usage: `r2p2_instructions N [r2p2|udp|udp-offload]`.

use ferrix_net::corpus::{CaptureTx, Endpoints, FixedClock, NullTransport};
use ferrix_net::r2p2::{Header, MsgType, Policy, Server, ServerConfig};
use ferrix_net::{ArpConfig, ArpTable, NetStack};
use std::hint::black_box;
use std::sync::Arc;

/// One request through the server path; true if answered.
#[inline(never)]
fn serve_one(
    s: &mut NetStack,
    tx: &mut CaptureTx,
    server: &mut Server<NullTransport, FixedClock>,
    f: &mut [u8],
    udp: bool,
) -> bool {
    if udp {
        let len = s.receive(f, 0, tx).map_or(0, |d| d.payload.len());
        return s.udp_reply_in_place(f, len).is_ok();
    }
    let Some(d) = s.receive(f, 0, tx) else {
        return false;
    };
    let Some(req) = server.handle_datagram(d.src, d.payload) else {
        return false;
    };
    let meta = req.meta;
    server.send_response(&meta, &req.payload).is_ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mode = args.next();
    let udp = matches!(mode.as_deref(), Some("udp" | "udp-offload"));
    let ep = Endpoints::default();
    let mut s = NetStack::new(
        ep.server_config(),
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    s.bind_udp(ep.server_port).expect("bind");
    s.set_tx_checksum_offload(mode.as_deref() == Some("udp-offload"));
    let mut tx = CaptureTx::default();
    let mut server = Server::new(
        NullTransport::default(),
        FixedClock(0),
        ServerConfig::default(),
    );
    let payload = [0xa5u8; 64];
    let mut frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            if udp {
                ep.udp(&payload)
            } else {
                let mut msg = Header::single(MsgType::Request, Policy::LbRoute, i as u16)
                    .encode()
                    .to_vec();
                msg.extend_from_slice(&payload);
                ep.udp(&msg)
            }
        })
        .collect();
    let mut done = 0u64;
    for f in &mut frames {
        done += u64::from(serve_one(&mut s, &mut tx, &mut server, black_box(f), udp));
    }
    assert_eq!(done, n, "every request answered");
    println!(
        "{n} {} echoes, {} bytes out",
        if udp { "udp" } else { "r2p2" },
        server.transport_mut().0
    );
}
