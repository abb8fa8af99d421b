//! The router's decision path on frames already in memory, shared by the benchmark
//! (benches/route.rs) and the instruction-count example (examples/route_instructions.rs).
//!
//! A workload is a sequence of full Ethernet/IPv4/UDP frames: REQ0s from 1024 clients, and
//! after each REQ0 (once `LAG` are outstanding) the FEEDBACK, from the right server, of the
//! request sent `LAG` REQ0s before, so the router stays in steady state (JBSQ(2) over 16
//! servers, about `LAG` requests outstanding). The frames are built by a dry run of a clone of
//! the router: the same seed and state make the same decisions when the frames are replayed.

#![allow(dead_code)]

use ferrix_net::MacAddr;
use ferrix_net::forward::retarget_udp;
use ferrix_net::r2p2::server::feedback_body;
use ferrix_net::r2p2::{Header, MsgType, Policy, RequestMeta};
use ferrix_net::stack::{UDP_PAYLOAD_OFFSET, write_udp_frame};
use ferrix_router::{Balance, Output, Router, RouterConfig, Verdict};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Servers.
pub const SERVERS: usize = 16;
/// Requests outstanding in steady state (of the 32 slots JBSQ(2) offers).
pub const LAG: usize = 24;
/// The router's port for REQ0s and for FEEDBACK.
pub const REQ_PORT: u16 = 8000;
pub const FEEDBACK_PORT: u16 = 9000;
pub const ROUTER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub const NEXT_HOP_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

fn server(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + i as u8), 8000)
}

fn client(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 1, 1 + (i % 4) as u8),
        20_000 + (i / 4) as u16,
    )
}

fn frame(src: SocketAddrV4, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + payload.len()];
    assert!(write_udp_frame(
        &mut f,
        ROUTER_MAC,
        NEXT_HOP_MAC,
        *src.ip(),
        ROUTER_IP,
        1,
        src.port(),
        dst_port,
        payload,
    ));
    f
}

/// A received frame's UDP source and payload range, with the checks a router needs (IPv4
/// without options, UDP, not a fragment, lengths inside the frame). None: not for us.
#[inline]
pub fn parse(f: &[u8]) -> Option<(SocketAddrV4, u16, usize, usize)> {
    let h = f.first_chunk::<UDP_PAYLOAD_OFFSET>()?;
    if h[12..14] != [0x08, 0x00] || h[14] != 0x45 || h[23] != 17 || h[20] & 0x3f != 0 || h[21] != 0
    {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([h[38], h[39]]));
    if udp_len < 8 || 34 + udp_len > f.len() {
        return None;
    }
    let src = SocketAddrV4::new(
        Ipv4Addr::new(h[26], h[27], h[28], h[29]),
        u16::from_be_bytes([h[34], h[35]]),
    );
    Some((
        src,
        u16::from_be_bytes([h[36], h[37]]),
        UDP_PAYLOAD_OFFSET,
        34 + udp_len,
    ))
}

/// The router: JBSQ(2), the 16 servers joined by a heartbeat each.
pub fn router() -> Router {
    let mut r = Router::new(RouterConfig {
        balance: Balance::Jbsq(2),
        ..RouterConfig::default()
    });
    for i in 0..SERVERS {
        let meta = RequestMeta {
            client: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            rid: 0,
            policy: Policy::LbRoute,
        };
        let mut d = Header::single(MsgType::Feedback, Policy::LbRoute, 0)
            .encode()
            .to_vec();
        d.extend_from_slice(&feedback_body(&meta, 2, 0));
        r.handle(0, server(i), &d, &mut |_| {});
    }
    r
}

/// `n` REQ0 frames, each followed (after the first `LAG`) by one FEEDBACK frame, built by
/// a dry run of a clone of `start`.
pub fn workload(start: &Router, n: usize) -> Vec<Vec<u8>> {
    let mut r = start.clone();
    let mut frames = Vec::with_capacity(2 * n);
    let mut sent: Vec<(RequestMeta, SocketAddrV4)> = Vec::with_capacity(n);
    let mut served = [0u64; SERVERS];
    for i in 0..n {
        let c = client(i % 1024);
        let rid = (i / 1024) as u16;
        let mut d = Header::single(MsgType::Request, Policy::LbRoute, rid)
            .encode()
            .to_vec();
        d.extend_from_slice(&[0xa5; 14]);
        let f = frame(c, REQ_PORT, &d);
        match r.request(0, c, &d) {
            Verdict::Forward(s) => sent.push((
                RequestMeta {
                    client: c,
                    rid,
                    policy: Policy::LbRoute,
                },
                s,
            )),
            v => panic!("REQ0 {i} not forwarded: {v:?}"),
        }
        frames.push(f);
        if i >= LAG {
            let (meta, s) = sent[i - LAG];
            let k = usize::from(s.ip().octets()[3]) - 1;
            served[k] += 1;
            let mut d = Header::single(MsgType::Feedback, Policy::LbRoute, meta.rid)
                .encode()
                .to_vec();
            d.extend_from_slice(&feedback_body(&meta, 2, served[k]));
            frames.push(frame(s, FEEDBACK_PORT, &d));
            r.feedback(0, s, &d, &mut |_| {});
        }
    }
    frames
}

/// What one packet did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub forwarded: u64,
    pub feedback: u64,
    pub other: u64,
}

/// The router's path for one received frame: parse, decide, rewrite in place for a REQ0
/// forwarded (the caller would then transmit the frame).
#[inline(always)]
pub fn route_one(r: &mut Router, f: &mut [u8], now: u64, count: &mut Count) {
    let Some((src, dport, lo, hi)) = parse(f) else {
        count.other += 1;
        return;
    };
    if dport == FEEDBACK_PORT {
        count.feedback += 1;
        r.feedback(now, src, &f[lo..hi], &mut |o| {
            if let Output::Forward { .. } = o {
                count.forwarded += 1;
            }
        });
        return;
    }
    match r.request(now, src, &f[lo..hi]) {
        Verdict::Forward(s) => {
            if retarget_udp(f, ROUTER_MAC, NEXT_HOP_MAC, s).is_ok() {
                count.forwarded += 1;
            }
        }
        _ => count.other += 1,
    }
}

/// The trivial forwarder: parse, rewrite to a fixed server.
#[inline(always)]
pub fn forward_one(f: &mut [u8], to: SocketAddrV4, count: &mut Count) {
    if parse(f).is_some() && retarget_udp(f, ROUTER_MAC, NEXT_HOP_MAC, to).is_ok() {
        count.forwarded += 1;
    } else {
        count.other += 1;
    }
}

/// The fixed server of the trivial forwarder.
pub fn fixed_server() -> SocketAddrV4 {
    server(0)
}
