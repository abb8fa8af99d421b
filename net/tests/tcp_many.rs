//! A few hundred connections open at once on one endpoint pair.

mod tcp_common;

use ferrix_net::tcp::TcpError;
use tcp_common::{Net, PORT, SERVER_IP};

#[test]
fn three_hundred_connections_at_once() {
    let mut net = Net::new(400, 16, 2048);
    let n = 300;
    net.request_reply(n, 20, 400_000);
    // Every connection was open at the same time: replies were all in before any close.
    assert!(
        net.server.max_open >= n,
        "server max open {}",
        net.server.max_open
    );
    assert!(net.client.max_open >= n);
}

#[test]
fn syn_burst_larger_than_the_listener_count() {
    // 2 listeners, 100 SYNs in one batch: listeners are re-armed between frames.
    let mut net = Net::new(128, 2, 1024);
    net.request_reply(100, 3, 200_000);
}

#[test]
fn pool_exhaustion_is_reported_and_recovers() {
    let mut net = Net::new(8, 2, 1024);
    let ids: Vec<_> = (0..8)
        .map(|_| net.client.ep.connect(SERVER_IP, PORT).unwrap())
        .collect();
    assert_eq!(
        net.client.ep.connect(SERVER_IP, PORT),
        Err(TcpError::PoolFull)
    );
    net.run_until(100_000, |net| net.client.connected == 8);
    for id in ids {
        net.client.ep.close(id).unwrap();
    }
    net.run_until(100_000, |net| {
        net.client.ep.connections() == 0 && net.server.ep.connections() == 0
    });
    assert_eq!(net.server.closed, 8);
    assert!(net.client.ep.connect(SERVER_IP, PORT).is_ok());
}

/// The fan-in target: 10,000 connections open at once on one endpoint (smoltcp and
/// ferrix-net are optimised in test builds for this, see the root Cargo.toml).
#[test]
fn ten_thousand_connections_at_once() {
    let n = 10_000;
    let mut net = Net::new(n + 16, 64, 1024);
    net.request_reply(n, 2, 2_000_000);
    assert!(net.server.max_open >= n);
}
