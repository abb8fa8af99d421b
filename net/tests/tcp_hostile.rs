//! Hostile frames: random bytes and mutated copies of real TCP frames never panic the endpoint,
//! and it still serves afterwards.

mod tcp_common;

use ferrix_net::tcp::TcpEvent;
use tcp_common::Net;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_and_mutated_frames() {
    let mut net = Net::new(64, 4, 2048);
    let captured = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    net.request_reply(4, 20, 200_000);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // Real client frames (ARP, SYN, data, FIN) of another exchange between the same
    // addresses and ports, to mutate.
    {
        let c = captured.clone();
        let mut probe = Net::new(8, 2, 1024);
        probe.client_filter = Some(Box::new(move |f: &[u8]| {
            c.borrow_mut().push(f.to_vec());
            false
        }));
        probe.request_reply(2, 5, 100_000);
    }
    let samples = captured.borrow().clone();
    assert!(samples.len() > 10);
    let mut events = Vec::new();
    let (mut replies, mut accepted) = (0, 0);
    for round in 0..20_000u32 {
        let frame = if round.is_multiple_of(4) {
            let len = (rng.next() % 1600) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut f = samples[(rng.next() as usize) % samples.len()].clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % f.len();
                f[i] = rng.next() as u8;
            }
            if rng.next().is_multiple_of(8) {
                f.truncate((rng.next() as usize) % f.len());
            }
            f
        };
        net.server.port.rx.push_back(frame);
        events.clear();
        net.server
            .ep
            .poll(net.now, &mut net.server.port, &mut events);
        // Replies to garbage (resets, ARP) are discarded; no connection is accepted by a
        // mutated frame of another endpoint's exchange without a full handshake.
        replies += net.server.port.tx.len();
        net.server.port.tx.clear();
        for ev in &events {
            if let TcpEvent::Accepted(id) = ev {
                accepted += 1;
                net.server.ep.abort(*id).unwrap();
            }
        }
        net.now += ferrix_net::tcp::Duration::from_micros(10);
    }
    eprintln!("junk phase: {replies} frames sent by the server, {accepted} accepted");
    // The junk reached TCP: the server answered some of it.
    assert!(replies > 100);
    // Let aborted or half-open junk expire, then serve normally.
    net.server.conns.clear();
    net.client.conns.clear();
    net.server.accepted = 0;
    net.server.closed = 0;
    net.client.connected = 0;
    net.client.closed = 0;
    net.request_reply(4, 20, 2_000_000);
}
