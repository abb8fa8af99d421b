//! Golden packets: byte-exact encodings checked against the table in `shared/spec/r2p2.md`
//! (single-packet request and reply, REQ0 + ACK + REQn, multi-packet reply, FEEDBACK, DROP) and
//! the 1464 / 1465-byte request boundary.

mod r2p2_sim;

use ferrix_net::r2p2::message::{MAX_PAYLOAD, REQ0_PAYLOAD};
use ferrix_net::r2p2::server::feedback_body;
use ferrix_net::r2p2::{
    Client, ClientConfig, Outcome, Payload, Policy, RequestMeta, Server, ServerConfig,
};
use r2p2_sim::{SimClock, SimTransport, Wire, addr, drain, hex};

const SEC: u64 = 1_000_000_000;

struct Pair {
    wire: Wire,
    client: Client<SimTransport, SimClock>,
    server: Server<SimTransport, SimClock>,
}

fn pair(first_rid: u16, router: Option<&str>) -> Pair {
    let wire = Wire::default();
    let clock = SimClock::default();
    let client = Client::new(
        SimTransport::new(addr("10.0.0.1:5000"), &wire),
        clock.clone(),
        ClientConfig {
            first_rid,
            ..ClientConfig::default()
        },
    );
    let server = Server::new(
        SimTransport::new(addr("10.0.0.2:8000"), &wire),
        clock,
        ServerConfig {
            router: router.map(addr),
            jbsq_n: 3,
            ..ServerConfig::default()
        },
    );
    Pair {
        wire,
        client,
        server,
    }
}

fn send(p: &mut Pair, payload: &[u8]) {
    p.client
        .send_request(addr("10.0.0.2:8000"), payload, Policy::LbRoute, SEC, 1)
        .unwrap();
}

#[test]
fn single_packet_request_and_reply() {
    let mut p = pair(7, None);
    send(&mut p, b"1234");
    let out = drain(&p.wire);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes, hex("cc 08 00 c0 00 07 00 01 31 32 33 34"));
    let req = p.server.handle_datagram(out[0].src, &out[0].bytes).unwrap();
    assert!(matches!(req.payload, Payload::Borrowed(b"1234")));
    let meta = req.meta;
    p.server.send_response(&meta, b"1234").unwrap();
    let out = drain(&p.wire);
    assert_eq!(out.len(), 1, "no router: no FEEDBACK");
    assert_eq!(out[0].dst, addr("10.0.0.1:5000"));
    assert_eq!(out[0].bytes, hex("cc 08 11 c0 00 07 00 01 31 32 33 34"));
    p.client.handle_datagram(out[0].src, &out[0].bytes);
    let c = p.client.next_completion().unwrap();
    assert_eq!(c.outcome, Outcome::Success(b"1234".to_vec()));
    assert_eq!(c.ctx, 1);
    assert!(p.client.next_completion().is_none());
}

#[test]
fn three_packet_request() {
    let mut p = pair(8, None);
    let body: Vec<u8> = (0..REQ0_PAYLOAD + MAX_PAYLOAD + 100)
        .map(|i| i as u8)
        .collect();
    send(&mut p, &body);
    let out = drain(&p.wire);
    assert_eq!(out.len(), 1, "only REQ0 before the ACK");
    assert_eq!(out[0].bytes[..8], hex("cc 08 00 80 00 08 00 03")[..]);
    assert_eq!(out[0].bytes[8..], body[..14]);
    assert!(
        p.server
            .handle_datagram(out[0].src, &out[0].bytes)
            .is_none()
    );
    let ack = drain(&p.wire);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].dst, addr("10.0.0.1:5000"));
    assert_eq!(ack[0].bytes, hex("cc 08 31 c0 00 08 00 01 41 43 4b"));
    p.client.handle_datagram(ack[0].src, &ack[0].bytes);
    let rest = drain(&p.wire);
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|d| d.dst == addr("10.0.0.2:8000")));
    assert_eq!(rest[0].bytes[..8], hex("cc 08 00 00 00 08 00 01")[..]);
    assert_eq!(rest[0].bytes[8..], body[14..14 + 1464]);
    assert_eq!(rest[1].bytes[..8], hex("cc 08 00 40 00 08 00 02")[..]);
    assert_eq!(rest[1].bytes[8..], body[14 + 1464..]);
    assert!(
        p.server
            .handle_datagram(rest[0].src, &rest[0].bytes)
            .is_none()
    );
    let req = p
        .server
        .handle_datagram(rest[1].src, &rest[1].bytes)
        .unwrap();
    assert_eq!(&*req.payload, &body[..]);
    assert_eq!(req.meta.rid, 8);
}

#[test]
fn multi_packet_reply() {
    let mut p = pair(9, None);
    send(&mut p, b"x");
    let out = drain(&p.wire);
    let meta = p
        .server
        .handle_datagram(out[0].src, &out[0].bytes)
        .unwrap()
        .meta;
    let reply: Vec<u8> = (0..3000).map(|i| (i * 7) as u8).collect();
    p.server.send_response(&meta, &reply).unwrap();
    let out = drain(&p.wire);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].bytes[..8], hex("cc 08 11 80 00 09 00 03")[..]);
    assert_eq!(
        out[0].bytes.len(),
        8 + 1464,
        "replies fill the first packet"
    );
    assert_eq!(out[1].bytes[..8], hex("cc 08 11 00 00 09 00 01")[..]);
    assert_eq!(out[2].bytes[..8], hex("cc 08 11 40 00 09 00 02")[..]);
    assert_eq!(out[2].bytes.len(), 8 + 3000 - 2 * 1464);
    for d in out.iter().rev() {
        p.client.handle_datagram(d.src, &d.bytes);
    }
    assert_eq!(
        p.client.next_completion().unwrap().outcome,
        Outcome::Success(reply)
    );
}

#[test]
fn feedback_after_reply() {
    let mut p = pair(7, Some("10.0.0.9:9000"));
    send(&mut p, b"1234");
    let out = drain(&p.wire);
    let meta = p
        .server
        .handle_datagram(out[0].src, &out[0].bytes)
        .unwrap()
        .meta;
    p.server.send_response(&meta, b"ok").unwrap();
    let out = drain(&p.wire);
    assert_eq!(out.len(), 2);
    let fb = &out[1];
    assert_eq!(fb.dst, addr("10.0.0.9:9000"));
    // Header, reference body (rid 7, port 5000 = 0x1388, IP 10.0.0.1), then n = 3, served = 1.
    assert_eq!(
        fb.bytes,
        hex(
            "cc 08 20 c0 00 07 00 01  00 07 13 88 0a 00 00 01  00 00 00 03  00 00 00 00 00 00 00 01"
        )
    );
    let m = RequestMeta {
        client: addr("10.0.0.1:5000"),
        rid: 7,
        policy: Policy::LbRoute,
    };
    assert_eq!(feedback_body(&m, 3, 1)[..], fb.bytes[8..]);
}

#[test]
fn drop_through_flow_control() {
    let mut p = pair(7, None);
    p.server.set_flow_control(Box::new(|_| false));
    send(&mut p, b"1234");
    let out = drain(&p.wire);
    assert!(
        p.server
            .handle_datagram(out[0].src, &out[0].bytes)
            .is_none()
    );
    let out = drain(&p.wire);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes, hex("cc 08 41 c0 00 07 00 01 44 52 4f 50"));
    p.client.handle_datagram(out[0].src, &out[0].bytes);
    assert_eq!(
        p.client.next_completion().unwrap().outcome,
        Outcome::Dropped
    );
    assert_eq!(p.client.in_flight(), 0);
}

#[test]
fn boundary_1464_is_one_packet_1465_is_two() {
    let mut p = pair(1, None);
    send(&mut p, &[0xab; 1464]);
    let out = drain(&p.wire);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes.len(), 8 + 1464);
    assert_eq!(out[0].bytes[3], 0xc0);
    assert!(
        p.server
            .handle_datagram(out[0].src, &out[0].bytes)
            .is_some()
    );

    send(&mut p, &[0xcd; 1465]);
    let out = drain(&p.wire);
    assert_eq!(out.len(), 1, "REQ0 only");
    assert_eq!(out[0].bytes[..8], hex("cc 08 00 80 00 02 00 02")[..]);
    assert_eq!(out[0].bytes.len(), 8 + 14);
    assert!(
        p.server
            .handle_datagram(out[0].src, &out[0].bytes)
            .is_none()
    );
    let ack = drain(&p.wire);
    p.client.handle_datagram(ack[0].src, &ack[0].bytes);
    let rest = drain(&p.wire);
    assert_eq!(rest.len(), 1, "ACK + 1 more");
    assert_eq!(rest[0].bytes[..8], hex("cc 08 00 40 00 02 00 01")[..]);
    assert_eq!(rest[0].bytes.len(), 8 + 1451);
    let req = p
        .server
        .handle_datagram(rest[0].src, &rest[0].bytes)
        .unwrap();
    assert_eq!(req.payload.len(), 1465);
}

#[test]
fn larger_header_size_is_honoured_and_bad_headers_counted() {
    let mut p = pair(1, None);
    let src = addr("10.0.0.1:5000");
    // header_size 10: two extra bytes before the payload.
    let long = hex("cc 0a 00 c0 00 05 00 01 ee ee 61 62");
    let req = p.server.handle_datagram(src, &long).unwrap();
    assert_eq!(&*req.payload, b"ab");
    assert!(
        p.server
            .handle_datagram(src, &hex("cd 08 00 c0 00 05 00 01"))
            .is_none()
    );
    assert!(
        p.server
            .handle_datagram(src, &hex("cc 07 00 c0 00 05 00 01"))
            .is_none()
    );
    assert!(
        p.server
            .handle_datagram(src, &hex("cc 20 00 c0 00 05 00 01"))
            .is_none()
    );
    assert!(
        p.server
            .handle_datagram(src, &hex("cc 08 f0 c0 00 05 00 01"))
            .is_none()
    );
    assert!(
        p.server
            .handle_datagram(src, &hex("cc 08 0f c0 00 05 00 01"))
            .is_none()
    );
    let s = p.server.stats();
    assert_eq!((s.bad_header, s.unknown_type, s.unknown_policy), (3, 1, 1));
}

#[test]
fn timeout_and_send_failure_complete_once() {
    let wire = Wire::default();
    let clock = SimClock::default();
    let mut t = SimTransport::new(addr("10.0.0.1:5000"), &wire);
    t.fail = true;
    let mut c = Client::new(t, clock.clone(), ClientConfig::default());
    c.send_request(addr("10.0.0.2:8000"), b"a", Policy::LbRoute, SEC, 5)
        .unwrap();
    assert_eq!(c.next_completion().unwrap().outcome, Outcome::SendFailed);
    c.transport_mut().fail = false;
    c.send_request(addr("10.0.0.2:8000"), b"a", Policy::LbRoute, SEC, 6)
        .unwrap();
    c.poll_timers();
    assert!(c.next_completion().is_none());
    clock.advance(SEC);
    c.poll_timers();
    c.poll_timers();
    let done = c.next_completion().unwrap();
    assert_eq!((done.ctx, done.outcome), (6, Outcome::Timeout));
    assert!(c.next_completion().is_none());
}

#[test]
fn rids_in_flight_are_not_reused() {
    let wire = Wire::default();
    let mut c = Client::new(
        SimTransport::new(addr("10.0.0.1:5000"), &wire),
        SimClock::default(),
        ClientConfig {
            first_rid: u16::MAX - 1,
            ..ClientConfig::default()
        },
    );
    let a = c
        .send_request(addr("10.0.0.2:8000"), b"a", Policy::LbRoute, SEC, 0)
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    seen.insert(a.rid);
    for _ in 0..u16::MAX {
        let h = c
            .send_request(addr("10.0.0.2:8000"), b"a", Policy::LbRoute, SEC, 0)
            .unwrap();
        assert!(seen.insert(h.rid), "rid {} reused", h.rid);
    }
    assert!(
        c.send_request(addr("10.0.0.2:8000"), b"a", Policy::LbRoute, SEC, 0)
            .is_err()
    );
}

#[test]
fn in_place_reply_matches_the_golden_reply() {
    let mut p = pair(7, Some("10.0.0.9:9000"));
    send(&mut p, b"1234");
    let mut out = drain(&p.wire);
    let meta = p
        .server
        .handle_datagram(out[0].src, &out[0].bytes)
        .unwrap()
        .meta;
    // The echo payload is already at [8..]: only the header is written.
    let buf = &mut out[0].bytes;
    let n = p.server.response_in_place(&meta, buf, 4).unwrap();
    assert_eq!(buf[..n], hex("cc 08 11 c0 00 07 00 01 31 32 33 34")[..]);
    let fb = drain(&p.wire);
    assert_eq!(fb.len(), 1, "FEEDBACK still goes to the router");
    assert_eq!(fb[0].bytes[..8], hex("cc 08 20 c0 00 07 00 01")[..]);
    assert!(
        p.server
            .response_in_place(&meta, &mut [0; 3000], 1465)
            .is_none()
    );
}
