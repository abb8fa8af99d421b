//! One run in virtual time. Per replica (thesis 12.6):
//!
//! - a **network thread**, one FIFO server: for each input (a client request, a peer's or the
//!   aggregator's message, a tick, or messages another thread asked it to send) it pays the
//!   reception cost, runs the real [`Node::step`], hands the committed entries to the
//!   application thread, then pays each outgoing message's send cost; a message leaves when
//!   its send is paid;
//! - an **application thread**, one FIFO server over the committed entries, in log order:
//!   it pays the service time for each entry the core marks `execute` (read-write entries
//!   everywhere, a read-only one on its replier only), and the reply's send cost when the core
//!   marks it `reply` (the designated replier; the leader in vanilla Raft); then it reports
//!   its progress with [`Input::Executed`] (a shared index in the reference: no cost; at the
//!   leader that may announce entries, whose AppendEntries its network thread sends).
//!
//! Links: a fixed one-way latency, and each host's egress serialised at 10 Gb/s. The
//! HovercRaft++ aggregator is the real [`Aggregator`] on a switch: no CPU, one hop each way.
//! Clients are open loop (Poisson); HovercRaft(++) clients multicast each request to every
//! replica (the switch copies it), vanilla ones send it to the leader. The unreplicated
//! service is one host with the same two threads and no consensus.
//!
//! Before the load, the replicas elect a leader on their own (ticks every millisecond); the
//! clients start 1 ms after it (HovercRaft++: after it switched to the aggregator).

use std::collections::VecDeque;

use ferrix_raft::aggregator::{AGGREGATOR, AggInput, Aggregator, Dest};
use ferrix_raft::{ClientId, Config, Input, Message, Mode, Node, NodeId, ReplierPolicy, Request};
use ferrix_raft::{Durable, Role, wire};

use super::clock::{Events, MS, Time};
use super::cost::Costs;
use super::measure::{Counts, Outcome, PerOp};
use super::workload::{Clients, Workload};

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// One server, no replication (the thesis's UnRep).
    Unreplicated,
    /// A ferrix-raft cluster.
    Replicated {
        mode: Mode,
        /// HovercRaft++ (the aggregator).
        aggregator: bool,
        replier: ReplierPolicy,
    },
}

impl System {
    pub const VANILLA: System = System::Replicated {
        mode: Mode::Vanilla,
        aggregator: false,
        replier: ReplierPolicy::Jbsq,
    };
    pub const HOVER: System = System::Replicated {
        mode: Mode::Hover,
        aggregator: false,
        replier: ReplierPolicy::Jbsq,
    };
    pub const PLUS: System = System::Replicated {
        mode: Mode::Hover,
        aggregator: true,
        replier: ReplierPolicy::Jbsq,
    };

    /// HovercRaft++ with another replier policy.
    pub fn plus(replier: ReplierPolicy) -> System {
        System::Replicated {
            mode: Mode::Hover,
            aggregator: true,
            replier,
        }
    }

    /// A short name for tables.
    pub fn name(&self) -> String {
        match *self {
            System::Unreplicated => "UnRep".into(),
            System::Replicated {
                mode,
                aggregator,
                replier,
            } => {
                let base = match (mode, aggregator) {
                    (Mode::Vanilla, false) => "VanillaRaft",
                    (Mode::Vanilla, true) => "VanillaRaft+agg",
                    (Mode::Hover, false) => "HovercRaft",
                    (Mode::Hover, true) => "HovercRaft++",
                };
                match (mode, replier) {
                    (Mode::Vanilla, _) | (_, ReplierPolicy::Jbsq) => base.into(),
                    (_, ReplierPolicy::Random) => format!("{base} random"),
                    (_, ReplierPolicy::RoundRobin) => format!("{base} rr"),
                }
            }
        }
    }
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct Setup {
    pub system: System,
    pub nodes: u8,
    pub workload: Workload,
    pub costs: Costs,
    pub seed: u64,
    /// Load before the measurement window (queues fill), the window, and load after it (so
    /// that the window's last requests see a loaded system too).
    pub warmup: Time,
    pub window: Time,
    pub tail: Time,
    /// The run stops this long after the load (unanswered requests count as infinitely late).
    pub drain: Time,
    /// Stop early once more than 1 % of the window's requests took longer than this.
    pub slo: Time,
    /// HovercRaft: the bound of the reply queues (the core's default, 32, if `None`).
    pub reply_bound: Option<u32>,
}

/// One request's record.
#[derive(Clone, Copy, Debug)]
struct Req {
    sent: Time,
    service: Time,
    done: Option<Time>,
    measured: bool,
}

#[derive(Clone, Debug)]
enum NetItem {
    Tick,
    Raft {
        from: NodeId,
        msg: Message,
        bytes: usize,
    },
    Request {
        req: Request,
        no: usize,
    },
    /// Messages another thread's step produced.
    Send(Vec<(NodeId, Message)>),
}

#[derive(Clone, Copy, Debug)]
struct AppItem {
    /// The log index (0 unreplicated).
    index: u64,
    /// The request (none for a no-op).
    no: Option<usize>,
    execute: bool,
    reply: bool,
}

#[derive(Debug)]
enum Ev {
    Tick(usize),
    Net(usize, NetItem),
    NetDone(usize),
    App(usize, Vec<AppItem>),
    AppDone(usize),
    Agg {
        from: NodeId,
        msg: Message,
    },
    Client,
    /// Start (0) and end (1) of the measurement window.
    Mark(usize),
}

struct Host {
    node: Option<Node>,
    net: VecDeque<NetItem>,
    net_busy: bool,
    app: VecDeque<AppItem>,
    app_cur: Option<AppItem>,
    link_free: Time,
    count: Counts,
}

struct Sim {
    s: Setup,
    hosts: Vec<Host>,
    agg: Option<Aggregator>,
    ev: Events<Ev>,
    clients: Clients,
    reqs: Vec<Req>,
    leader: Option<usize>,
    window: (Time, Time),
    load_end: Time,
    marks: [Vec<Counts>; 2],
    late: usize,
    max_late: usize,
    aborted: bool,
    buf: Vec<u8>,
}

/// Runs one setup to the end.
pub fn run(s: &Setup) -> Outcome {
    let mut sim = Sim::new(s.clone());
    sim.go()
}

impl Sim {
    fn new(s: Setup) -> Sim {
        let n = match s.system {
            System::Unreplicated => 1,
            System::Replicated { .. } => s.nodes,
        };
        let mut hosts = Vec::new();
        for i in 0..n {
            let node = match s.system {
                System::Unreplicated => None,
                System::Replicated {
                    mode,
                    aggregator,
                    replier,
                } => {
                    let mut c = Config::new(i, n, mode);
                    c.replier = replier;
                    c.aggregator = aggregator;
                    if let Some(b) = s.reply_bound {
                        c.reply_bound = b;
                    }
                    c.seed = s.seed.wrapping_mul(0x9E37_79B9).wrapping_add(u64::from(i));
                    // What one datagram carries, as in the guest (one message a packet).
                    c.max_message_bytes = super::cost::MAX_PACKET_PAYLOAD;
                    Some(Node::new(c, Durable::default()).expect("valid config"))
                }
            };
            hosts.push(Host {
                node,
                net: VecDeque::new(),
                net_busy: false,
                app: VecDeque::new(),
                app_cur: None,
                link_free: 0,
                count: Counts::default(),
            });
        }
        let agg = match s.system {
            System::Replicated {
                aggregator: true, ..
            } => Some(Aggregator::new(n)),
            _ => None,
        };
        let expected = s.workload.rate * super::clock::secs(s.window);
        Sim {
            clients: Clients::new(s.workload, s.seed ^ 0xc1_1e47),
            hosts,
            agg,
            ev: Events::new(),
            reqs: Vec::new(),
            leader: None,
            window: (0, 0),
            load_end: 0,
            marks: [Vec::new(), Vec::new()],
            late: 0,
            max_late: (expected * 0.01).ceil() as usize,
            aborted: false,
            buf: Vec::new(),
            s,
        }
    }

    fn go(&mut self) -> Outcome {
        let n = self.hosts.len();
        let replicated = self.hosts[0].node.is_some();
        if replicated {
            for i in 0..n {
                // Staggered ticks.
                let phase = self.s.costs.tick * (i as Time + 1) / (n as Time + 1);
                self.ev.at(phase, Ev::Tick(i));
            }
        } else {
            self.start_load(0);
        }
        let mut stop = Time::MAX;
        while let Some(e) = self.ev.pop() {
            let now = self.ev.now();
            if now >= stop || self.aborted {
                break;
            }
            let net_done = matches!(e, Ev::NetDone(_));
            self.event(e);
            if net_done && self.load_end == 0 && self.ready() {
                self.start_load(now + MS);
            }
            if self.load_end != 0 && stop == Time::MAX {
                stop = self.load_end + self.s.drain;
            }
            if now > 10_000 * MS {
                panic!("{:?}: no leader after 10 s of virtual time", self.s.system);
            }
        }
        self.outcome()
    }

    /// A leader (HovercRaft++: using the aggregator) to start the load on.
    fn ready(&mut self) -> bool {
        for (i, h) in self.hosts.iter().enumerate() {
            let Some(node) = &h.node else { continue };
            if node.role() == Role::Leader && (self.agg.is_none() || node.stats().agg_switches > 0)
            {
                self.leader = Some(i);
                return true;
            }
        }
        false
    }

    fn start_load(&mut self, at: Time) {
        let w0 = at + self.s.warmup;
        self.window = (w0, w0 + self.s.window);
        self.load_end = self.window.1 + self.s.tail;
        self.ev.at(at, Ev::Client);
        self.ev.at(self.window.0, Ev::Mark(0));
        self.ev.at(self.window.1, Ev::Mark(1));
    }

    fn event(&mut self, e: Ev) {
        let now = self.ev.now();
        match e {
            Ev::Tick(i) => {
                self.net_push(i, NetItem::Tick);
                self.ev.at(now + self.s.costs.tick, Ev::Tick(i));
            }
            Ev::Net(i, item) => self.net_push(i, item),
            Ev::NetDone(i) => {
                self.hosts[i].net_busy = false;
                self.net_next(i);
            }
            Ev::App(i, items) => {
                self.hosts[i].app.extend(items);
                if self.hosts[i].app_cur.is_none() {
                    self.app_next(i);
                }
            }
            Ev::AppDone(i) => self.app_done(i),
            Ev::Agg { from, msg } => self.aggregate(from, msg),
            Ev::Client => self.client(),
            Ev::Mark(k) => self.marks[k] = self.hosts.iter().map(|h| h.count).collect(),
        }
    }

    fn client(&mut self) {
        let now = self.ev.now();
        if now >= self.load_end {
            return;
        }
        let d = self.clients.next();
        let no = self.reqs.len();
        let measured = now >= self.window.0 && now < self.window.1;
        self.reqs.push(Req {
            sent: now,
            service: d.service,
            done: None,
            measured,
        });
        let mut body = vec![0u8; self.s.workload.request_bytes.max(8)];
        body[..8].copy_from_slice(&(no as u64).to_le_bytes());
        let req = Request {
            id: ClientId {
                ip: 0x0a00_0100 + (no >> 32) as u32,
                port: 1024 + (no >> 16) as u16,
                rid: no as u16,
            },
            read_only: d.read_only,
            body,
        };
        let at = now + self.s.costs.link;
        let multicast = matches!(
            self.s.system,
            System::Replicated {
                mode: Mode::Hover,
                ..
            }
        );
        if multicast {
            for i in 0..self.hosts.len() {
                let item = NetItem::Request {
                    req: req.clone(),
                    no,
                };
                self.ev.at(at, Ev::Net(i, item));
            }
        } else {
            let to = self.leader.unwrap_or(0);
            self.ev.at(at, Ev::Net(to, NetItem::Request { req, no }));
        }
        self.ev.at(now + d.gap, Ev::Client);
    }

    fn net_push(&mut self, i: usize, item: NetItem) {
        self.hosts[i].net.push_back(item);
        if !self.hosts[i].net_busy {
            self.net_next(i);
        }
    }

    /// Serves the network thread's next input, if any.
    fn net_next(&mut self, i: usize) {
        let Some(item) = self.hosts[i].net.pop_front() else {
            return;
        };
        let now = self.ev.now();
        let c = self.s.costs;
        let h = &mut self.hosts[i];
        h.net_busy = true;
        let tick = matches!(item, NetItem::Tick);
        let (rx, out) = match (item, &mut h.node) {
            (NetItem::Tick, Some(node)) => (0, node.step(Input::Tick)),
            (NetItem::Raft { from, msg, bytes }, Some(node)) => {
                h.count.rx_raft += 1;
                (c.rx_cost(bytes), node.step(Input::Message { from, msg }))
            }
            (NetItem::Request { req, .. }, Some(node)) => {
                h.count.rx_requests += 1;
                (c.rx_cost(req.body.len()), node.step(Input::Request(req)))
            }
            (NetItem::Send(messages), _) => (
                0,
                ferrix_raft::Outputs {
                    messages,
                    ..Default::default()
                },
            ),
            (NetItem::Request { req, no }, None) => {
                // Unreplicated: straight to the application.
                h.count.rx_requests += 1;
                let rx = c.rx_cost(req.body.len());
                let item = AppItem {
                    index: 0,
                    no: Some(no),
                    execute: true,
                    reply: true,
                };
                self.ev.at(now + rx, Ev::App(i, vec![item]));
                self.ev.at(now + rx, Ev::NetDone(i));
                return;
            }
            (_, None) => (0, ferrix_raft::Outputs::default()),
        };
        let mut t = now + rx;
        if !out.applied.is_empty() {
            let items = out
                .applied
                .iter()
                .map(|a| AppItem {
                    index: a.index,
                    no: match &a.op {
                        ferrix_raft::Op::Request { req, .. } => Some(req_no(&req.body)),
                        ferrix_raft::Op::Noop => None,
                    },
                    execute: a.execute,
                    reply: a.reply,
                })
                .collect();
            self.ev.at(t, Ev::App(i, items));
        }
        for (to, msg) in out.messages {
            self.buf.clear();
            wire::encode(i as NodeId, &msg, &mut self.buf);
            let bytes = self.buf.len();
            let h = &mut self.hosts[i];
            h.count.tx_raft += 1;
            if tick {
                h.count.tx_tick += 1;
            }
            if let Message::AppendReq { entries, .. } | Message::AggAppendReq { entries, .. } = &msg
                && !entries.is_empty()
            {
                h.count.appends += 1;
                h.count.append_entries += entries.len() as u64;
            }
            t += c.tx_cost(bytes);
            let arrive = self.egress(i, t, bytes) + c.link;
            if to == AGGREGATOR {
                self.ev.at(
                    arrive,
                    Ev::Agg {
                        from: i as NodeId,
                        msg,
                    },
                );
            } else {
                let item = NetItem::Raft {
                    from: i as NodeId,
                    msg,
                    bytes,
                };
                self.ev.at(arrive, Ev::Net(usize::from(to), item));
            }
        }
        self.ev.at(t, Ev::NetDone(i));
    }

    /// A packet of `payload` bytes ready to leave host `i` at `t`: when it is on the wire.
    fn egress(&mut self, i: usize, t: Time, payload: usize) -> Time {
        let c = self.s.costs;
        if c.link_ps_per_byte == 0 {
            return t;
        }
        let h = &mut self.hosts[i];
        let end = t.max(h.link_free) + c.wire_time(payload);
        h.link_free = end;
        end
    }

    /// The aggregator switch: no CPU, line rate; its sends reach the members one hop later.
    fn aggregate(&mut self, from: NodeId, msg: Message) {
        let now = self.ev.now();
        let Some(agg) = self.agg.as_mut() else {
            return;
        };
        let out = agg.step(AggInput::Message { from, msg });
        let n = self.hosts.len() as NodeId;
        for s in out.sends {
            self.buf.clear();
            wire::encode(s.from, &s.msg, &mut self.buf);
            let bytes = self.buf.len();
            for j in 0..n {
                let pick = match s.to {
                    Dest::Node(k) => j == k,
                    Dest::AllBut(k) => j != k,
                    Dest::All => true,
                };
                if pick {
                    let item = NetItem::Raft {
                        from: s.from,
                        msg: s.msg.clone(),
                        bytes,
                    };
                    self.ev
                        .at(now + self.s.costs.link, Ev::Net(usize::from(j), item));
                }
            }
        }
    }

    /// Serves the application thread's next entry, if any.
    fn app_next(&mut self, i: usize) {
        let Some(item) = self.hosts[i].app.pop_front() else {
            return;
        };
        let now = self.ev.now();
        let c = self.s.costs;
        let mut cost = 0;
        if let Some(no) = item.no {
            if item.execute {
                cost += self.reqs[no].service;
            }
            if item.reply {
                cost += c.reply_cost(self.s.workload.reply_bytes);
            }
        }
        self.hosts[i].app_cur = Some(item);
        self.ev.at(now + cost, Ev::AppDone(i));
    }

    fn app_done(&mut self, i: usize) {
        let now = self.ev.now();
        let Some(item) = self.hosts[i].app_cur.take() else {
            return;
        };
        if let Some(no) = item.no {
            if item.execute {
                self.hosts[i].count.executed += 1;
            }
            if item.reply {
                self.hosts[i].count.tx_replies += 1;
                let at = self.egress(i, now, self.s.workload.reply_bytes) + self.s.costs.link;
                let r = &mut self.reqs[no];
                if r.done.is_none() {
                    r.done = Some(at);
                    if r.measured && at - r.sent > self.s.slo {
                        self.late += 1;
                        if self.late > self.max_late {
                            self.aborted = true;
                        }
                    }
                }
            }
        }
        if let Some(node) = &mut self.hosts[i].node {
            let out = node.step(Input::Executed(item.index));
            if !out.messages.is_empty() {
                self.net_push(i, NetItem::Send(out.messages));
            }
        }
        self.app_next(i);
    }

    fn outcome(&self) -> Outcome {
        let lat: Vec<Option<Time>> = self
            .reqs
            .iter()
            .filter(|r| r.measured)
            .map(|r| r.done.map(|d| d - r.sent))
            .collect();
        let ops = lat.len() as u64;
        let mut o = Outcome::from_latencies(self.s.workload.rate, lat, self.aborted);
        if let (Some(l), [a, b]) = (self.leader, &self.marks)
            && !a.is_empty()
            && !b.is_empty()
        {
            o.leader = Some(PerOp::of(&b[l].minus(&a[l]), ops));
            o.leader_id = Some(l);
            o.notes = self
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let d = b[i].minus(&a[i]);
                    format!(
                        "node {i} window {d:?} stats {:?}\n",
                        h.node.as_ref().map(|n| n.stats())
                    )
                })
                .collect();
        }
        o
    }
}

/// The request number the client wrote in the body's first 8 bytes.
fn req_no(body: &[u8]) -> usize {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[..8]);
    u64::from_le_bytes(b) as usize
}
