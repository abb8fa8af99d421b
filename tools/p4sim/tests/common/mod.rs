//! The differential harness: one trace of full Ethernet/IPv4/UDP/R2P2 frames fed to
//! `ferrix-router` (the way its callers feed it: frame checks, `Router::handle`, then
//! `ferrix_net::forward::retarget_udp` on each forward) and to p4/jbsq.p4 in p4sim.
//!
//! p4sim's recirculations: after each trace frame the switch runs until the frame has left
//! or is "parked" (a full sweep found every server at its bound); then every parked REQ0
//! gets passes until one full search of all rounds and windows goes by with no forward.

#![allow(dead_code)]

use ferrix_net::MacAddr;
use ferrix_net::forward::retarget_udp;
use ferrix_net::r2p2::server::feedback_body;
use ferrix_net::r2p2::{Header, MsgType, Policy, RequestMeta};
use ferrix_net::stack::{UDP_PAYLOAD_OFFSET, write_udp_frame};
use ferrix_router::{Balance, Output, Router, RouterConfig, SvenConfig};
use p4sim::control::jbsq::{self, JbsqConfig, Server};
use p4sim::control::sven::{self, SvenControl, SvenParams};
use p4sim::{Output as SwOut, Recirculated, Switch};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
pub const REQ_PORT: u16 = 8000;
pub const FB_PORT: u16 = 9000;
pub const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xcc];
pub const RECIRC_PORT: u16 = 68;

pub fn server_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + i as u8), 8000 + (i % 2) as u16)
}

pub fn server_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 1, i as u8]
}

pub fn client_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 1, 1 + (i % 8) as u8),
        20_000 + (i / 8) as u16,
    )
}

/// A frame from `src` to `dst` carrying `payload`; `zero_csum` sends UDP checksum 0.
pub fn frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8], zero_csum: bool) -> Vec<u8> {
    let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + payload.len()];
    assert!(write_udp_frame(
        &mut f,
        MacAddr(ROUTER_MAC),
        MacAddr(CLIENT_MAC),
        *src.ip(),
        *dst.ip(),
        7,
        src.port(),
        dst.port(),
        payload,
    ));
    if zero_csum {
        f[40] = 0;
        f[41] = 0;
    }
    f
}

pub fn req0(rid: u16, policy: u8) -> Vec<u8> {
    let mut d = Header::single(MsgType::Request, Policy::LbRoute, rid)
        .encode()
        .to_vec();
    d[2] = policy & 0x0f;
    d.extend_from_slice(&[0xa5; 14]);
    d
}

/// A FEEDBACK datagram; `ext` = Some((n, served)) appends the extension.
pub fn feedback(client: SocketAddrV4, rid: u16, ext: Option<(u32, u64)>) -> Vec<u8> {
    let mut d = Header::single(MsgType::Feedback, Policy::LbRoute, rid)
        .encode()
        .to_vec();
    let meta = RequestMeta {
        client,
        rid,
        policy: Policy::LbRoute,
    };
    let body = feedback_body(&meta, ext.map_or(0, |e| e.0), ext.map_or(0, |e| e.1));
    match ext {
        Some(_) => d.extend_from_slice(&body),
        None => d.extend_from_slice(&body[..8]),
    }
    d
}

/// (outstanding, bound) per server, in index order.
pub type Slots = Vec<(u128, u128)>;

/// What left for one trace frame: (egress port, frame bytes).
pub type Sent = Vec<(u16, Vec<u8>)>;

#[derive(Clone)]
pub struct Both {
    pub k: usize,
    pub n: u32,
    pub router: Router,
    pub sw: Switch,
    pub parked: VecDeque<Recirculated>,
    pub servers: Vec<Server>,
    pub now: u64,
    /// Passes one REQ0 may need for a full search: windows x (largest bound + 1).
    pub search_passes: usize,
    /// p4/sven.p4's control plane (None: jbsq.p4) and its next period.
    pub sven: Option<SvenControl>,
    pub next_period: u64,
}

/// The router's RNG seed in the SVEN runs (their draws are injected into the switch).
pub const SVEN_SEED: u64 = 0x5eed;

/// ferrix-router's SVEN configuration for the control plane's parameters.
pub fn sven_config(p: &SvenParams) -> SvenConfig {
    SvenConfig {
        slo_ns: p.slo_ns,
        percentile: p.percentile,
        period_ns: p.period_ns,
        step: p.step,
        cap: p.cap,
        alpha: p.alpha,
        no_drop: p.no_drop,
    }
}

impl Both {
    /// k servers, JBSQ(n); both routers learn the servers from a heartbeat each (the Rust
    /// router joins them in address order, which is the switch's index order).
    pub fn new(k: usize, n: u32) -> Both {
        Both::with_feedback(k, n, true)
    }

    /// `ext`: the servers' FEEDBACK carries the served-count extension (else the reference
    /// layout only, as the reference servers send it).
    pub fn with_feedback(k: usize, n: u32, ext: bool) -> Both {
        Both::build(k, n, ext, None)
    }

    /// SVEN in front of JBSQ(n): ferrix-router with `sven` and p4/sven.p4 with its control
    /// plane, the switch's `random` fed the router's own draws (`draws` of them, 53 bits:
    /// what `Rng::chance` compares).
    pub fn with_sven(k: usize, n: u32, params: SvenParams, draws: usize) -> Both {
        Both::build(k, n, true, Some((params, draws)))
    }

    fn build(k: usize, n: u32, ext: bool, sven_params: Option<(SvenParams, usize)>) -> Both {
        let servers: Vec<Server> = (0..k)
            .map(|i| Server {
                addr: server_addr(i),
                mac: server_mac(i),
                egress_port: 1 + i as u16,
            })
            .collect();
        let cfg = JbsqConfig {
            router: vec![
                SocketAddrV4::new(ROUTER_IP, REQ_PORT),
                SocketAddrV4::new(ROUTER_IP, FB_PORT),
            ],
            router_mac: ROUTER_MAC,
            servers: servers.clone(),
            n,
            recirc_port: RECIRC_PORT,
            routes: vec![],
            hosts: vec![],
        };
        let ctl = sven_params.map(|(p, _)| SvenControl::new(p));
        let mut sw = match &ctl {
            Some(c) => sven::switch(&cfg, c, 1).expect("sven.p4 loads"),
            None => jbsq::switch(&cfg, 1).expect("jbsq.p4 loads"),
        };
        let mut router = Router::new(RouterConfig {
            balance: Balance::Jbsq(n),
            sven: sven_params.map(|(p, _)| sven_config(&p)),
            seed: SVEN_SEED,
            ..RouterConfig::default()
        });
        if let Some((_, draws)) = sven_params {
            let mut rng = ferrix_router::rng::Rng::new(SVEN_SEED);
            sw.rt.rng.inject((0..draws).map(|_| rng.next_u64() >> 11));
            // Periods start now: the router's first tick sets its next period.
            router.poll(0, &mut |_| panic!("nothing to send at 0"));
        }
        let mut b = Both {
            k,
            n,
            router,
            sw,
            parked: VecDeque::new(),
            servers,
            now: 0,
            search_passes: k.div_ceil(jbsq::GROUP) * (n as usize + 2),
            next_period: ctl.as_ref().map_or(u64::MAX, |c| c.params.period_ns),
            sven: ctl,
        };
        for i in 0..k {
            let hb = feedback(
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                0,
                ext.then_some((n, 0)),
            );
            let f = frame(
                server_addr(i),
                SocketAddrV4::new(ROUTER_IP, FB_PORT),
                &hb,
                false,
            );
            let (r, p) = b.step(&f);
            assert!(r.is_empty() && p.is_empty());
        }
        b
    }

    fn mac_of(&self, s: SocketAddrV4) -> ([u8; 6], u16) {
        let i = self
            .servers
            .iter()
            .position(|x| x.addr == s)
            .expect("known server");
        (self.servers[i].mac, self.servers[i].egress_port)
    }

    /// The Rust side: the frame checks ferrix-router's callers make, `handle`, rewrite.
    pub fn rust(&mut self, f: &[u8]) -> Sent {
        let mut sent = vec![];
        let Some(h) = f.first_chunk::<UDP_PAYLOAD_OFFSET>() else {
            return sent;
        };
        if h[12..14] != [8, 0] || h[14] != 0x45 || h[23] != 17 || h[20] & 0x3f != 0 || h[21] != 0 {
            return sent;
        }
        let udp_len = usize::from(u16::from_be_bytes([h[38], h[39]]));
        if udp_len < 8 || 34 + udp_len > f.len() {
            return sent;
        }
        let dst = SocketAddrV4::new(
            Ipv4Addr::new(h[30], h[31], h[32], h[33]),
            u16::from_be_bytes([h[36], h[37]]),
        );
        if dst.ip() != &ROUTER_IP || (dst.port() != REQ_PORT && dst.port() != FB_PORT) {
            return sent;
        }
        let src = SocketAddrV4::new(
            Ipv4Addr::new(h[26], h[27], h[28], h[29]),
            u16::from_be_bytes([h[34], h[35]]),
        );
        let mut outs = vec![];
        self.router
            .handle(self.now, src, &f[42..34 + udp_len], &mut |o| match o {
                Output::Forward {
                    client,
                    server,
                    datagram,
                } => outs.push((client, server, datagram.to_vec())),
                Output::Drop { client, message } => outs.push((
                    client,
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    message.to_vec(),
                )),
            });
        for (client, server, datagram) in outs {
            if server.ip().is_unspecified() {
                // A DROP to the client from the address it sent to, back out of the port the
                // REQ0 came in on (0 in these tests). p4/jbsq.p4 never sends one (README).
                let mut out = vec![0u8; UDP_PAYLOAD_OFFSET + datagram.len()];
                let mut client_mac = [0u8; 6];
                client_mac.copy_from_slice(&f[6..12]);
                assert!(write_udp_frame(
                    &mut out,
                    MacAddr(client_mac),
                    MacAddr(ROUTER_MAC),
                    *dst.ip(),
                    *client.ip(),
                    0,
                    dst.port(),
                    client.port(),
                    &datagram,
                ));
                sent.push((0, out));
                continue;
            }
            // A released REQ0 is rebuilt from its datagram (the same frame the trace sent);
            // a direct forward is the frame itself.
            let mut out = if datagram[..] == f[42..34 + udp_len] {
                f.to_vec()
            } else {
                frame(
                    client,
                    SocketAddrV4::new(ROUTER_IP, REQ_PORT),
                    &datagram,
                    false,
                )
            };
            let (mac, port) = self.mac_of(server);
            retarget_udp(&mut out, MacAddr(ROUTER_MAC), MacAddr(mac), server).expect("forwardable");
            sent.push((port, out));
        }
        sent
    }

    /// The switch side: inject, run to a Tx, a drop or a park; then give parked REQ0s their
    /// passes.
    pub fn p4(&mut self, f: &[u8]) -> Sent {
        let mut sent = vec![];
        let mut out = vec![];
        self.sw
            .inject(0, f, self.now, &mut out)
            .expect("no runtime error");
        let parked_slot = self.sw.prog.meta("s.parked").expect("meta s.parked");
        let window_slot = self.sw.prog.meta("s.window").expect("meta s.window");
        let mut passes = 0;
        while let Some(o) = out.pop() {
            match o {
                SwOut::Tx { port, bytes } => sent.push((port, bytes)),
                SwOut::Recirculate(r) => {
                    passes += 1;
                    let parked = r.meta(parked_slot) == Some(1) && r.meta(window_slot) == Some(0);
                    if parked || passes > 10 * self.search_passes {
                        self.parked.push_back(r);
                    } else {
                        self.sw
                            .reinject(&r, self.now, &mut out)
                            .expect("no runtime error");
                    }
                }
            }
        }
        // Parked REQ0s, in the order they parked, one pass each in turn.
        let mut idle = 0;
        while !self.parked.is_empty() && idle < self.parked.len() * self.search_passes {
            let r = self.parked.pop_front().expect("nonempty");
            let mut out = vec![];
            self.sw
                .reinject(&r, self.now, &mut out)
                .expect("no runtime error");
            idle += 1;
            for o in out {
                match o {
                    SwOut::Tx { port, bytes } => {
                        sent.push((port, bytes));
                        idle = 0;
                    }
                    SwOut::Recirculate(r) => self.parked.push_back(r),
                }
            }
        }
        sent
    }

    /// One trace frame through both.
    pub fn step(&mut self, f: &[u8]) -> (Sent, Sent) {
        if self.now >= self.next_period
            && let Some(ctl) = self.sven.as_mut()
        {
            // SVEN's period: the router's loop in `poll`, the switch's in its control plane.
            self.router.poll(self.now, &mut |_| {
                panic!("a poll sends nothing in these traces")
            });
            ctl.period(&mut self.sw).expect("control plane writes");
            self.next_period += ctl.params.period_ns;
        }
        let r = self.rust(f);
        let p = self.p4(f);
        self.now += 1000;
        (r, p)
    }

    /// (outstanding, bound) per server in both.
    pub fn slots(&self) -> (Slots, Slots) {
        let rust = self
            .router
            .servers()
            .as_slice()
            .iter()
            .map(|s| (s.outstanding() as u128, u128::from(s.bound())))
            .collect();
        (rust, jbsq::slots(&self.sw, self.k))
    }
}

/// The (client IP, client port, rid) of a REQ0 frame.
pub fn identity(f: &[u8]) -> (u32, u16, u16) {
    (
        u32::from_be_bytes([f[26], f[27], f[28], f[29]]),
        u16::from_be_bytes([f[34], f[35]]),
        u16::from_be_bytes([f[46], f[47]]),
    )
}

/// splitmix64 for trace generation.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}
