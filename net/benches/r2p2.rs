//! R2P2 costs at the server, with a plain-UDP baseline in the same run (on noisy machines the
//! ratio is the number to compare): header encode/decode, and the whole server path for a
//! one-packet echo (Ethernet/IP/UDP receive + R2P2 parse + reply packetizing into a null
//! transport) against the plain UDP echo path (receive + reply in place).
//! Run: `cargo bench -p ferrix-net --bench r2p2`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use ferrix_net::corpus::{CaptureTx, Endpoints, FixedClock, NullTransport};
use ferrix_net::r2p2::{Header, MsgType, Policy, Server, ServerConfig};
use ferrix_net::{ArpConfig, ArpTable, NetStack};
use std::hint::black_box;
use std::sync::Arc;

fn stack(ep: &Endpoints) -> NetStack {
    let mut s = NetStack::new(
        ep.server_config(),
        Arc::new(ArpTable::new(ArpConfig::default())),
    );
    s.bind_udp(ep.server_port).expect("bind");
    s
}

fn header(c: &mut Criterion) {
    let mut g = c.benchmark_group("r2p2/header");
    g.throughput(Throughput::Elements(1));
    let h = Header::single(MsgType::Request, Policy::LbRoute, 7);
    g.bench_function("encode", |b| b.iter(|| black_box(black_box(&h).encode())));
    let mut pkt = h.encode().to_vec();
    pkt.extend_from_slice(&[0xa5; 64]);
    g.bench_function("parse", |b| {
        b.iter(|| black_box(Header::parse(black_box(&pkt))))
    });
    g.finish();
}

fn server_path(c: &mut Criterion) {
    let ep = Endpoints::default();
    let payload = vec![0xa5; 64];
    let mut r2p2 = Header::single(MsgType::Request, Policy::LbRoute, 7)
        .encode()
        .to_vec();
    r2p2.extend_from_slice(&payload);
    let udp_frame = ep.udp(&payload);
    let r2p2_frame = ep.udp(&r2p2);
    let mut g = c.benchmark_group("r2p2/server_echo_64B");
    g.throughput(Throughput::Elements(1));

    let mut s = stack(&ep);
    let mut tx = CaptureTx::default();
    g.bench_function("udp_baseline", |b| {
        b.iter_batched_ref(
            || udp_frame.clone(),
            |f| {
                let n = s.receive(f, 0, &mut tx).map_or(0, |d| d.payload.len());
                black_box(s.udp_reply_in_place(f, n).unwrap_or(0))
            },
            BatchSize::SmallInput,
        )
    });

    let mut s = stack(&ep);
    let mut server = Server::new(
        NullTransport::default(),
        FixedClock(0),
        ServerConfig::default(),
    );
    g.bench_function("r2p2", |b| {
        b.iter_batched_ref(
            || r2p2_frame.clone(),
            |f| {
                if let Some(d) = s.receive(f, 0, &mut tx)
                    && let Some(req) = server.handle_datagram(d.src, d.payload)
                {
                    let meta = req.meta;
                    let _ = server.send_response(&meta, &req.payload);
                }
                black_box(server.transport_mut().0)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, header, server_path);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
