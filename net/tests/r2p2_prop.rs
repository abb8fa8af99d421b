//! Property tests: random message sizes (0..64 KiB) round-trip through a simulated network
//! that loses, reorders and duplicates datagrams, with simulated time; every request completes
//! exactly once (a correct reply or a timeout; without loss, always the reply), with and without the SACK
//! extension. Random bytes
//! never panic either endpoint.

mod r2p2_sim;

use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy, Server, ServerConfig};
use proptest::prelude::*;
use r2p2_sim::{Dgram, SimClock, SimTransport, Wire, addr, drain};
use std::collections::HashMap;

const TIMEOUT: u64 = 5_000_000;
const STEP: u64 = 10_000;

/// xorshift64*: the network's dice.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

fn body(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + salt) as u8).collect()
}

/// Runs `sizes` requests concurrently; returns each request's outcomes (by ctx).
fn run(
    sizes: &[usize],
    seed: u64,
    loss: u64,
    dup: u64,
    reorder: bool,
    sack: bool,
) -> Vec<Vec<Outcome>> {
    let wire = Wire::default();
    let clock = SimClock::default();
    let caddr = addr("10.0.0.1:5000");
    let saddr = addr("10.0.0.2:8000");
    let mut client = Client::new(
        SimTransport::new(caddr, &wire),
        clock.clone(),
        ClientConfig {
            sack,
            rto_ns: 100_000,
            ..ClientConfig::default()
        },
    );
    let mut server = Server::new(
        SimTransport::new(saddr, &wire),
        clock.clone(),
        ServerConfig {
            sack,
            rto_ns: 100_000,
            ..ServerConfig::default()
        },
    );
    let mut rng = Rng(seed | 1);
    for (i, &len) in sizes.iter().enumerate() {
        client
            .send_request(saddr, &body(len, i), Policy::LbRoute, TIMEOUT, i as u64)
            .unwrap();
    }
    let mut outcomes: HashMap<u64, Vec<Outcome>> = HashMap::new();
    let mut held: Vec<Dgram> = Vec::new();
    while clock.0.get() < 2 * TIMEOUT {
        let mut batch = drain(&wire);
        batch.append(&mut held);
        let mut deliver = Vec::new();
        for d in batch {
            if rng.percent(loss) {
                continue;
            }
            if rng.percent(dup) {
                deliver.push(d.clone());
            }
            // Reordering: some datagrams wait for a later round.
            if reorder && rng.percent(20) {
                held.push(d);
            } else {
                deliver.push(d);
            }
        }
        if reorder {
            for i in (1..deliver.len()).rev() {
                deliver.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
        }
        for d in deliver {
            if d.dst == saddr {
                if let Some(req) = server.handle_datagram(d.src, &d.bytes) {
                    let reply = req.payload.to_vec();
                    let _ = server.send_response(&req.meta, &reply);
                }
            } else {
                client.handle_datagram(d.src, &d.bytes);
            }
        }
        clock.advance(STEP);
        client.poll_timers();
        server.poll_timers();
        while let Some(c) = client.next_completion() {
            outcomes.entry(c.ctx).or_default().push(c.outcome);
        }
    }
    assert_eq!(client.in_flight(), 0);
    (0..sizes.len() as u64)
        .map(|i| outcomes.remove(&i).unwrap_or_default())
        .collect()
}

fn check(sizes: &[usize], got: &[Vec<Outcome>], must_succeed: bool) {
    for (i, (len, o)) in sizes.iter().zip(got).enumerate() {
        assert_eq!(o.len(), 1, "request {i} ({len} B): {} completions", o.len());
        match &o[0] {
            Outcome::Success(r) => assert_eq!(r, &body(*len, i), "request {i}: wrong reply"),
            Outcome::Timeout if !must_succeed => {}
            other => panic!("request {i} ({len} B): {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn clean_network_always_succeeds(sizes in prop::collection::vec(0usize..65536, 1..6), seed: u64) {
        let got = run(&sizes, seed, 0, 0, false, false);
        check(&sizes, &got, true);
    }

    #[test]
    fn reordering_and_duplicates_still_succeed(sizes in prop::collection::vec(0usize..65536, 1..6), seed: u64) {
        let got = run(&sizes, seed, 0, 10, true, true);
        check(&sizes, &got, true);
    }

    #[test]
    fn lossy_network_completes_exactly_once(sizes in prop::collection::vec(0usize..65536, 1..6), seed: u64, loss in 1u64..20) {
        let got = run(&sizes, seed, loss, 5, true, false);
        check(&sizes, &got, false);
    }

    #[test]
    fn lossy_network_with_sack_completes_exactly_once(sizes in prop::collection::vec(0usize..65536, 1..6), seed: u64, loss in 1u64..20) {
        let got = run(&sizes, seed, loss, 5, true, true);
        check(&sizes, &got, false);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64), tail in prop::collection::vec(any::<u8>(), 0..2000)) {
        let wire = Wire::default();
        let clock = SimClock::default();
        let mut server = Server::new(SimTransport::new(addr("10.0.0.2:8000"), &wire), clock.clone(), ServerConfig::default());
        let mut client = Client::new(SimTransport::new(addr("10.0.0.1:5000"), &wire), clock, ClientConfig::default());
        client.send_request(addr("10.0.0.2:8000"), &[1; 3000], Policy::LbRoute, TIMEOUT, 0).unwrap();
        let mut d = data.clone();
        d.extend_from_slice(&tail);
        // Also as an R2P2-looking packet, so the state machines see it.
        let mut r = vec![0xcc, 8];
        r.extend_from_slice(&d);
        for bytes in [&d, &r] {
            let _ = server.handle_datagram(addr("10.0.0.1:5000"), bytes);
            client.handle_datagram(addr("10.0.0.2:8000"), bytes);
        }
        server.poll_timers();
        client.poll_timers();
    }
}

/// The bar for SACK: a 1 % loss rate does not fail large RPCs (every multi-packet
/// request and reply recovers; only a message whose every packet is lost could not).
#[test]
fn one_percent_loss_with_sack_fails_no_large_rpc() {
    for seed in 1..=10u64 {
        let sizes: Vec<usize> = (0..6).map(|i| 20_000 + 7_000 * i + seed as usize).collect();
        let got = run(&sizes, seed * 7919, 1, 0, true, true);
        check(&sizes, &got, true);
    }
}
