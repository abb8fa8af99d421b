//! A bounded model check (stateright, breadth first) of three replicas of the real
//! `ferrix_raft::Node`: every interleaving of timeouts, message deliveries (through the wire
//! codec), drops, client proposals and one crash-restart from durable storage, up to a small
//! bound on terms, proposals and messages in flight, from a fresh cluster and from one where
//! a replica lags behind committed entries. Checked in every state: at most one leader per
//! term, log matching, state-machine safety (an index committed anywhere holds one entry) and
//! leader completeness (against a ghost record of every commit).
//!
//! Time is abstracted: a timeout action ticks one replica until it acts (a heartbeat, a
//! pre-vote) and states are told apart by `Node::fingerprint`, which leaves timers out.
//!
//! `MODEL_DEPTH` (default 11) sets the search depth and `MODEL_NET` (default 6) the most
//! messages in flight; the defaults run in well under a minute in a test build.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use ferrix_raft::{
    ClientId, Config, Durable, Entry, Index, Input, MemStorage, Mode, Node, Op, Request, Role,
    Storage, Term, Write, wire,
};
use stateright::{Checker, Model, Property};

const N: u8 = 3;

#[derive(Clone, Debug)]
struct State {
    nodes: Vec<Node>,
    stores: Vec<MemStorage>,
    /// Messages in flight: (destination, encoded message), sorted.
    net: Vec<(u8, Vec<u8>)>,
    proposals: u8,
    crashes: u8,
    drops: u8,
    /// Ghost state: every (index -> (entry term, a term at or after which it was committed))
    /// any replica ever knew committed.
    committed: BTreeMap<Index, (Term, Term)>,
    /// Ghost state: the replier of every request entry any replica applied, and whether an
    /// application broke HovercRaft's rules (see `carry`); whether a reply was ever sent.
    repliers: BTreeMap<Index, u8>,
    apply_broken: bool,
    answered: bool,
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for n in &self.nodes {
            n.fingerprint(h);
        }
        for s in &self.stores {
            let d = s.durable();
            (d.term, d.vote, d.log.snapshot()).hash(h);
            for e in d.log.entries() {
                e.hash(h);
            }
        }
        (&self.net, self.proposals, self.crashes, self.drops).hash(h);
        self.committed.hash(h);
        (&self.repliers, self.apply_broken, self.answered).hash(h);
    }
}

impl State {
    fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.digest() == other.digest()
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Action {
    Timeout(usize),
    Deliver(usize),
    Drop(usize),
    Propose(usize),
    Crash(usize),
}

struct Raft {
    mode: Mode,
    max_term: u64,
    max_proposals: u8,
    max_crashes: u8,
    max_drops: u8,
    max_net: usize,
}

fn config(id: u8, mode: Mode) -> Config {
    let mut c = Config::new(id, N, mode);
    c.election_ticks = 2;
    c.heartbeat_ticks = 1;
    c.seed = u64::from(id) * 7919;
    c
}

impl Raft {
    fn apply(&self, s: &mut State, i: usize, input: Input) {
        let out = s.nodes[i].step(input);
        self.carry(s, i, out);
    }

    fn carry(&self, s: &mut State, i: usize, out: ferrix_raft::Outputs) {
        let n = &s.nodes[i];
        for k in n.log().first_index()..=n.commit() {
            if let Some(t) = n.log().term_at(k) {
                s.committed.entry(k).or_insert((t, n.term()));
            }
        }
        // HovercRaft's rules for what a replica runs and answers: the designated replier
        // (fixed per index, the same on every replica) answers; a read-write request runs
        // everywhere, a read-only one only on its replier.
        for a in &out.applied {
            if let Op::Request { req, replier } = &a.op {
                let me = i as u8;
                let fixed = *s.repliers.entry(a.index).or_insert(*replier) == *replier;
                let ok = a.reply == (*replier == me) && a.execute == (!req.read_only || a.reply);
                s.apply_broken |= !(fixed && ok);
                s.answered |= a.reply;
            }
        }
        for w in out.writes {
            s.stores[i].write(w);
        }
        s.stores[i].sync();
        for (to, m) in out.messages {
            let mut b = Vec::new();
            wire::encode(i as u8, &m, &mut b);
            s.net.push((to, b));
        }
        s.net.sort();
    }
}

impl Model for Raft {
    type State = State;
    type Action = Action;

    /// A fresh cluster, and one where the leader of term 1 committed entries 1-2 on
    /// replicas 0 and 1 and is gone: replica 2 lags (it must not win an election).
    fn init_states(&self) -> Vec<State> {
        let fresh = |durable: &dyn Fn(u8) -> Durable| State {
            nodes: (0..N)
                .map(|i| Node::new(config(i, self.mode), durable(i)).unwrap())
                .collect(),
            stores: (0..N)
                .map(|i| MemStorage::from_durable(durable(i)))
                .collect(),
            net: Vec::new(),
            proposals: 0,
            crashes: 0,
            drops: 0,
            committed: BTreeMap::new(),
            repliers: BTreeMap::new(),
            apply_broken: false,
            answered: false,
        };
        let mut lagging = fresh(&|i| {
            let mut d = Durable {
                term: 1,
                vote: Some(0),
                ..Durable::default()
            };
            let entries: Vec<Entry> = [0u16, 1000]
                .into_iter()
                .take(if i == 2 { 1 } else { 2 })
                .map(|rid| Entry {
                    term: 1,
                    op: if rid == 0 {
                        Op::Noop
                    } else {
                        Op::Request {
                            req: request(rid),
                            replier: 0,
                        }
                    },
                })
                .collect();
            d.apply(&Write::Entries { from: 1, entries });
            d
        });
        lagging.committed.insert(1, (1, 1));
        lagging.committed.insert(2, (1, 1));
        vec![fresh(&|_| Durable::default()), lagging]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for i in 0..s.nodes.len() {
            actions.push(Action::Timeout(i));
            if s.crashes < self.max_crashes {
                actions.push(Action::Crash(i));
            }
            if s.proposals < self.max_proposals && s.nodes[i].role() == Role::Leader {
                actions.push(Action::Propose(i));
            }
        }
        for k in 0..s.net.len() {
            if k > 0 && s.net[k] == s.net[k - 1] {
                continue;
            }
            actions.push(Action::Deliver(k));
            if s.drops < self.max_drops {
                actions.push(Action::Drop(k));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Timeout(i) => {
                let (role, term) = (s.nodes[i].role(), s.nodes[i].term());
                for _ in 0..8 {
                    let out = s.nodes[i].step(Input::Tick);
                    let acted = !out.messages.is_empty()
                        || s.nodes[i].role() != role
                        || s.nodes[i].term() != term;
                    self.carry(&mut s, i, out);
                    if acted {
                        break;
                    }
                }
            }
            Action::Deliver(k) => {
                let (to, bytes) = s.net.remove(k);
                let to = usize::from(to);
                let out = s.nodes[to].receive(&bytes);
                self.carry(&mut s, to, out);
            }
            Action::Drop(k) => {
                s.net.remove(k);
                s.drops += 1;
            }
            Action::Propose(i) => {
                let rid = u16::from(s.proposals);
                s.proposals += 1;
                // HovercRaft proposes a read-only request (run by its replier alone).
                let mut req = request(rid);
                req.read_only = self.mode == Mode::Hover;
                match self.mode {
                    Mode::Vanilla => self.apply(&mut s, i, Input::Request(req)),
                    // Multicast: every replica receives it (the leader first).
                    Mode::Hover => {
                        for j in (i..s.nodes.len()).chain(0..i) {
                            self.apply(&mut s, j, Input::Request(req.clone()));
                        }
                    }
                }
            }
            Action::Crash(i) => {
                s.crashes += 1;
                s.stores[i].crash();
                let cfg = s.nodes[i].config().clone();
                s.nodes[i] = Node::new(cfg, s.stores[i].load()).unwrap();
            }
        }
        Some(s)
    }

    fn within_boundary(&self, s: &State) -> bool {
        s.net.len() <= self.max_net && s.nodes.iter().all(|n| n.term() <= self.max_term)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("election safety", |_: &Raft, s: &State| {
                let leaders: Vec<_> = s
                    .nodes
                    .iter()
                    .filter(|n| n.role() == Role::Leader)
                    .map(|n| n.term())
                    .collect();
                leaders
                    .iter()
                    .enumerate()
                    .all(|(a, t)| !leaders[a + 1..].contains(t))
            }),
            Property::always("log matching", |_: &Raft, s: &State| {
                pairs(s).all(|(a, b)| {
                    let lo = a.log().first_index().max(b.log().first_index());
                    let hi = a.log().last_index().min(b.log().last_index());
                    // The highest index where both hold the same term: everything up to it
                    // must be identical.
                    let Some(k) = (lo..=hi)
                        .rev()
                        .find(|&k| a.log().term_at(k) == b.log().term_at(k))
                    else {
                        return true;
                    };
                    (lo..=k).all(|j| a.log().entry(j) == b.log().entry(j))
                })
            }),
            Property::always("state machine safety", |_: &Raft, s: &State| {
                // Every committed index holds the one entry ever committed there.
                s.nodes.iter().all(|n| {
                    (n.log().first_index()..=n.commit())
                        .all(|k| s.committed.get(&k).map(|c| c.0) == n.log().term_at(k))
                })
            }),
            Property::always("leader completeness", |_: &Raft, s: &State| {
                // A leader of a later term than a commit holds the committed entry.
                s.nodes
                    .iter()
                    .filter(|l| l.role() == Role::Leader)
                    .all(|l| {
                        s.committed
                            .range(l.log().first_index()..)
                            .filter(|(_, (_, when))| *when < l.term())
                            .all(|(k, (t, _))| l.log().term_at(*k) == Some(*t))
                    })
            }),
            Property::always("replier and read-only rules", |_: &Raft, s: &State| {
                !s.apply_broken
            }),
            Property::sometimes("a request commits", |_: &Raft, s: &State| {
                s.nodes.iter().any(|n| n.commit() >= 2)
            }),
            Property::sometimes("a replier answers", |_: &Raft, s: &State| s.answered),
        ]
    }
}

fn request(rid: u16) -> Request {
    Request {
        id: ClientId {
            ip: 1,
            port: 1,
            rid,
        },
        read_only: false,
        body: vec![rid as u8],
    }
}

fn pairs(s: &State) -> impl Iterator<Item = (&Node, &Node)> {
    let n = s.nodes.len();
    (0..n).flat_map(move |a| ((a + 1)..n).map(move |b| (&s.nodes[a], &s.nodes[b])))
}

fn check(mode: Mode) {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let depth = env("MODEL_DEPTH", 11);
    let model = Raft {
        mode,
        max_term: 3,
        max_proposals: 1,
        max_crashes: 1,
        max_drops: 1,
        max_net: env("MODEL_NET", 6),
    };
    let checker = model
        .checker()
        .threads(2)
        .target_max_depth(depth)
        .spawn_bfs()
        .join();
    eprintln!(
        "{mode:?}: {} states, {} unique, depth {depth}",
        checker.state_count(),
        checker.unique_state_count()
    );
    checker.assert_properties();
}

#[test]
fn vanilla_three_nodes() {
    check(Mode::Vanilla);
}

#[test]
fn hovercraft_three_nodes() {
    check(Mode::Hover);
}
