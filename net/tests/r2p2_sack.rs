//! The SACK extension: lost packets of multi-packet requests and replies, and a lost ACK, are
//! recovered after an RTO when SACK is on; with it off (the reference behaviour) the request
//! times out.

mod r2p2_sim;

use ferrix_net::r2p2::{
    Client, ClientConfig, Header, MsgType, Outcome, Policy, Server, ServerConfig,
};
use r2p2_sim::{Dgram, SimClock, SimTransport, Wire, addr, drain};

const RTO: u64 = 1_000_000;
const TIMEOUT: u64 = 50 * RTO;

fn msg_type(d: &Dgram) -> MsgType {
    Header::parse(&d.bytes).unwrap().0.msg_type
}

/// Runs one request of `req_len` bytes (reply: the same bytes) and drops the datagrams for which
/// `lose(n, d)` says so (n counts datagrams of d's type so far). Returns the outcome.
fn exchange(sack: bool, req_len: usize, lose: impl Fn(usize, &Dgram) -> bool) -> Outcome {
    let wire = Wire::default();
    let clock = SimClock::default();
    let (caddr, saddr) = (addr("10.0.0.1:5000"), addr("10.0.0.2:8000"));
    let mut client = Client::new(
        SimTransport::new(caddr, &wire),
        clock.clone(),
        ClientConfig {
            sack,
            rto_ns: RTO,
            ..ClientConfig::default()
        },
    );
    let mut server = Server::new(
        SimTransport::new(saddr, &wire),
        clock.clone(),
        ServerConfig {
            sack,
            rto_ns: RTO,
            gc_rtos: 20,
            ..ServerConfig::default()
        },
    );
    let body: Vec<u8> = (0..req_len).map(|i| i as u8).collect();
    client
        .send_request(saddr, &body, Policy::LbRoute, TIMEOUT, 0)
        .unwrap();
    let mut seen = std::collections::HashMap::<(bool, MsgType), usize>::new();
    while clock.0.get() <= TIMEOUT {
        for d in drain(&wire) {
            let n = seen.entry((d.dst == saddr, msg_type(&d))).or_default();
            *n += 1;
            if lose(*n, &d) {
                continue;
            }
            if d.dst == saddr {
                if let Some(req) = server.handle_datagram(d.src, &d.bytes) {
                    let (meta, reply) = (req.meta, req.payload.to_vec());
                    server.send_response(&meta, &reply).unwrap();
                }
            } else {
                client.handle_datagram(d.src, &d.bytes);
            }
        }
        if let Some(c) = client.next_completion() {
            if let Outcome::Success(r) = &c.outcome {
                assert_eq!(r, &body);
            }
            assert!(client.next_completion().is_none());
            return c.outcome;
        }
        clock.advance(RTO / 10);
        client.poll_timers();
        server.poll_timers();
    }
    panic!("no completion");
}

/// Loses the 2nd request packet (a REQn) and the 2nd reply packet.
fn lose_middle(n: usize, d: &Dgram) -> bool {
    let t = msg_type(d);
    n == 2 && (t == MsgType::Request || t == MsgType::Response)
}

#[test]
fn lost_request_and_reply_packets_are_recovered() {
    assert!(matches!(
        exchange(true, 5000, lose_middle),
        Outcome::Success(_)
    ));
}

#[test]
fn without_sack_the_same_loss_times_out() {
    assert_eq!(exchange(false, 5000, lose_middle), Outcome::Timeout);
}

#[test]
fn lost_ack_is_recovered_by_resending_req0() {
    let lose_ack = |n: usize, d: &Dgram| n == 1 && msg_type(d) == MsgType::Ack;
    assert!(matches!(
        exchange(true, 3000, lose_ack),
        Outcome::Success(_)
    ));
    assert_eq!(exchange(false, 3000, lose_ack), Outcome::Timeout);
}

#[test]
fn lost_first_and_last_reply_packets_are_recovered() {
    let lose = |n: usize, d: &Dgram| msg_type(d) == MsgType::Response && (n == 1 || n == 4);
    assert!(matches!(exchange(true, 5000, lose), Outcome::Success(_)));
}
