//! CRAB end to end in memory: ferrix TCP endpoints (ferrix-net, smoltcp) as a client and two
//! servers, the load balancer between them on one Ethernet segment.
//!
//! ```text
//!   client 10.0.0.2 --SYN+option--> LB (VIP 10.0.0.100) --SYN to 10.0.0.11/.12--> server
//!      ^                                                                              |
//!      +------------------ SYN-ACK+option from the server's own address -------------+
//!      then every segment client <-> server directly; the LB sees the SYN only
//! ```
//!
//! Checked: redirected connections carry data with no segment but the SYN through the load
//! balancer, round robin spreads them, a client without CRAB falls back to the hash (the LB
//! forwards its segments, the server answers from the VIP) and still works, a restarted load
//! balancer leaves every established connection working, least connections follows the
//! backends' reports, and bad input is counted.

use ferrix_crab_lb::{Backend, Lb, LbConfig, Policy, Verdict, report};
use ferrix_net::stack::{UDP_PAYLOAD_OFFSET, write_udp_frame};
use ferrix_net::tcp::crab::Segment;
use ferrix_net::tcp::{ConnId, Instant, MemQueue, TcpConfig, TcpEndpoint, TcpEvent};
use ferrix_net::{IfConfig, MacAddr};
use std::collections::HashMap;
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const LB_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 100]);
const PORT: u16 = 80;
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn server_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 11 + i as u8)
}

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

type Port = MemQueue;

struct Host {
    mac: MacAddr,
    ep: TcpEndpoint,
    port: Port,
    events: Vec<TcpEvent>,
    /// Client: bytes received per connection. Server: echoes.
    got: HashMap<ConnId, Vec<u8>>,
    server: bool,
}

impl Host {
    fn new(ip: Ipv4Addr, m: MacAddr, cfg: TcpConfig, now: Instant) -> Host {
        let ifc = IfConfig {
            mac: m,
            ip,
            prefix_len: 24,
            gateway: None,
            mtu: 1500,
        };
        let mut port = Port::default();
        let ep = TcpEndpoint::new(&ifc, cfg, &mut port, now);
        Host {
            mac: m,
            ep,
            port,
            events: Vec::new(),
            got: HashMap::new(),
            server: cfg.port != 0,
        }
    }

    fn poll(&mut self, now: Instant) {
        self.events.clear();
        self.ep.poll(now, &mut self.port, &mut self.events);
        for ev in std::mem::take(&mut self.events) {
            if let TcpEvent::PeerClosed(c) = ev {
                let _ = self.ep.close(c);
            }
            if let TcpEvent::Received(c, _) = ev {
                let data = self.ep.recv(c).unwrap().to_vec();
                self.ep.recv_done(c, data.len()).unwrap();
                if self.server {
                    self.ep.send(c, &data).unwrap();
                }
                self.got.entry(c).or_default().extend_from_slice(&data);
            }
        }
        self.ep.flush(now, &mut self.port);
    }
}

/// What went through the load balancer.
#[derive(Default, Debug)]
struct LbSeen {
    tcp: usize,
    syns: usize,
    data: usize,
}

struct Net {
    client: Host,
    servers: Vec<Host>,
    lb: Lb,
    seen: LbSeen,
    now: Instant,
}

fn lb_config(policy: Policy) -> LbConfig {
    LbConfig {
        vip: VIP,
        port: PORT,
        mac: LB_MAC,
        report_port: 7001,
        backends: (0..2)
            .map(|i| Backend {
                ip: server_ip(i),
                mac: mac(11 + i as u8),
            })
            .collect(),
        policy,
        seed: 1,
    }
}

impl Net {
    fn new(crab_client: bool, policy: Policy) -> Net {
        let now = Instant::from_millis(1);
        let ccfg = TcpConfig {
            crab_client,
            seed: 2,
            ..TcpConfig::default()
        };
        let scfg = |i: u64| TcpConfig {
            port: PORT,
            crab_server: true,
            vip: Some(VIP),
            seed: 10 + i,
            ..TcpConfig::default()
        };
        Net {
            client: Host::new(CLIENT, mac(2), ccfg, now),
            servers: (0..2)
                .map(|i| Host::new(server_ip(i), mac(11 + i as u8), scfg(i as u64), now))
                .collect(),
            lb: Lb::new(lb_config(policy)).unwrap(),
            seen: LbSeen::default(),
            now,
        }
    }

    fn hosts(&mut self) -> impl Iterator<Item = &mut Host> {
        std::iter::once(&mut self.client).chain(self.servers.iter_mut())
    }

    /// Delivers `f` from `from` (a host MAC or the LB's) by its destination MAC.
    fn deliver(&mut self, from: MacAddr, f: Vec<u8>) {
        let dst = MacAddr(f[0..6].try_into().unwrap());
        let broadcast = dst == MacAddr::BROADCAST;
        if (dst == LB_MAC || broadcast) && from != LB_MAC {
            let mut g = f.clone();
            if let Some(s) = Segment::parse(&g) {
                self.seen.tcp += 1;
                if s.flags & 0x02 != 0 {
                    self.seen.syns += 1;
                }
                if g.len() > s.tcp + s.tcp_len {
                    self.seen.data += 1;
                }
            }
            match self.lb.handle(&mut g) {
                Verdict::Redirect(_) | Verdict::Fallback(_) | Verdict::Reply => {
                    self.deliver(LB_MAC, g)
                }
                _ => {}
            }
        }
        for h in self.hosts() {
            if h.mac != from && (broadcast || h.mac == dst) {
                h.port.rx.push_back(f.clone());
            }
        }
    }

    fn step(&mut self) {
        let now = self.now;
        for h in self.hosts() {
            h.poll(now);
        }
        let mut out = Vec::new();
        for h in self.hosts() {
            while let Some(f) = h.port.tx.pop_front() {
                out.push((h.mac, f));
            }
        }
        for (from, f) in out {
            self.deliver(from, f);
        }
        self.now += ferrix_net::tcp::Duration::from_micros(100);
    }

    fn run(&mut self, steps: usize, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..steps {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!(
            "not done after {steps} steps: {:?} {:?}",
            self.seen,
            self.lb.stats()
        );
    }

    /// Opens `n` connections to the VIP and waits until they are up.
    fn open(&mut self, n: usize) -> Vec<ConnId> {
        let ids: Vec<ConnId> = (0..n)
            .map(|_| self.client.ep.connect(VIP, PORT).unwrap())
            .collect();
        let want = self.client.ep.stats().connected + n as u64;
        self.run(2000, |net| net.client.ep.stats().connected >= want);
        ids
    }

    /// Sends `msg` on each connection and waits for every echo.
    fn echo(&mut self, ids: &[ConnId], msg: &[u8]) {
        let before: Vec<usize> = ids
            .iter()
            .map(|c| self.client.got.get(c).map_or(0, Vec::len))
            .collect();
        for &c in ids {
            self.client.ep.send(c, msg).unwrap();
        }
        self.run(2000, |net| {
            ids.iter()
                .zip(&before)
                .all(|(c, b)| net.client.got.get(c).map_or(0, Vec::len) >= b + msg.len())
        });
        for (c, b) in ids.iter().zip(&before) {
            assert_eq!(&self.client.got[c][*b..], msg);
        }
    }
}

#[test]
fn redirected_connections_bypass_the_load_balancer() {
    let mut net = Net::new(true, Policy::RoundRobin);
    let ids = net.open(4);
    // Round robin: two on each server, each connection moved to its server's address.
    let to: Vec<Option<Ipv4Addr>> = ids
        .iter()
        .map(|&c| net.client.ep.redirected_to(c))
        .collect();
    for i in 0..2 {
        assert_eq!(
            to.iter().filter(|t| **t == Some(server_ip(i))).count(),
            2,
            "{to:?}"
        );
    }
    for round in 0..5 {
        net.echo(
            &ids,
            format!("request {round} over a redirected connection").as_bytes(),
        );
    }
    for s in &net.servers {
        assert_eq!(s.ep.stats().accepted, 2);
    }
    // The LB saw the four SYNs and nothing else of these connections.
    assert_eq!(
        (net.seen.tcp, net.seen.syns, net.seen.data),
        (4, 4, 0),
        "{:?}",
        net.seen
    );
    let st = net.lb.stats();
    assert_eq!(
        (st.redirected, st.fallback_syns, st.fallback_segments),
        (4, 0, 0)
    );
    let cs = net.client.ep.crab_stats();
    assert_eq!((cs.syns_marked, cs.redirects), (4, 4));
    assert!(cs.rx_rewritten > 0 && cs.tx_rewritten > 0);
    let echoes: u64 = net.servers.iter().map(|s| s.ep.crab_stats().echoes).sum();
    assert_eq!(echoes, 4);
    // A restarted load balancer (empty soft state): the connections never notice.
    net.lb = Lb::new(lb_config(Policy::RoundRobin)).unwrap();
    net.echo(&ids, b"after the restart");
    assert_eq!(net.seen.tcp, 4);
    // Closing from the client: both sides release their sockets; CRAB forgets them.
    for &c in &ids {
        net.client.ep.close(c).unwrap();
    }
    net.run(20000, |net| net.client.ep.stats().closed == 4);
    // Still redirected through TIME-WAIT (a retransmitted FIN must be answered), forgotten
    // when the socket is released.
    assert!(
        ids.iter()
            .all(|&c| net.client.ep.redirected_to(c).is_some())
    );
    net.run(200_000, |net| net.client.ep.connections() == 0);
    assert!(
        ids.iter()
            .all(|&c| net.client.ep.redirected_to(c).is_none())
    );
    assert_eq!(net.seen.tcp, 4, "the closes bypassed the load balancer too");
}

#[test]
fn a_client_without_crab_falls_back_to_the_hash() {
    let mut net = Net::new(false, Policy::RoundRobin);
    let ids = net.open(6);
    assert!(
        ids.iter()
            .all(|&c| net.client.ep.redirected_to(c).is_none())
    );
    net.echo(&ids, b"plain TCP through the load balancer");
    let st = net.lb.stats();
    assert_eq!((st.redirected, st.fallback_syns), (0, 6));
    assert!(st.fallback_segments >= 12, "{st:?}");
    // The servers answered from the VIP (direct server return): the client's stack took it.
    let accepted: u64 = net.servers.iter().map(|s| s.ep.stats().accepted).sum();
    assert_eq!(accepted, 6);
    for (i, s) in net.servers.iter().enumerate() {
        let want = (0..6u16)
            .filter(|p| net.lb.hashed(CLIENT, 49152 + p) == i)
            .count() as u64;
        assert_eq!(s.ep.stats().accepted, want, "server {i}");
        assert_eq!(s.ep.crab_stats().echoes, 0);
        assert!(
            s.ep.crab_stats().vip_arp_ignored > 0,
            "the VIP's ARP is the LB's"
        );
    }
    // A restart keeps every fallback connection on its server: the hash has no state.
    net.lb = Lb::new(lb_config(Policy::RoundRobin)).unwrap();
    net.echo(&ids, b"after the restart");
}

/// A report datagram from `src` to the VIP's report port.
fn report_frame(src: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + payload.len()];
    assert!(write_udp_frame(
        &mut f,
        LB_MAC,
        mac(9),
        src,
        VIP,
        1,
        5000,
        7001,
        payload
    ));
    f
}

#[test]
fn least_connections_follows_reports_and_bad_input_is_counted() {
    let mut net = Net::new(true, Policy::LeastConnections);
    // Backend 0 reports 10 open connections, backend 1 three: the next SYNs go to 1 until
    // its load (3 + SYNs since) passes 10.
    for (i, c) in [(0usize, 10u32), (1, 3)] {
        let mut f = report_frame(server_ip(i), &report::encode(c));
        assert_eq!(net.lb.handle(&mut f), Verdict::Consumed);
    }
    let ids = net.open(8);
    let on_1 = ids
        .iter()
        .filter(|&&c| net.client.ep.redirected_to(c) == Some(server_ip(1)))
        .count();
    assert_eq!(
        on_1, 7,
        "3 + 7 = 10 ties with backend 0, which wins ties at index 0"
    );
    assert_eq!(net.lb.loads(), [11, 10]);
    net.echo(&ids, b"x");
    // Reports from strangers or malformed: counted, ignored.
    let mut f = report_frame(Ipv4Addr::new(10, 0, 0, 66), &report::encode(0));
    assert_eq!(net.lb.handle(&mut f), Verdict::Consumed);
    let mut f = report_frame(server_ip(0), b"CRAB");
    assert_eq!(net.lb.handle(&mut f), Verdict::Consumed);
    assert_eq!(net.lb.stats().bad_reports, 2);
    assert_eq!(net.lb.loads(), [11, 10]);
    // Truncated and foreign frames.
    let mut short = report_frame(server_ip(0), &report::encode(1));
    short[23] = 6; // TCP now, but no TCP header fits
    short.truncate(40);
    assert_eq!(net.lb.handle(&mut short), Verdict::Dropped);
    for n in 0..60 {
        let mut g = vec![0xffu8; n];
        let _ = net.lb.handle(&mut g);
    }
    let mut other = report_frame(server_ip(0), b"hello");
    other[30..34].copy_from_slice(&[10, 0, 0, 1]);
    assert_eq!(net.lb.handle(&mut other), Verdict::NotForUs);
    assert!(net.lb.stats().malformed >= 1);
}
