//! Two TCP endpoints wired back to back in memory, a simulated clock, and a pipelined
//! request/reply app: the client sends 8-byte requests, the server answers each with the
//! request's bitwise complement.
#![allow(dead_code)]

use ferrix_net::tcp::{ConnId, Instant, TcpConfig, TcpEndpoint, TcpEvent};
use ferrix_net::{IfConfig, MacAddr};
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const PORT: u16 = 7000;

/// One side of the wire.
pub type Port = ferrix_net::tcp::MemQueue;

fn ifc(ip: Ipv4Addr, last: u8) -> IfConfig {
    IfConfig {
        mac: MacAddr([0x02, 0, 0, 0, 0, last]),
        ip,
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    }
}

/// Per-connection app state.
#[derive(Default)]
pub struct Conn {
    /// Bytes waiting for room in the send buffer.
    pub out: VecDeque<u8>,
    /// Received bytes not yet forming a whole message.
    pub inbuf: Vec<u8>,
    /// Messages received, in order.
    pub got: Vec<u64>,
    pub peer_closed: bool,
    pub closed: bool,
}

/// An endpoint with its app state.
pub struct Side {
    pub ep: TcpEndpoint,
    pub port: Port,
    pub events: Vec<TcpEvent>,
    pub conns: HashMap<ConnId, Conn>,
    pub server: bool,
    pub accepted: usize,
    pub connected: usize,
    pub closed: usize,
    pub max_open: usize,
}

impl Side {
    fn pump(&mut self, id: ConnId) {
        let c = self.conns.get_mut(&id).unwrap();
        while !c.out.is_empty() {
            let (a, _) = c.out.as_slices();
            let n = self.ep.send(id, a).unwrap_or(0);
            if n == 0 {
                break;
            }
            c.out.drain(..n);
        }
    }

    /// Queues one 8-byte message.
    pub fn send_msg(&mut self, id: ConnId, msg: u64) {
        self.conns
            .get_mut(&id)
            .unwrap()
            .out
            .extend(msg.to_be_bytes());
        self.pump(id);
    }

    fn handle(&mut self, ev: TcpEvent) {
        match ev {
            TcpEvent::Accepted(id) => {
                self.accepted += 1;
                assert!(self.conns.insert(id, Conn::default()).is_none());
            }
            TcpEvent::Connected(id) => {
                self.connected += 1;
                self.conns.entry(id).or_default();
            }
            TcpEvent::Received(id, n) => {
                assert!(n > 0);
                loop {
                    let buf = self.ep.recv(id).unwrap();
                    if buf.is_empty() {
                        break;
                    }
                    let len = buf.len();
                    self.conns
                        .get_mut(&id)
                        .unwrap()
                        .inbuf
                        .extend_from_slice(buf);
                    self.ep.recv_done(id, len).unwrap();
                }
                let c = self.conns.get_mut(&id).unwrap();
                let whole = c.inbuf.len() / 8 * 8;
                let msgs: Vec<u64> = c.inbuf[..whole]
                    .chunks(8)
                    .map(|m| u64::from_be_bytes(m.try_into().unwrap()))
                    .collect();
                c.inbuf.drain(..whole);
                c.got.extend(&msgs);
                if self.server {
                    for m in msgs {
                        self.send_msg(id, !m);
                    }
                }
            }
            TcpEvent::Sent(id, n) => {
                assert!(n > 0);
                self.pump(id);
            }
            TcpEvent::PeerClosed(id) => {
                let c = self.conns.get_mut(&id).unwrap();
                assert!(!c.peer_closed);
                c.peer_closed = true;
                if self.server {
                    self.ep.close(id).unwrap();
                }
            }
            TcpEvent::Closed(id) => {
                let c = self.conns.get_mut(&id).unwrap_or_else(|| {
                    panic!(
                        "Closed for an unknown connection {id:?} server={}",
                        self.server
                    )
                });
                assert!(!c.closed);
                c.closed = true;
                self.closed += 1;
            }
        }
    }
}

/// Decides whether to drop a frame.
pub type FrameFilter = Box<dyn FnMut(&[u8]) -> bool>;

/// Server and client back to back.
pub struct Net {
    pub server: Side,
    pub client: Side,
    pub now: Instant,
    /// Frames dropped per million.
    pub loss_ppm: u32,
    rng: u64,
    pub dropped: usize,
    pub delivered: usize,
    /// Frames from the server for which this returns true are dropped.
    pub server_filter: Option<FrameFilter>,
    /// Frames from the client for which this returns true are dropped.
    pub client_filter: Option<FrameFilter>,
}

impl Net {
    pub fn new(max_conns: usize, listeners: usize, buf: usize) -> Net {
        Net::with_park_after(max_conns, listeners, buf, 50)
    }

    /// [`Net::new`] with connections parked after `park_after_ms` quiet (0: never).
    pub fn with_park_after(
        max_conns: usize,
        listeners: usize,
        buf: usize,
        park_after_ms: u32,
    ) -> Net {
        let now = Instant::from_millis(1);
        let scfg = TcpConfig {
            port: PORT,
            listeners,
            max_conns,
            rx_buf: buf,
            tx_buf: buf,
            nagle: false,
            seed: 1,
            rx_checksum_offloaded: false,
            park_after_ms,
            ..TcpConfig::default()
        };
        let ccfg = TcpConfig {
            port: 0,
            seed: 2,
            ..scfg
        };
        let mk = |ip, last, cfg, server| {
            let mut port = Port::default();
            let ep = TcpEndpoint::new(&ifc(ip, last), cfg, &mut port, now);
            Side {
                ep,
                port,
                events: Vec::with_capacity(1024),
                conns: HashMap::new(),
                server,
                accepted: 0,
                connected: 0,
                closed: 0,
                max_open: 0,
            }
        };
        Net {
            server: mk(SERVER_IP, 1, scfg, true),
            client: mk(CLIENT_IP, 2, ccfg, false),
            now,
            loss_ppm: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            dropped: 0,
            delivered: 0,
            server_filter: None,
            client_filter: None,
        }
    }

    fn lose(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 1_000_000) < u64::from(self.loss_ppm)
    }

    /// Polls both sides, handles their events, moves the frames across, advances the clock.
    pub fn step(&mut self) {
        for side in [&mut self.server, &mut self.client] {
            side.events.clear();
            side.ep.poll(self.now, &mut side.port, &mut side.events);
            let evs = std::mem::take(&mut side.events);
            for &ev in &evs {
                side.handle(ev);
            }
            side.events = evs;
            side.max_open = side.max_open.max(side.ep.connections());
        }
        let mut moved = false;
        while let Some(f) = self.server.port.tx.pop_front() {
            moved = true;
            let filtered = self.server_filter.as_mut().is_some_and(|drop| drop(&f));
            if self.lose() || filtered {
                self.dropped += 1;
            } else {
                self.delivered += 1;
                self.client.port.rx.push_back(f);
            }
        }
        while let Some(f) = self.client.port.tx.pop_front() {
            moved = true;
            let filtered = self.client_filter.as_mut().is_some_and(|drop| drop(&f));
            if self.lose() || filtered {
                self.dropped += 1;
            } else {
                self.delivered += 1;
                self.server.port.rx.push_back(f);
            }
        }
        if moved {
            // Wire latency.
            self.now += ferrix_net::tcp::Duration::from_micros(50);
            return;
        }
        let next = [
            self.server.ep.poll_at(self.now),
            self.client.ep.poll_at(self.now),
        ]
        .into_iter()
        .flatten()
        .min();
        let min_step = self.now + ferrix_net::tcp::Duration::from_micros(50);
        self.now = match next {
            Some(t) if t > min_step => t,
            _ => min_step,
        };
    }

    /// Steps until `done` holds; panics after `max_steps`.
    pub fn run_until(&mut self, max_steps: usize, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!(
            "not done after {max_steps} steps (t = {}, server: {} accepted, {} closed; client: {} connected, {} closed)",
            self.now,
            self.server.accepted,
            self.server.closed,
            self.client.connected,
            self.client.closed
        );
    }

    /// Opens `n` connections, each sends `per_conn` pipelined requests at once, checks every
    /// reply arrives in order, then closes them all from the client side and waits until both
    /// sides have released every socket.
    pub fn request_reply(&mut self, n: usize, per_conn: u64, max_steps: usize) {
        let ids: Vec<ConnId> = (0..n)
            .map(|_| self.client.ep.connect(SERVER_IP, PORT).unwrap())
            .collect();
        self.run_until(max_steps, |net| net.client.connected == n);
        // Pipelined: batches of up to 4 requests per connection without waiting for replies,
        // a step of the network between batches so they go out as separate segments.
        for batch in (0..per_conn).collect::<Vec<_>>().chunks(4) {
            for (i, &id) in ids.iter().enumerate() {
                for &seq in batch {
                    self.client.send_msg(id, ((i as u64) << 32) | seq);
                }
            }
            self.step();
        }
        let want = per_conn as usize;
        self.run_until(max_steps, |net| {
            ids.iter().all(|id| net.client.conns[id].got.len() == want)
        });
        for (i, id) in ids.iter().enumerate() {
            let expect: Vec<u64> = (0..per_conn).map(|s| !(((i as u64) << 32) | s)).collect();
            assert_eq!(
                self.client.conns[id].got, expect,
                "replies of connection {i}"
            );
        }
        assert_eq!(self.server.accepted, n);
        for &id in &ids {
            self.client.ep.close(id).unwrap();
        }
        self.run_until(max_steps, |net| {
            net.client.closed == n
                && net.server.closed == n
                && net.client.ep.connections() == 0
                && net.server.ep.connections() == 0
        });
        assert!(
            self.server
                .conns
                .values()
                .all(|c| c.peer_closed && c.closed)
        );
        assert!(self.client.conns.values().all(|c| c.closed));
    }
}

/// TCP flags of an IPv4 TCP frame (no IP options), if it is one.
pub fn tcp_flags(frame: &[u8]) -> Option<u8> {
    (frame.len() >= 14 + 20 + 20 && frame[12..14] == [8, 0] && frame[14 + 9] == 6)
        .then(|| frame[14 + 20 + 13])
}
