//! Parking: connections quiet for `park_after_ms` leave smoltcp's socket set (a poll no
//! longer visits them) and come back, intact, with their next segment or call.

mod tcp_common;

use ferrix_net::tcp::{ConnId, Duration};
use tcp_common::{Net, PORT, SERVER_IP};

/// Opens `n` connections and makes one request/reply round on each.
fn open_and_talk(net: &mut Net, n: usize) -> Vec<ConnId> {
    let ids: Vec<ConnId> = (0..n)
        .map(|_| net.client.ep.connect(SERVER_IP, PORT).unwrap())
        .collect();
    net.run_until(200_000, |net| net.client.connected == n);
    round(net, &ids, 1);
    ids
}

/// Every connection sends request `seq` and gets its reply.
fn round(net: &mut Net, ids: &[ConnId], seq: u64) {
    for (i, &id) in ids.iter().enumerate() {
        net.client.send_msg(id, ((i as u64) << 32) | seq);
    }
    net.run_until(200_000, |net| {
        ids.iter()
            .all(|id| net.client.conns[id].got.len() as u64 == seq)
    });
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            net.client.conns[id].got.last(),
            Some(&!(((i as u64) << 32) | seq)),
            "reply {seq} of connection {i}"
        );
    }
}

/// Lets simulated time pass with polls but no traffic.
fn idle(net: &mut Net, ms: u64) {
    let until = net.now + Duration::from_millis(ms);
    while net.now < until {
        net.step();
    }
}

#[test]
fn quiet_connections_park_and_come_back_on_traffic() {
    let n = 300;
    let mut net = Net::new(n + 8, 8, 1024);
    let ids = open_and_talk(&mut net, n);
    idle(&mut net, 200);
    // Only the listeners are left in the server's set; the connections are all still open.
    assert_eq!(
        net.server.ep.hot_sockets(),
        8,
        "{:?}",
        net.server.ep.stats()
    );
    assert_eq!(net.server.ep.connections(), n);
    assert!(net.server.ep.stats().parked >= n as u64);
    // Their next segments bring them back; replies flow as before.
    round(&mut net, &ids, 2);
    assert!(net.server.ep.stats().unparked >= n as u64);
    idle(&mut net, 200);
    round(&mut net, &ids, 3);
    // Closing from the client while the server side is parked: the FIN unparks it.
    idle(&mut net, 200);
    for &id in &ids {
        net.client.ep.close(id).unwrap();
    }
    net.run_until(400_000, |net| {
        net.server.closed == n && net.client.closed == n && net.server.ep.connections() == 0
    });
    assert!(net.server.conns.values().all(|c| c.peer_closed && c.closed));
}

#[test]
fn a_call_on_a_parked_connection_brings_it_back() {
    let mut net = Net::new(16, 2, 1024);
    let ids = open_and_talk(&mut net, 4);
    idle(&mut net, 200);
    assert_eq!(net.server.ep.hot_sockets(), 2);
    // The server sends first (a push): the parked socket must be back to send it.
    let server_ids: Vec<ConnId> = net.server.conns.keys().copied().collect();
    for &sid in &server_ids {
        net.server.send_msg(sid, 0xfeed);
    }
    net.run_until(100_000, |net| {
        ids.iter()
            .all(|id| net.client.conns[id].got.last() == Some(&0xfeed))
    });
    assert!(net.server.ep.stats().unparked >= 4);
}

#[test]
fn parking_off_keeps_every_socket_in_the_set() {
    let mut net = Net::with_park_after(16, 2, 1024, 0);
    let _ids = open_and_talk(&mut net, 4);
    idle(&mut net, 200);
    assert_eq!(net.server.ep.hot_sockets(), 2 + 4);
    assert_eq!(net.server.ep.stats().parked, 0);
}
