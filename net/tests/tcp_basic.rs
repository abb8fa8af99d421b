//! Back-to-back endpoints: connect, pipelined request/reply in order, close.

mod tcp_common;

use tcp_common::Net;

#[test]
fn pipelined_requests_on_several_connections() {
    let mut net = Net::new(32, 4, 4096);
    net.request_reply(8, 200, 200_000);
    // Slots are reused after close: a second round works on the same pools.
    net.server.conns.clear();
    net.client.conns.clear();
    net.server.accepted = 0;
    net.server.closed = 0;
    net.client.connected = 0;
    net.client.closed = 0;
    net.request_reply(8, 50, 200_000);
}

#[test]
fn stale_ids_are_rejected() {
    let mut net = Net::new(4, 2, 2048);
    net.request_reply(1, 1, 50_000);
    let id = *net.client.conns.keys().next().unwrap();
    assert_eq!(
        net.client.ep.send(id, b"x"),
        Err(ferrix_net::tcp::TcpError::BadConn)
    );
}
