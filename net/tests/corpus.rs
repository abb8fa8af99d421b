//! The malformed-frame corpus: every frame is counted under its expected drop reason, nothing
//! else changes, and the echo keeps working afterwards.

mod common;

use ferrix_net::DropReason;
use ferrix_net::corpus::Endpoints;
use ferrix_net::eth::EthFrame;
use ferrix_net::icmp::ICMP_ECHO_REPLY;
use ferrix_net::ipv4::Ipv4Packet;

#[test]
fn every_malformed_frame_is_counted_under_its_reason() {
    let ep = Endpoints::default();
    let mut s = common::server(&ep);
    let mut tx = common::tx();
    let cases = ep.malformed();
    assert!(cases.len() >= 30, "corpus has {} cases", cases.len());
    for case in &cases {
        let before = s.stats().clone();
        let got = s.receive(&case.frame, 0, &mut tx);
        assert!(got.is_none(), "{}: delivered", case.name);
        let after = s.stats();
        assert_eq!(
            after.drops(case.expect),
            before.drops(case.expect) + 1,
            "{}: expected {}, stats now:\n{}",
            case.name,
            case.expect.name(),
            after
        );
        assert_eq!(
            after.total_drops(),
            before.total_drops() + 1,
            "{}: counted more than once",
            case.name
        );
        assert_eq!(after.rx_packets, before.rx_packets + 1);
    }
    assert!(tx.frames.is_empty(), "a malformed frame got an answer");
    // Every reason that a received frame can cause appears in the corpus (the IGMP ones
    // need a joined group, which this stack has not: tests/stack.rs covers them).
    for r in DropReason::ALL {
        let tx_side = matches!(
            r,
            DropReason::TxFull
                | DropReason::ArpPending
                | DropReason::ArpEvicted
                | DropReason::IgmpMalformed
                | DropReason::IgmpIgnored
        );
        assert!(
            tx_side || cases.iter().any(|c| c.expect == *r),
            "no corpus case for {}",
            r.name()
        );
    }

    // The echo still works.
    let reply = {
        s.receive(&ep.ping(7, 1, b"still alive"), 0, &mut tx);
        tx.frames.pop().expect("echo reply")
    };
    let eth = EthFrame::parse(&reply).unwrap();
    let ip = Ipv4Packet::parse(eth.payload, 1500).unwrap();
    assert_eq!(ip.payload[0], ICMP_ECHO_REPLY);
    let mut frame = ep.udp(b"ping");
    let d = s.receive(&frame, 0, &mut tx).expect("udp delivered");
    assert_eq!(d.payload, b"ping");
    let len = s.udp_reply_in_place(&mut frame, 4).unwrap();
    assert_eq!(len, frame.len());
    assert_eq!(s.stats().total_drops(), cases.len() as u64);
}
