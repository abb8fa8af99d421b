//! A deterministic discrete-event simulation of an R2P2 deployment around the real router
//! logic ([`ferrix_router::Router`]): open-loop Poisson clients, `k` simulated servers (one
//! FCFS worker each, service times drawn from a `ferrix-dist` distribution), one-way network
//! delays, a simulated clock in ns and an event queue. No sockets, no wall clock.
//!
//! - Requests come from qsim's own request source ([`qsim::config::Source`]) at the same seed,
//!   so the simulation and a qsim model see the same arrival times and service times (common
//!   random numbers): their difference is the router's behaviour, not sampling noise.
//! - The REQ0 datagram carries the service time (first 8 payload bytes, ns, little-endian,
//!   like `ferrix_net::r2p2::synthetic`); the router forwards it unchanged, the server reads it.
//! - A server sends a heartbeat FEEDBACK (client `0.0.0.0:0`) when it starts and every
//!   `heartbeat_ns`, and a FEEDBACK with the extension (its bound n, its served count;
//!   `ferrix_net::r2p2::server::feedback_body`) after each completion, as the real server does.
//! - Faults ([`Faults`]): lost and duplicated FEEDBACK, lost REQ0, a server that dies (stops
//!   serving and sending; what it held is lost) and one that starts late.
//! - Latency is measured at the client (reply arrival minus send). With zero client-side
//!   delays it is qsim's latency: arrival at the router to completion at the worker.
//!
//! Times of the report are in units of the mean service time S̄ = [`MEAN_NS`].

#![allow(dead_code)]

use ferrix_dist::rand::Rng as _;
use ferrix_net::r2p2::server::feedback_body;
use ferrix_net::r2p2::{Header, MsgType, Policy, RequestMeta};
use ferrix_router::{Output, Router, RouterConfig, RouterStats};
use qsim::Estimate;
use qsim::config::{Request, SimConfig, Source};
use qsim::stats::quantile_in_place;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The mean service time S̄ in simulated ns (10 µs, the thesis's synthetic workload).
pub const MEAN_NS: f64 = 10_000.0;
/// First client UDP port (client `c` is `10.0.1.1:(CLIENT_PORT + c)`).
const CLIENT_PORT: u16 = 10_000;

/// Converts a time in units of S̄ to simulated ns.
pub fn ns(t: f64) -> u64 {
    (t * MEAN_NS).round().max(0.0) as u64
}

/// Faults to inject.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Probability that a FEEDBACK is lost.
    pub feedback_loss: f64,
    /// Probability that a FEEDBACK arrives twice (the copy 1 µs later).
    pub feedback_dup: f64,
    /// Probability that a forwarded REQ0 never reaches its server.
    pub req0_loss: f64,
    /// Server `.0` dies at `.1` (ns).
    pub die: Option<(usize, u64)>,
    /// Server `.0` starts (first heartbeat) at `.1` (ns) instead of 0.
    pub join_late: Option<(usize, u64)>,
}

/// One simulation's parameters.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The router under test.
    pub router: RouterConfig,
    /// The request stream: qsim's configuration (workers = servers, load, service shape,
    /// requests, warm-up, batches, seed). Its `model` is ignored.
    pub load: SimConfig,
    /// The bound n each server announces in FEEDBACK.
    pub bound: u32,
    /// One-way router <-> server delay (ns).
    pub delay_rs_ns: u64,
    /// One-way client -> router, server -> client and router -> client delay (ns).
    pub delay_client_ns: u64,
    /// Heartbeat period of the servers (ns).
    pub heartbeat_ns: u64,
    /// How often the router's timers run (ns).
    pub poll_ns: u64,
    /// Number of clients the requests are dealt to (round robin).
    pub clients: usize,
    /// Faults.
    pub faults: Faults,
    /// Seed of the fault injection.
    pub fault_seed: u64,
    /// Simulated time after the last arrival during which timers keep running (ns).
    pub drain_ns: u64,
}

impl Spec {
    /// `load` with a router running `router`, servers announcing `bound`, no delays, no
    /// faults, 64 clients.
    pub fn new(router: RouterConfig, load: SimConfig, bound: u32) -> Spec {
        Spec {
            router,
            load,
            bound,
            delay_rs_ns: 0,
            delay_client_ns: 0,
            heartbeat_ns: 1_000_000,
            poll_ns: 20_000,
            clients: 64,
            faults: Faults::default(),
            fault_seed: 0xfa17,
            drain_ns: 1_000_000,
        }
    }
}

/// One server as the simulation sees it at the end.
#[derive(Clone, Debug)]
pub struct ServerEnd {
    /// Its address.
    pub addr: SocketAddrV4,
    /// Requests it completed.
    pub served: u64,
    /// Most requests it held at once (queued + in service).
    pub max_in_system: usize,
    /// Whether the router still lists it.
    pub listed: bool,
    /// The router's `assigned` / `completed` / `expired` counters for it (if listed).
    pub router_counts: Option<(u64, u64, u64, usize)>,
}

/// What one simulation did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed of the request stream.
    pub seed: u64,
    /// Per measured request (after the warm-up), in arrival order: latency in S̄ (NaN if it
    /// got no reply).
    pub latency: Vec<f64>,
    /// Per measured request: answered with DROP.
    pub dropped: Vec<bool>,
    /// Per measured request: arrival time at the router, ns.
    pub sent_ns: Vec<u64>,
    /// Arrival of the first and last measured request (S̄).
    pub window: (f64, f64),
    /// The router's counters at the end.
    pub stats: RouterStats,
    /// Requests outstanding in the router's view at the end, and REQ0s held.
    pub final_outstanding: usize,
    pub final_held: usize,
    /// Most outstanding requests the router ever had at one server, over its bound
    /// (max of outstanding - bound, 0 if never over).
    pub max_over_bound: usize,
    /// The servers.
    pub servers: Vec<ServerEnd>,
    /// Forwarded REQ0s the network lost (fault injection).
    pub req0_lost: u64,
    /// FEEDBACKs the network lost / duplicated.
    pub feedback_lost: u64,
    pub feedback_duplicated: u64,
    /// Simulated events processed.
    pub events: u64,
}

impl Report {
    /// The p99 latency of the answered measured requests, with a batch-means 95 % CI
    /// (batches by arrival index, as qsim's recorder does).
    pub fn p99(&self, batches: usize) -> Estimate {
        self.quantile(0.99, batches)
    }

    /// The `q`-quantile of latency with its batch-means CI.
    pub fn quantile(&self, q: f64, batches: usize) -> Estimate {
        let n = self.latency.len();
        let mut all = Vec::with_capacity(n);
        let mut per = Vec::with_capacity(batches);
        for k in 0..batches {
            let mut lats: Vec<f64> = self.latency[k * n / batches..(k + 1) * n / batches]
                .iter()
                .copied()
                .filter(|l| !l.is_nan())
                .collect();
            per.push(quantile_in_place(&mut lats, q));
            all.extend_from_slice(&lats);
        }
        Estimate::from_batches(quantile_in_place(&mut all, q), &per)
    }

    /// Measured requests answered (not DROP, not lost).
    pub fn answered(&self) -> usize {
        self.latency.iter().filter(|l| !l.is_nan()).count()
    }

    /// Requests answered within `slo` (S̄) per S̄ of the measured window, as a fraction of
    /// the capacity `workers` / S̄ (a load figure).
    pub fn goodput(&self, slo: f64, workers: usize) -> f64 {
        let good = self.latency.iter().filter(|&&l| l <= slo).count();
        good as f64 / (self.window.1 - self.window.0) / workers as f64
    }

    /// Fraction of measured requests refused with DROP.
    pub fn drop_fraction(&self) -> f64 {
        self.dropped.iter().filter(|&&d| d).count() as f64 / self.dropped.len().max(1) as f64
    }
}

/// What travels (or happens) in the simulation.
#[derive(Debug)]
enum Ev {
    /// The next client request is sent.
    Send(Request),
    /// A datagram reaches the router.
    ToRouter { src: SocketAddrV4, dgram: Vec<u8> },
    /// A forwarded REQ0 reaches server `s`.
    ToServer {
        s: usize,
        client: SocketAddrV4,
        dgram: Vec<u8>,
    },
    /// A reply (or DROP) reaches the client.
    ToClient {
        client: SocketAddrV4,
        rid: u16,
        drop: bool,
    },
    /// Server `s` finishes the request in service.
    Done { s: usize },
    /// Server `s` sends a heartbeat (and schedules the next).
    Heartbeat { s: usize },
    /// Server `s` dies.
    Die { s: usize },
    /// The router's timers.
    Poll,
}

struct Queued {
    t: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t, self.seq).cmp(&(o.t, o.seq))
    }
}

/// A request at a server.
#[derive(Clone, Copy, Debug)]
struct Job {
    meta: RequestMeta,
    service_ns: u64,
}

#[derive(Debug)]
struct SimServer {
    addr: SocketAddrV4,
    alive: bool,
    started: bool,
    queue: VecDeque<Job>,
    current: Option<Job>,
    served: u64,
    max_in_system: usize,
}

/// A REQ0 (single packet, LB_ROUTE) carrying `service_ns`.
fn req0(rid: u16, service_ns: u64) -> Vec<u8> {
    let mut d = Header::single(MsgType::Request, Policy::LbRoute, rid)
        .encode()
        .to_vec();
    d.extend_from_slice(&service_ns.to_le_bytes());
    d
}

/// A FEEDBACK for `meta` (a heartbeat for client `0.0.0.0:0`) with the extension.
fn feedback(meta: &RequestMeta, n: u32, served: u64) -> Vec<u8> {
    let mut d = Header::single(MsgType::Feedback, Policy::LbRoute, meta.rid)
        .encode()
        .to_vec();
    d.extend_from_slice(&feedback_body(meta, n, served));
    d
}

fn client_addr(c: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 1), CLIENT_PORT + c as u16)
}

/// Address of server `i`.
pub fn server_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + i as u8), 8000)
}

/// The event loop.
struct World {
    spec: Spec,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<Queued>>,
    router: Router,
    servers: Vec<SimServer>,
    by_addr: HashMap<SocketAddrV4, usize>,
    faults: ferrix_dist::Rng,
    /// (client index, rid) -> request index.
    inflight: HashMap<(u16, u16), u64>,
    next_rid: Vec<u16>,
    sent_ns: Vec<u64>,
    reply_ns: Vec<Option<u64>>,
    dropped: Vec<bool>,
    outs: Vec<(bool, SocketAddrV4, SocketAddrV4, Vec<u8>)>,
    max_over_bound: usize,
    end_ns: u64,
    /// Client sends start this late (after the servers' first heartbeats).
    offset: u64,
    req0_lost: u64,
    feedback_lost: u64,
    feedback_duplicated: u64,
    processed: u64,
}

impl World {
    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse(Queued {
            t,
            seq: self.seq,
            ev,
        }));
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.faults.random::<f64>() < p
    }

    /// Sends what the router produced.
    fn route_outputs(&mut self) {
        let outs = std::mem::take(&mut self.outs);
        for (forward, client, server, dgram) in outs {
            if forward {
                let s = self.by_addr[&server];
                if self.chance(self.spec.faults.req0_loss) {
                    self.req0_lost += 1;
                    continue;
                }
                let t = self.now + self.spec.delay_rs_ns;
                self.at(t, Ev::ToServer { s, client, dgram });
            } else {
                let rid = u16::from_be_bytes([dgram[4], dgram[5]]);
                let t = self.now + self.spec.delay_client_ns;
                self.at(
                    t,
                    Ev::ToClient {
                        client,
                        rid,
                        drop: true,
                    },
                );
            }
        }
        for s in self.router.servers().as_slice() {
            let over = s.outstanding().saturating_sub(s.bound() as usize);
            self.max_over_bound = self.max_over_bound.max(over);
        }
    }

    fn collector(
        outs: &mut Vec<(bool, SocketAddrV4, SocketAddrV4, Vec<u8>)>,
    ) -> impl FnMut(Output<'_>) + '_ {
        move |o| match o {
            Output::Forward {
                client,
                server,
                datagram,
            } => outs.push((true, client, server, datagram.to_vec())),
            Output::Drop { client, message } => {
                outs.push((false, client, client, message.to_vec()))
            }
        }
    }

    fn send_feedback(&mut self, s: usize, dgram: Vec<u8>) {
        let src = self.servers[s].addr;
        if self.chance(self.spec.faults.feedback_loss) {
            self.feedback_lost += 1;
            return;
        }
        let t = self.now + self.spec.delay_rs_ns;
        if self.chance(self.spec.faults.feedback_dup) {
            self.feedback_duplicated += 1;
            self.at(
                t + 1_000,
                Ev::ToRouter {
                    src,
                    dgram: dgram.clone(),
                },
            );
        }
        self.at(t, Ev::ToRouter { src, dgram });
    }

    fn start_next(&mut self, s: usize) {
        let srv = &mut self.servers[s];
        if srv.current.is_none()
            && let Some(j) = srv.queue.pop_front()
        {
            srv.current = Some(j);
            let t = self.now + j.service_ns.max(1);
            self.at(t, Ev::Done { s });
        }
    }

    fn step(&mut self, ev: Ev, src: &mut Source) {
        self.processed += 1;
        match ev {
            Ev::Send(r) => {
                let idx = r.idx as usize;
                let c = idx % self.spec.clients;
                let rid = self.next_rid[c];
                self.next_rid[c] = rid.wrapping_add(1);
                self.inflight.insert((c as u16, rid), r.idx);
                self.sent_ns[idx] = self.now;
                let d = req0(rid, ns(r.service).max(1));
                let t = self.now + self.spec.delay_client_ns;
                self.at(
                    t,
                    Ev::ToRouter {
                        src: client_addr(c),
                        dgram: d,
                    },
                );
                if let Some(n) = src.next_request() {
                    self.at(ns(n.arrival) + self.offset, Ev::Send(n));
                }
            }
            Ev::ToRouter { src, dgram } => {
                let mut outs = std::mem::take(&mut self.outs);
                self.router
                    .handle(self.now, src, &dgram, &mut Self::collector(&mut outs));
                self.outs = outs;
                self.route_outputs();
            }
            Ev::ToServer { s, client, dgram } => {
                let srv = &mut self.servers[s];
                if !srv.alive {
                    return;
                }
                let rid = u16::from_be_bytes([dgram[4], dgram[5]]);
                let mut b = [0u8; 8];
                b.copy_from_slice(&dgram[8..16]);
                srv.queue.push_back(Job {
                    meta: RequestMeta {
                        client,
                        rid,
                        policy: Policy::LbRoute,
                    },
                    service_ns: u64::from_le_bytes(b),
                });
                let in_sys = srv.queue.len() + usize::from(srv.current.is_some());
                srv.max_in_system = srv.max_in_system.max(in_sys);
                self.start_next(s);
            }
            Ev::Done { s } => {
                let srv = &mut self.servers[s];
                if !srv.alive {
                    return;
                }
                let Some(j) = srv.current.take() else { return };
                srv.served += 1;
                let fb = feedback(&j.meta, self.spec.bound, srv.served);
                let t = self.now + self.spec.delay_client_ns;
                self.at(
                    t,
                    Ev::ToClient {
                        client: j.meta.client,
                        rid: j.meta.rid,
                        drop: false,
                    },
                );
                self.send_feedback(s, fb);
                self.start_next(s);
            }
            Ev::ToClient { client, rid, drop } => {
                let c = client.port() - CLIENT_PORT;
                if let Some(idx) = self.inflight.remove(&(c, rid)) {
                    let idx = idx as usize;
                    if drop {
                        self.dropped[idx] = true;
                    } else {
                        self.reply_ns[idx] = Some(self.now);
                    }
                }
            }
            Ev::Heartbeat { s } => {
                let srv = &mut self.servers[s];
                if !srv.alive {
                    return;
                }
                srv.started = true;
                let meta = RequestMeta {
                    client: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    rid: 0,
                    policy: Policy::LbRoute,
                };
                let fb = feedback(&meta, self.spec.bound, srv.served);
                // Heartbeats are never lost here (a lost one only delays a join).
                let src = srv.addr;
                let t = self.now + self.spec.delay_rs_ns;
                self.at(t, Ev::ToRouter { src, dgram: fb });
                let next = self.now + self.spec.heartbeat_ns;
                if next <= self.end_ns {
                    self.at(next, Ev::Heartbeat { s });
                }
            }
            Ev::Die { s } => {
                let srv = &mut self.servers[s];
                srv.alive = false;
                srv.queue.clear();
                srv.current = None;
            }
            Ev::Poll => {
                let mut outs = std::mem::take(&mut self.outs);
                self.router.poll(self.now, &mut Self::collector(&mut outs));
                self.outs = outs;
                self.route_outputs();
                let next = self.now + self.spec.poll_ns;
                if next <= self.end_ns {
                    self.at(next, Ev::Poll);
                }
            }
        }
    }
}

/// Runs `spec` to the end (all requests sent, then `drain_ns` of timers).
pub fn run(spec: &Spec) -> Report {
    let cfg = &spec.load;
    cfg.validate().expect("valid load");
    let total = (cfg.warmup + cfg.requests) as usize;
    let mut src = Source::new(cfg).expect("request source");
    // The arrival of the last request, to know when to stop the periodic events: replay
    // the source once (cheap) rather than guess.
    let last_arrival = {
        let mut s = Source::new(cfg).expect("request source");
        let mut last = 0.0;
        while let Some(r) = s.next_request() {
            last = r.arrival;
        }
        ns(last)
    };
    // Requests start once the servers' first heartbeats are in.
    let offset = spec.delay_rs_ns + 1_000;
    let end_ns = last_arrival + offset + spec.drain_ns;
    let servers: Vec<SimServer> = (0..cfg.workers)
        .map(|i| SimServer {
            addr: server_addr(i),
            alive: true,
            started: false,
            queue: VecDeque::new(),
            current: None,
            served: 0,
            max_in_system: 0,
        })
        .collect();
    let by_addr = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.addr, i))
        .collect();
    let mut w = World {
        spec: spec.clone(),
        now: 0,
        seq: 0,
        events: BinaryHeap::new(),
        router: Router::new(spec.router.clone()),
        servers,
        by_addr,
        faults: ferrix_dist::rng(spec.fault_seed),
        inflight: HashMap::new(),
        next_rid: vec![0; spec.clients],
        sent_ns: vec![0; total],
        reply_ns: vec![None; total],
        dropped: vec![false; total],
        outs: Vec::new(),
        max_over_bound: 0,
        end_ns,
        offset,
        req0_lost: 0,
        feedback_lost: 0,
        feedback_duplicated: 0,
        processed: 0,
    };
    for s in 0..cfg.workers {
        let start = match spec.faults.join_late {
            Some((late, t)) if late == s => t,
            _ => 0,
        };
        w.at(start, Ev::Heartbeat { s });
    }
    if let Some((s, t)) = spec.faults.die {
        w.at(t, Ev::Die { s });
    }
    w.at(0, Ev::Poll);
    if let Some(r) = src.next_request() {
        w.at(ns(r.arrival) + offset, Ev::Send(r));
    }
    while let Some(Reverse(q)) = w.events.pop() {
        w.now = q.t;
        w.step(q.ev, &mut src);
    }
    let warm = cfg.warmup as usize;
    let latency: Vec<f64> = (warm..total)
        .map(|i| match w.reply_ns[i] {
            Some(t) => (t - w.sent_ns[i]) as f64 / MEAN_NS,
            None => f64::NAN,
        })
        .collect();
    let servers = w
        .servers
        .iter()
        .map(|s| {
            let listed = w.router.servers().find(s.addr);
            ServerEnd {
                addr: s.addr,
                served: s.served,
                max_in_system: s.max_in_system,
                listed: listed.is_some(),
                router_counts: listed.map(|i| {
                    let r = &w.router.servers().as_slice()[i];
                    (r.assigned, r.completed, r.expired, r.outstanding())
                }),
            }
        })
        .collect();
    Report {
        seed: cfg.seed,
        latency,
        dropped: w.dropped[warm..].to_vec(),
        sent_ns: w.sent_ns[warm..].to_vec(),
        window: (
            w.sent_ns[warm] as f64 / MEAN_NS,
            w.sent_ns[total - 1] as f64 / MEAN_NS,
        ),
        stats: w.router.stats().clone(),
        final_outstanding: w.router.servers().total_outstanding(),
        final_held: w.router.held(),
        max_over_bound: w.max_over_bound,
        servers,
        req0_lost: w.req0_lost,
        feedback_lost: w.feedback_lost,
        feedback_duplicated: w.feedback_duplicated,
        events: w.processed,
    }
}
