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

#[test]
fn retransmitted_syns_open_one_connection_each() {
    // The first two SYN-ACKs of every connection are lost, so each client retransmits its SYN
    // while the server holds a half-open connection for it: the retransmission must reach that
    // connection, not open another one on a different listener.
    use std::collections::HashMap;
    let mut net = Net::new(64, 8, 2048);
    // A first round frees slots in a mixed order, so listeners sit before and after the
    // half-open connections in smoltcp's socket order.
    net.request_reply(16, 1, 200_000);
    net.server.conns.clear();
    net.client.conns.clear();
    net.server.accepted = 0;
    net.server.closed = 0;
    net.server.max_open = 0;
    net.client.connected = 0;
    net.client.closed = 0;
    let mut seen: HashMap<u16, usize> = HashMap::new();
    net.server_filter = Some(Box::new(move |f: &[u8]| {
        if tcp_common::tcp_flags(f) != Some(0x12) {
            return false;
        }
        let dst_port = u16::from_be_bytes([f[14 + 20 + 2], f[14 + 20 + 3]]);
        let n = seen.entry(dst_port).or_default();
        *n += 1;
        *n <= 2
    }));
    net.request_reply(16, 10, 200_000);
    assert_eq!(net.server.max_open, 16);
    assert!(net.dropped >= 32);
    assert!(net.server.ep.stats().dup_syns_dropped > 0);
}

#[test]
fn zero_copy_send_and_stats() {
    use tcp_common::{PORT, SERVER_IP};
    let mut net = Net::new(4, 2, 2048);
    let id = net.client.ep.connect(SERVER_IP, PORT).unwrap();
    net.run_until(10_000, |net| net.client.connected == 1);
    let req = 0x0102_0304_0506_0708u64;
    let n = net
        .client
        .ep
        .send_with(id, |buf| {
            buf[..8].copy_from_slice(&req.to_be_bytes());
            8
        })
        .unwrap();
    assert_eq!(n, 8);
    // `flush` puts it on the wire at once, before the next poll.
    assert!(net.client.port.tx.is_empty());
    net.client.ep.flush(net.now, &mut net.client.port);
    assert_eq!(net.client.port.tx.len(), 1);
    net.run_until(10_000, |net| net.client.conns[&id].got.len() == 1);
    assert_eq!(net.client.conns[&id].got, [!req]);
    let s = net.server.ep.stats();
    assert_eq!((s.accepted, s.closed), (1, 0));
    assert_eq!(net.client.ep.stats().connected, 1);
}

#[test]
fn idle_polls_return_at_once_and_timers_still_fire() {
    use ferrix_net::tcp::Duration;
    use tcp_common::{PORT, SERVER_IP};
    let mut net = Net::new(4, 2, 4096);
    let id = net.client.ep.connect(SERVER_IP, PORT).unwrap();
    net.run_until(10_000, |n| {
        n.client.connected == 1 && n.server.accepted == 1
    });
    net.client.send_msg(id, 7);
    net.run_until(10_000, |n| n.client.conns[&id].got == [!7]);
    // Settle: delayed ACKs and the like go out.
    for _ in 0..100 {
        net.step();
    }
    // Nothing in flight, nothing received, nothing called: polls return at once.
    let s0 = net.server.ep.stats().polls_skipped;
    for _ in 0..10 {
        net.server
            .ep
            .poll(net.now, &mut net.server.port, &mut net.server.events);
    }
    assert_eq!(net.server.ep.stats().polls_skipped, s0 + 10);
    let quiet = net
        .server
        .ep
        .quiet_until()
        .expect("a quiet endpoint says until when");
    assert!(quiet > net.now);
    // A call makes it busy again.
    net.client.send_msg(id, 9);
    assert_eq!(net.client.ep.quiet_until(), None);
    net.run_until(10_000, |n| n.client.conns[&id].got == [!7, !9]);
    for _ in 0..100 {
        net.step();
    }
    assert!(net.server.port.tx.is_empty());
    // A request whose segment is lost: the client's polls without frames are skipped while
    // its retransmission timer runs, and the timer still fires.
    net.client.send_msg(id, 8);
    net.client
        .ep
        .poll(net.now, &mut net.client.port, &mut net.client.events);
    assert_eq!(net.client.port.tx.len(), 1, "the request segment");
    net.client.port.tx.clear();
    let c0 = net.client.ep.stats().polls_skipped;
    let mut waited = 0;
    while net.client.port.tx.is_empty() {
        net.now += Duration::from_micros(200);
        waited += 1;
        assert!(waited < 50_000, "no retransmission after 10 s");
        net.client
            .ep
            .poll(net.now, &mut net.client.port, &mut net.client.events);
    }
    assert!(
        net.client.ep.stats().polls_skipped > c0 + 100,
        "polls while the timer ran were skipped ({} of {waited})",
        net.client.ep.stats().polls_skipped - c0
    );
    net.run_until(100_000, |n| n.client.conns[&id].got == [!7, !9, !8]);
}
