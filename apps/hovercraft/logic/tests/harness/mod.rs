//! A deterministic cluster simulation: N replicas (the real `ferrix_raft::Node`, every
//! message through the wire codec), a network that loses, duplicates, delays and reorders
//! messages and partitions the cluster, replicas that crash (some in the middle of a sync,
//! keeping a prefix of a step's writes) and restart from their durable storage only, and clients running writes and reads on per-key registers. Everything is
//! drawn from one seed; the same seed replays the same run, and `trace` records it.
//!
//! After every step the Raft safety properties are checked ([`safety`]); at the end the
//! network heals, every client finishes, the client history is checked for linearizability
//! ([`lin`]) and every acknowledged write is checked to be in every replica's state.

#![allow(dead_code)]

pub mod kv;
pub mod lin;
pub mod safety;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ferrix_raft::aggregator::{AGGREGATOR, Aggregator, Dest};
use ferrix_raft::rng::SplitMix;
use ferrix_raft::{
    ClientId, Config, Input, MemStorage, Mode, Node, NodeId, Op, Outputs, ReplierPolicy, Request,
    Role, Storage, Write, wire,
};
use kv::{Cmd, Kv};
use lin::Kind;
use safety::Safety;

/// Simulated time between two ticks of a replica.
pub const TICK: u64 = 10;

/// One simulation's parameters.
#[derive(Clone, Debug)]
pub struct Spec {
    pub seed: u64,
    pub nodes: u8,
    pub mode: Mode,
    pub replier: ReplierPolicy,
    pub clients: usize,
    pub ops_per_client: usize,
    pub keys: u8,
    /// Probability a message is lost / duplicated.
    pub loss: f64,
    pub dup: f64,
    /// One-way delay, uniform in `1..=max_delay` (reorders).
    pub max_delay: u64,
    /// Mean time between partitions / crashes (0: none).
    pub partition_every: u64,
    pub crash_every: u64,
    /// Entries per AppendEntries (small: long logs take many rounds).
    pub max_entries: usize,
    /// Probability a replica crashes right after a step that persisted a vote (and comes
    /// back soon, inside the same election).
    pub crash_after_vote: f64,
    /// Probability a replica crashes in the middle of making a step's writes durable: a
    /// prefix of them survives, none of the step's messages leave.
    pub torn: f64,
    /// Mean time a crashed replica stays down (short: it is back inside the same election).
    pub down_mean: u64,
    /// Each replica compacts its log every this many applied entries.
    pub snapshot_every: u64,
    /// Faults stop at this time; then the run must finish within `settle`.
    pub fault_until: u64,
    pub settle: u64,
    /// A broken application that answers reads from its local state without Raft: the
    /// checker must catch it (a test that the checks can fail).
    pub stale_reads: bool,
    /// HovercRaft++: an aggregator process (same network faults, its own partition side,
    /// crashes every `agg_crash_every` on average, 0: never).
    pub aggregator: bool,
    pub agg_crash_every: u64,
    pub trace: bool,
}

impl Spec {
    /// The defaults, with the fault mix drawn from the seed (calm to rough networks).
    pub fn new(seed: u64, nodes: u8, mode: Mode) -> Spec {
        let mut r = SplitMix::new(seed ^ 0x5eed_5eed);
        let pick = |r: &mut SplitMix, xs: &[u64]| xs[(r.next_u64() % xs.len() as u64) as usize];
        Spec {
            seed,
            nodes,
            mode,
            replier: ReplierPolicy::Jbsq,
            clients: pick(&mut r, &[2, 4, 6]) as usize,
            ops_per_client: 25,
            keys: pick(&mut r, &[1, 3]) as u8,
            loss: pick(&mut r, &[0, 5, 20]) as f64 / 100.0,
            dup: pick(&mut r, &[0, 3, 10]) as f64 / 100.0,
            max_delay: pick(&mut r, &[3, 12, 40]),
            partition_every: pick(&mut r, &[300, 600, 1500, 4000]),
            crash_every: pick(&mut r, &[200, 500, 1500, 4000]),
            down_mean: pick(&mut r, &[20, 100, 500]),
            max_entries: pick(&mut r, &[1, 4, 30]) as usize,
            crash_after_vote: pick(&mut r, &[0, 20]) as f64 / 100.0,
            torn: pick(&mut r, &[0, 2]) as f64 / 100.0,
            snapshot_every: 40,
            fault_until: 6000,
            settle: 8000,
            stale_reads: false,
            aggregator: false,
            agg_crash_every: pick(&mut r, &[0, 300, 1000, 3000]),
            trace: false,
        }
    }
}

/// A failed run: what broke and the trace (empty unless `spec.trace`).
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub what: String,
    pub trace: Vec<String>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub ops: usize,
    pub committed: usize,
    pub elections: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_installed: u64,
    pub recoveries: u64,
    /// HovercRaft++: AGG_COMMITs the aggregator sent, its crashes.
    pub agg_commits: u64,
    pub agg_crashes: u64,
    /// Leaders' switches to the aggregator and fallbacks; followers' AGG_COMMIT commits
    /// (of the replicas up at the end).
    pub agg_switches: u64,
    pub agg_fallbacks: u64,
    pub follower_agg_commits: u64,
    pub end_time: u64,
}

impl Report {
    /// Sums the counts of several runs.
    pub fn add(&mut self, r: &Report) {
        self.ops += r.ops;
        self.committed += r.committed;
        self.elections += r.elections;
        self.crashes += r.crashes;
        self.partitions += r.partitions;
        self.snapshots_installed += r.snapshots_installed;
        self.recoveries += r.recoveries;
        self.agg_commits += r.agg_commits;
        self.agg_crashes += r.agg_crashes;
        self.agg_switches += r.agg_switches;
        self.agg_fallbacks += r.agg_fallbacks;
        self.follower_agg_commits += r.follower_agg_commits;
        self.end_time = self.end_time.max(r.end_time);
    }
}

#[derive(Clone, Debug)]
enum ToClient {
    Reply { rid: u16, value: u64 },
    Redirect { rid: u16, leader: Option<NodeId> },
}

#[derive(Clone, Debug)]
enum Event {
    Tick(usize),
    Raft {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Request {
        to: usize,
        req: Request,
    },
    Client {
        to: usize,
        msg: ToClient,
    },
    ClientNext(usize),
    /// Resend if still waiting on this attempt (`rotate`: to another replica).
    ClientRetry {
        client: usize,
        rid: u16,
        attempt: u32,
        rotate: bool,
    },
    /// Faults stop: the network heals, crashed replicas restart.
    FaultsEnd,
    Crash(usize),
    Restart(usize),
    Partition,
    Heal,
    /// To / from the aggregator.
    ToAgg {
        from: usize,
        bytes: Vec<u8>,
    },
    FromAgg {
        to: usize,
        bytes: Vec<u8>,
    },
    AggCrash,
    AggRestart,
}

struct Replica {
    node: Option<Node>,
    store: MemStorage,
    kv: Kv,
    cfg: Config,
    last_compact: u64,
}

struct Client {
    next_rid: u16,
    cur: Option<Cur>,
    guess: usize,
    done: usize,
}

#[derive(Clone, Copy)]
struct Cur {
    rid: u16,
    cmd: Cmd,
    attempt: u32,
    hist: usize,
}

struct Hist {
    client: usize,
    key: u8,
    call: u64,
    ret: u64,
    kind: Kind,
}

struct Sim {
    spec: Spec,
    rng: SplitMix,
    now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    replicas: Vec<Replica>,
    clients: Vec<Client>,
    /// Partition side of each replica (clients reach everyone).
    side: Vec<u8>,
    history: Vec<Hist>,
    /// (client, rid) of every acknowledged write.
    acked: Vec<(usize, u16)>,
    safety: Safety,
    report: Report,
    trace: Vec<String>,
    /// HovercRaft++: the aggregator (None while crashed) and its partition side.
    agg: Option<Aggregator>,
    agg_side: u8,
    agg_commits: u64,
}

fn chance(rng: &mut SplitMix, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
}

fn client_id(c: usize, rid: u16) -> ClientId {
    ClientId {
        ip: 0x0a00_0100 + c as u32,
        port: 4000 + c as u16,
        rid,
    }
}

/// Runs one simulation.
pub fn run(spec: &Spec) -> Result<Report, Failure> {
    let mut sim = Sim::new(spec.clone());
    match sim.run() {
        Ok(()) => Ok(sim.report),
        Err(what) => Err(Failure {
            seed: spec.seed,
            what,
            trace: sim.trace,
        }),
    }
}

impl Sim {
    fn new(spec: Spec) -> Sim {
        let mut rng = SplitMix::new(spec.seed);
        let replicas = (0..spec.nodes)
            .map(|id| {
                let mut cfg = Config::new(id, spec.nodes, spec.mode);
                cfg.seed = rng.next_u64();
                cfg.replier = spec.replier;
                cfg.reply_bound = 8;
                cfg.max_entries = spec.max_entries;
                cfg.aggregator = spec.aggregator;
                Replica {
                    node: Some(Node::new(cfg.clone(), Default::default()).expect("config")),
                    store: MemStorage::new(),
                    kv: Kv::default(),
                    cfg,
                    last_compact: 0,
                }
            })
            .collect();
        let clients = (0..spec.clients)
            .map(|c| Client {
                next_rid: 1,
                cur: None,
                guess: c % usize::from(spec.nodes),
                done: 0,
            })
            .collect();
        Sim {
            agg: spec.aggregator.then(|| Aggregator::new(spec.nodes)),
            agg_side: 0,
            agg_commits: 0,
            side: vec![0; usize::from(spec.nodes)],
            spec,
            rng,
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            replicas,
            clients,
            history: Vec::new(),
            acked: Vec::new(),
            safety: Safety::default(),
            report: Report::default(),
            trace: Vec::new(),
        }
    }

    fn at(&mut self, t: u64, e: Event) {
        self.seq += 1;
        self.events.insert((t, self.seq), e);
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if self.spec.trace {
            let line = format!("{:>6} {}", self.now, f());
            self.trace.push(line);
        }
    }

    /// Uniform in `1..=max_delay`, and one message in 20 ten times later (stale messages
    /// arriving long after their round).
    fn delay(&mut self) -> u64 {
        let d = 1 + self.rng.next_u64() % self.spec.max_delay;
        if chance(&mut self.rng, 0.05) {
            d * 10
        } else {
            d
        }
    }

    fn exp(&mut self, mean: u64) -> u64 {
        let u = ((self.rng.next_u64() >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
        (-(u.ln()) * mean as f64) as u64 + 1
    }

    /// Sends over the lossy network (loss and duplication only while faults are on).
    fn net_send(&mut self, e: Event) {
        let faults = self.now < self.spec.fault_until;
        if faults && chance(&mut self.rng, self.spec.loss) {
            return;
        }
        let copies = if faults && chance(&mut self.rng, self.spec.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let t = self.now + self.delay();
            self.at(t, e.clone());
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let n = usize::from(self.spec.nodes);
        for i in 0..n {
            let t = 1 + self.rng.next_u64() % TICK;
            self.at(t, Event::Tick(i));
        }
        for c in 0..self.spec.clients {
            let t = 1 + self.rng.next_u64() % 50;
            self.at(t, Event::ClientNext(c));
        }
        if self.spec.partition_every > 0 {
            let t = self.exp(self.spec.partition_every);
            self.at(t, Event::Partition);
        }
        if self.spec.crash_every > 0 {
            let t = self.exp(self.spec.crash_every);
            self.at(t, Event::Crash(usize::MAX));
        }
        if self.spec.aggregator && self.spec.agg_crash_every > 0 {
            let t = self.exp(self.spec.agg_crash_every);
            self.at(t, Event::AggCrash);
        }
        self.at(self.spec.fault_until, Event::FaultsEnd);
        let deadline = self.spec.fault_until + self.spec.settle;
        while let Some(((t, _), e)) = self.events.pop_first() {
            self.now = t;
            if self.now > deadline {
                break;
            }
            self.event(e)?;
            if self
                .clients
                .iter()
                .all(|c| c.done == self.spec.ops_per_client)
                && self.now >= self.spec.fault_until
            {
                break;
            }
        }
        self.report.end_time = self.now;
        self.finish()
    }

    fn event(&mut self, e: Event) -> Result<(), String> {
        match e {
            Event::Tick(i) => {
                self.at(self.now + TICK, Event::Tick(i));
                self.step(i, Input::Tick)?;
            }
            Event::Raft { from, to, bytes } => {
                if self.side[from] != self.side[to] {
                    return Ok(());
                }
                let Some(node) = self.replicas[to].node.as_mut() else {
                    return Ok(());
                };
                let last = node.log().last_index();
                let out = node.receive(&bytes);
                self.after(to, last, out)?;
            }
            Event::Request { to, req } => {
                if self.spec.stale_reads
                    && let Some(Cmd::Read { key }) = Cmd::decode(&req.body)
                {
                    if self.replicas[to].node.is_some() {
                        let value = self.replicas[to].kv.apply(req.id, Cmd::Read { key });
                        let c = (req.id.port - 4000) as usize;
                        let msg = ToClient::Reply {
                            rid: req.id.rid,
                            value,
                        };
                        self.net_send(Event::Client { to: c, msg });
                    }
                    return Ok(());
                }
                self.step(to, Input::Request(req))?;
            }
            Event::Client { to, msg } => self.client_msg(to, msg),
            Event::ClientNext(c) => self.client_next(c),
            Event::ClientRetry {
                client,
                rid,
                attempt,
                rotate,
            } => self.client_retry(client, rid, attempt, rotate),
            Event::ToAgg { from, bytes } => {
                if self.side[from] != self.agg_side {
                    return Ok(());
                }
                let Some(agg) = self.agg.as_mut() else {
                    return Ok(());
                };
                let out = agg.receive(&bytes);
                let n = self.replicas.len();
                for s in out.sends {
                    let to: Vec<usize> = match s.to {
                        Dest::Node(j) => vec![usize::from(j)],
                        Dest::AllBut(j) => (0..n).filter(|&k| k != usize::from(j)).collect(),
                        Dest::All => (0..n).collect(),
                    };
                    let msg = s.msg;
                    self.log(|| format!("agg ->{to:?} {msg:?}"));
                    let mut bytes = Vec::new();
                    wire::encode(s.from, &msg, &mut bytes);
                    for j in to {
                        let bytes = bytes.clone();
                        self.net_send(Event::FromAgg { to: j, bytes });
                    }
                }
            }
            Event::FromAgg { to, bytes } => {
                if self.side[to] != self.agg_side {
                    return Ok(());
                }
                let Some(node) = self.replicas[to].node.as_mut() else {
                    return Ok(());
                };
                let last = node.log().last_index();
                let out = node.receive(&bytes);
                self.after(to, last, out)?;
            }
            Event::AggCrash => {
                if self.now < self.spec.fault_until {
                    if let Some(a) = self.agg.take() {
                        self.agg_commits += a.stats().commits;
                        self.report.agg_crashes += 1;
                        self.log(|| "crash aggregator".into());
                        let down = self.exp(self.spec.down_mean);
                        self.at(self.now + down, Event::AggRestart);
                    }
                    let t = self.now + self.exp(self.spec.agg_crash_every);
                    self.at(t, Event::AggCrash);
                }
            }
            Event::AggRestart => self.agg_restart(),
            Event::FaultsEnd => {
                self.side.iter_mut().for_each(|s| *s = 0);
                self.agg_side = 0;
                self.agg_restart();
                self.log(|| "faults end".into());
                for i in 0..self.replicas.len() {
                    self.restart(i)?;
                }
            }
            Event::Crash(usize::MAX) => {
                let i = self.crash_victim();
                self.crash(i)?;
            }
            Event::Crash(i) => self.crash(i)?,
            Event::Restart(i) => self.restart(i)?,
            Event::Partition => {
                if self.now < self.spec.fault_until {
                    self.report.partitions += 1;
                    let n = self.side.len();
                    for s in 0..n {
                        self.side[s] = (self.rng.next_u64() % 2) as u8;
                    }
                    if self.spec.aggregator {
                        self.agg_side = (self.rng.next_u64() % 2) as u8;
                    }
                    let side = self.side.clone();
                    self.log(|| format!("partition {side:?}"));
                    // Half the time the next change is another partition, not a heal: a
                    // replica cut off with a stale log lands in a new majority without a
                    // leader (what the up-to-date vote rule is for).
                    let next = self.now + self.exp(self.spec.partition_every / 2);
                    if chance(&mut self.rng, 0.5) {
                        self.at(next, Event::Partition);
                    } else {
                        self.at(next, Event::Heal);
                    }
                }
            }
            Event::Heal => {
                self.side.iter_mut().for_each(|s| *s = 0);
                self.agg_side = 0;
                self.log(|| "heal".into());
                if self.now < self.spec.fault_until {
                    let t = self.now + self.exp(self.spec.partition_every);
                    self.at(t, Event::Partition);
                }
            }
        }
        Ok(())
    }

    /// The aggregator back, empty (its state is soft).
    fn agg_restart(&mut self) {
        if self.spec.aggregator && self.agg.is_none() {
            self.agg = Some(Aggregator::new(self.spec.nodes));
            self.log(|| "restart aggregator".into());
        }
    }

    fn crash(&mut self, i: usize) -> Result<(), String> {
        if self.now >= self.spec.fault_until {
            return Ok(());
        }
        let down = self.exp(self.spec.down_mean);
        self.kill(i, down);
        let t = self.now + self.exp(self.spec.crash_every);
        self.at(t, Event::Crash(usize::MAX));
        Ok(())
    }

    /// Crashes replica `i` (if up) for `down`; it restarts from its durable storage.
    fn kill(&mut self, i: usize, down: u64) {
        if self.replicas[i].node.take().is_some() {
            self.report.crashes += 1;
            self.replicas[i].store.crash();
            self.log(|| format!("crash {i}"));
            self.at(self.now + down, Event::Restart(i));
        }
    }

    /// Half the crashes hit the current leader (decided now, so the choice replays).
    fn crash_victim(&mut self) -> usize {
        // (A victim is drawn when the crash happens: `Event::Crash(usize::MAX)`.)
        let n = self.replicas.len();
        if chance(&mut self.rng, 0.5) {
            let leader = (0..n)
                .filter_map(|i| {
                    let node = self.replicas[i].node.as_ref()?;
                    (node.role() == Role::Leader).then_some((node.term(), i))
                })
                .max();
            if let Some((_, i)) = leader {
                return i;
            }
        }
        self.rng.next_u64() as usize % n
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        let r = &mut self.replicas[i];
        if r.node.is_some() {
            return Ok(());
        }
        let durable = r.store.load();
        r.kv = Kv::restore(&durable.log.snapshot().data);
        r.last_compact = durable.log.snapshot().index;
        let node = Node::new(r.cfg.clone(), durable).map_err(|e| e.to_string())?;
        self.safety.whole_log(&node)?;
        let term = node.term();
        r.node = Some(node);
        self.log(|| format!("restart {i} term {term}"));
        Ok(())
    }

    fn step(&mut self, i: usize, input: Input) -> Result<(), String> {
        let Some(node) = self.replicas[i].node.as_mut() else {
            return Ok(());
        };
        let last = node.log().last_index();
        let out = node.step(input);
        self.after(i, last, out)
    }

    /// Carries out one step's outputs, by the fsync rule: writes durable, then the rest.
    fn after(&mut self, i: usize, last_before: u64, out: Outputs) -> Result<(), String> {
        let voted = out
            .writes
            .iter()
            .any(|w| matches!(w, Write::HardState { vote: Some(v), .. } if usize::from(*v) != i));
        {
            let r = &mut self.replicas[i];
            let node = r.node.as_ref().expect("stepped a live node");
            self.safety
                .after_step(node, last_before, &out.writes, &out.applied)?;
        }
        let faults = self.now < self.spec.fault_until;
        if faults && !out.writes.is_empty() && chance(&mut self.rng, self.spec.torn) {
            let keep = (self.rng.next_u64() % (out.writes.len() as u64 + 1)) as usize;
            let total = out.writes.len();
            let r = &mut self.replicas[i];
            for w in out.writes.into_iter().take(keep) {
                r.store.write(w);
            }
            r.store.sync();
            self.log(|| format!("torn write: {keep} of {total} durable"));
            let down = 1 + self.rng.next_u64() % 50;
            self.kill(i, down);
            return Ok(());
        }
        {
            let r = &mut self.replicas[i];
            for w in out.writes {
                r.store.write(w);
            }
            r.store.sync();
        }
        if self.spec.trace {
            let node = self.replicas[i].node.as_ref().expect("live");
            let (role, term, commit, last) = (
                node.role(),
                node.term(),
                node.commit(),
                node.log().last_index(),
            );
            let sent: Vec<String> = out
                .messages
                .iter()
                .map(|(to, m)| format!("->{to} {m:?}"))
                .collect();
            self.log(|| {
                let mut s = format!("n{i} {role:?} t{term} c{commit} l{last}");
                for m in sent {
                    let _ = write!(s, "\n         {m}");
                }
                s
            });
        }
        if let Some(snap) = out.restore {
            self.replicas[i].kv = Kv::restore(&snap.data);
            self.replicas[i].last_compact = snap.index;
        }
        for a in out.applied {
            let Op::Request { req, .. } = &a.op else {
                continue;
            };
            let cmd = Cmd::decode(&req.body).ok_or("undecodable command")?;
            if a.execute {
                let value = self.replicas[i].kv.apply(req.id, cmd);
                if a.reply {
                    let c = (req.id.port - 4000) as usize;
                    let msg = ToClient::Reply {
                        rid: req.id.rid,
                        value,
                    };
                    self.net_send(Event::Client { to: c, msg });
                }
            } else if matches!(cmd, Cmd::Write { .. }) {
                return Err(format!("node {i} told not to execute a write"));
            }
            self.report.committed = self.report.committed.max(a.index as usize);
        }
        let applied = self.replicas[i].node.as_ref().map_or(0, |n| n.applied());
        if applied >= self.replicas[i].last_compact + self.spec.snapshot_every {
            let data = self.replicas[i].kv.snapshot();
            self.replicas[i].last_compact = applied;
            let node = self.replicas[i].node.as_mut().expect("live");
            let last = node.log().last_index();
            let o = node.step(Input::Compact {
                index: applied,
                data,
            });
            // Compaction writes a snapshot only; no messages, nothing applied.
            for w in &o.writes {
                self.replicas[i].store.write(w.clone());
            }
            self.replicas[i].store.sync();
            let node = self.replicas[i].node.as_ref().expect("live");
            self.safety.after_step(node, last, &o.writes, &[])?;
        }
        for (to, m) in out.messages {
            let mut bytes = Vec::new();
            wire::encode(i as NodeId, &m, &mut bytes);
            if to == AGGREGATOR {
                self.net_send(Event::ToAgg { from: i, bytes });
                continue;
            }
            let to = usize::from(to);
            self.net_send(Event::Raft { from: i, to, bytes });
        }
        for (id, leader) in out.redirects {
            let c = (id.port - 4000) as usize;
            let msg = ToClient::Redirect {
                rid: id.rid,
                leader,
            };
            self.net_send(Event::Client { to: c, msg });
        }
        if voted
            && self.now < self.spec.fault_until
            && chance(&mut self.rng, self.spec.crash_after_vote)
        {
            let down = 1 + self.rng.next_u64() % 30;
            self.kill(i, down);
        }
        Ok(())
    }

    fn client_next(&mut self, c: usize) {
        if self.clients[c].done >= self.spec.ops_per_client || self.clients[c].cur.is_some() {
            return;
        }
        let rid = self.clients[c].next_rid;
        self.clients[c].next_rid += 1;
        let key = (self.rng.next_u64() % u64::from(self.spec.keys)) as u8;
        let (cmd, kind) = if chance(&mut self.rng, 0.5) {
            let value = ((c as u64 + 1) << 32) | u64::from(rid);
            (Cmd::Write { key, value }, Kind::Write(value))
        } else {
            (Cmd::Read { key }, Kind::Read(0))
        };
        self.history.push(Hist {
            client: c,
            key,
            call: self.now,
            ret: u64::MAX,
            kind,
        });
        let hist = self.history.len() - 1;
        self.clients[c].cur = Some(Cur {
            rid,
            cmd,
            attempt: 0,
            hist,
        });
        self.log(|| format!("client {c} rid {rid} {cmd:?}"));
        self.client_send(c);
    }

    /// Vanilla: to the replica thought to lead; HovercRaft: multicast to every replica.
    fn client_send(&mut self, c: usize) {
        let cur = self.clients[c].cur.expect("an operation");
        let req = Request {
            id: client_id(c, cur.rid),
            read_only: matches!(cur.cmd, Cmd::Read { .. }),
            body: cur.cmd.encode(),
        };
        match self.spec.mode {
            Mode::Vanilla => {
                let to = self.clients[c].guess;
                self.net_send(Event::Request { to, req });
            }
            Mode::Hover => {
                for to in 0..self.replicas.len() {
                    self.net_send(Event::Request {
                        to,
                        req: req.clone(),
                    });
                }
            }
        }
        let t = self.now + 40 * TICK;
        self.at(
            t,
            Event::ClientRetry {
                client: c,
                rid: cur.rid,
                attempt: cur.attempt,
                rotate: true,
            },
        );
    }

    fn client_retry(&mut self, c: usize, rid: u16, attempt: u32, rotate: bool) {
        let Some(cur) = self.clients[c].cur.as_mut() else {
            return;
        };
        if cur.rid != rid || cur.attempt != attempt {
            return;
        }
        cur.attempt += 1;
        if rotate {
            let n = self.replicas.len();
            self.clients[c].guess = self.rng.next_u64() as usize % n;
        }
        self.client_send(c);
    }

    fn client_msg(&mut self, c: usize, msg: ToClient) {
        let Some(cur) = self.clients[c].cur else {
            return;
        };
        match msg {
            ToClient::Reply { rid, value } if rid == cur.rid => {
                let h = &mut self.history[cur.hist];
                h.ret = self.now;
                if let Kind::Read(_) = h.kind {
                    h.kind = Kind::Read(value);
                } else {
                    self.acked.push((c, rid));
                }
                self.clients[c].cur = None;
                self.clients[c].done += 1;
                self.log(|| format!("client {c} rid {rid} done: {value}"));
                let t = self.now + self.rng.next_u64() % 20;
                self.at(t, Event::ClientNext(c));
            }
            ToClient::Redirect { rid, leader } if rid == cur.rid => {
                let n = self.replicas.len();
                self.clients[c].guess = match leader {
                    Some(l) => usize::from(l),
                    None => self.rng.next_u64() as usize % n,
                };
                // Retry after a short pause, not at once (no redirect storm while electing);
                // the pending timeout is void from now on.
                let attempt = cur.attempt + 1;
                if let Some(cur) = self.clients[c].cur.as_mut() {
                    cur.attempt = attempt;
                }
                let t = self.now + TICK;
                self.at(
                    t,
                    Event::ClientRetry {
                        client: c,
                        rid,
                        attempt,
                        rotate: false,
                    },
                );
            }
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        let unfinished: Vec<usize> = (0..self.clients.len())
            .filter(|&c| self.clients[c].done < self.spec.ops_per_client)
            .collect();
        if !unfinished.is_empty() {
            return Err(format!(
                "liveness: clients {unfinished:?} unfinished at {} (faults ended at {})",
                self.now, self.spec.fault_until
            ));
        }
        // Linearizability, key by key.
        for key in 0..self.spec.keys {
            let ops: Vec<lin::Op> = self
                .history
                .iter()
                .filter(|h| h.key == key && !(h.ret == u64::MAX && matches!(h.kind, Kind::Read(_))))
                .map(|h| lin::Op {
                    client: h.client,
                    call: h.call,
                    ret: h.ret,
                    kind: h.kind,
                })
                .collect();
            lin::check(&ops, 0).map_err(|e| format!("key {key}: {e}"))?;
        }
        // Let every replica catch up, then every acknowledged write is in every state.
        let horizon = self.now + 200 * TICK;
        while let Some(((t, _), e)) = self.events.pop_first() {
            self.now = t;
            if t > horizon {
                break;
            }
            if matches!(e, Event::ClientNext(_) | Event::ClientRetry { .. }) {
                continue;
            }
            self.event(e)?;
        }
        let kv0 = self.replicas[0].kv.clone();
        for (i, r) in self.replicas.iter().enumerate() {
            let node = r.node.as_ref().ok_or(format!("replica {i} still down"))?;
            self.safety.whole_log(node)?;
            // Reads are not run everywhere, but the state (registers and sessions) is.
            if r.kv != kv0 {
                return Err(format!(
                    "replicas 0 and {i} differ after catching up: {kv0:?} vs {:?}",
                    r.kv
                ));
            }
            for &(c, rid) in &self.acked {
                let id = client_id(c, rid);
                if r.kv
                    .sessions
                    .get(&(id.ip, id.port))
                    .is_none_or(|&s| s < rid)
                {
                    return Err(format!("acknowledged write c{c} rid {rid} lost on {i}"));
                }
            }
            let s = node.stats();
            self.report.elections += s.elections;
            self.report.snapshots_installed += s.snapshots_installed;
            self.report.recoveries += s.recovery_asked;
            self.report.agg_switches += s.agg_switches;
            self.report.agg_fallbacks += s.agg_fallbacks;
            self.report.follower_agg_commits += s.agg_commits;
        }
        self.report.ops = self.history.len();
        self.report.agg_commits =
            self.agg_commits + self.agg.as_ref().map_or(0, |a| a.stats().commits);
        Ok(())
    }
}
