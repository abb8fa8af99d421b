//! Unit tests of the replica: election, replication, conflicts, commit rule, snapshots,
//! HovercRaft's recovery and repliers. A tiny synchronous network; every message goes
//! through the wire encoding.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::aggregator::{AGGREGATOR, Aggregator, Dest};
use crate::config::{Config, ConfigError, Mode, ReplierPolicy};
use crate::message::{Message, Progress, WireEntry};
use crate::node::{Applied, Input, Node, Outputs, Role};
use crate::storage::{Durable, MemStorage, Storage, Write};
use crate::types::{ClientId, Entry, NodeId, Op, Request};
use crate::wire;

struct Net {
    nodes: Vec<Node>,
    store: Vec<MemStorage>,
    queue: VecDeque<(NodeId, NodeId, Vec<u8>)>,
    /// Nodes cut off from everyone.
    cut: Vec<bool>,
    applied: Vec<Vec<Applied>>,
    restored: Vec<usize>,
    sent: Vec<Message>,
    /// Raft messages sent and received, per node.
    tx: Vec<usize>,
    rx: Vec<usize>,
    /// HovercRaft++: the aggregator (messages to [`AGGREGATOR`] go through it) and whether
    /// it is cut off.
    agg: Option<Aggregator>,
    agg_cut: bool,
}

fn cfg(id: NodeId, n: u8, mode: Mode) -> Config {
    let mut c = Config::new(id, n, mode);
    c.seed = 1000 + u64::from(id);
    c
}

fn req(rid: u16, read_only: bool) -> Request {
    Request {
        id: ClientId {
            ip: 0x0a00_0001,
            port: 5000,
            rid,
        },
        read_only,
        body: vec![rid as u8; 3],
    }
}

impl Net {
    fn new(n: u8, mode: Mode) -> Net {
        Net::with(n, |id| cfg(id, n, mode))
    }

    fn with(n: u8, f: impl Fn(NodeId) -> Config) -> Net {
        let nodes = (0..n)
            .map(|i| Node::new(f(i), Durable::default()).unwrap())
            .collect();
        let k = usize::from(n);
        Net {
            nodes,
            store: vec![MemStorage::new(); k],
            queue: VecDeque::new(),
            cut: vec![false; k],
            applied: vec![Vec::new(); k],
            restored: vec![0; k],
            sent: Vec::new(),
            tx: vec![0; k],
            rx: vec![0; k],
            agg: None,
            agg_cut: false,
        }
    }

    fn handle(&mut self, i: usize, out: Outputs) {
        for w in out.writes {
            self.store[i].write(w);
        }
        self.store[i].sync();
        if out.restore.is_some() {
            self.restored[i] += 1;
        }
        self.applied[i].extend(out.applied);
        for (to, m) in out.messages {
            let mut b = Vec::new();
            wire::encode(i as NodeId, &m, &mut b);
            self.sent.push(m);
            self.tx[i] += 1;
            self.queue.push_back((i as NodeId, to, b));
        }
    }

    fn step(&mut self, i: usize, input: Input) {
        let out = self.nodes[i].step(input);
        self.handle(i, out);
    }

    fn deliver(&mut self) {
        let mut budget = 100_000;
        while self.deliver_one() {
            budget -= 1;
            assert!(budget > 0, "message storm");
        }
    }

    /// Delivers the oldest message in flight; false if there is none.
    fn deliver_one(&mut self) -> bool {
        {
            let Some((from, to, b)) = self.queue.pop_front() else {
                return false;
            };
            if self.is_cut(from) || self.is_cut(to) {
                return true;
            }
            if to == AGGREGATOR {
                let Some(agg) = self.agg.as_mut() else {
                    return true;
                };
                let n = self.nodes.len() as NodeId;
                for s in agg.receive(&b).sends {
                    let mut bytes = Vec::new();
                    wire::encode(s.from, &s.msg, &mut bytes);
                    for j in 0..n {
                        let pick = match s.to {
                            Dest::Node(k) => j == k,
                            Dest::AllBut(k) => j != k,
                            Dest::All => true,
                        };
                        if pick {
                            self.queue.push_back((AGGREGATOR, j, bytes.clone()));
                        }
                    }
                }
                return true;
            }
            self.rx[usize::from(to)] += 1;
            let out = self.nodes[usize::from(to)].receive(&b);
            self.handle(usize::from(to), out);
        }
        true
    }

    fn is_cut(&self, id: NodeId) -> bool {
        if id == AGGREGATOR {
            self.agg_cut
        } else {
            self.cut[usize::from(id)]
        }
    }

    fn tick(&mut self) {
        for i in 0..self.nodes.len() {
            self.step(i, Input::Tick);
        }
        self.deliver();
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| !self.cut[i] && self.nodes[i].role() == Role::Leader)
            .collect()
    }

    fn elect(&mut self) -> usize {
        for _ in 0..200 {
            self.tick();
            let l = self.leaders();
            if l.len() == 1 {
                return l[0];
            }
        }
        panic!("no leader");
    }

    fn requests_applied(&self, i: usize) -> Vec<(u64, u16)> {
        self.applied[i]
            .iter()
            .filter_map(|a| match &a.op {
                Op::Request { req, .. } => Some((a.index, req.id.rid)),
                Op::Noop => None,
            })
            .collect()
    }
}

#[test]
fn cluster_sizes() {
    for n in 0..12u8 {
        let r = Node::new(Config::new(0, n, Mode::Vanilla), Durable::default());
        if [3, 5, 7, 9].contains(&n) {
            assert!(r.is_ok(), "{n}");
        } else {
            assert_eq!(r.err(), Some(ConfigError::ClusterSize(n)));
        }
    }
    let r = Node::new(Config::new(3, 3, Mode::Vanilla), Durable::default());
    assert_eq!(r.err(), Some(ConfigError::Id(3)));
}

#[test]
fn one_leader_is_elected_and_followers_agree() {
    for n in [3u8, 5, 7, 9] {
        let mut net = Net::new(n, Mode::Vanilla);
        let l = net.elect();
        for _ in 0..20 {
            net.tick();
        }
        assert_eq!(net.leaders(), vec![l], "n={n}");
        let term = net.nodes[l].term();
        for node in &net.nodes {
            assert_eq!(node.term(), term);
            assert_eq!(node.leader(), Some(l as NodeId));
        }
        // The vote is durable.
        assert_eq!(net.store[l].durable().vote, Some(l as NodeId));
    }
}

#[test]
fn prevote_keeps_an_isolated_node_from_inflating_its_term() {
    let mut net = Net::new(3, Mode::Vanilla);
    let l = net.elect();
    let term = net.nodes[l].term();
    let f = (l + 1) % 3;
    net.cut[f] = true;
    for _ in 0..200 {
        net.tick();
    }
    assert_eq!(net.nodes[f].term(), term, "pre-vote never got a majority");
    assert!(net.nodes[f].stats().prevotes > 3);
    net.cut[f] = false;
    for _ in 0..30 {
        net.tick();
    }
    // Back in: the leader was not deposed.
    assert_eq!(net.leaders(), vec![l]);
    assert_eq!(net.nodes[l].term(), term);
}

#[test]
fn leader_without_majority_steps_down_and_a_new_one_takes_over() {
    let mut net = Net::new(5, Mode::Vanilla);
    let l = net.elect();
    net.cut[l] = true;
    for _ in 0..60 {
        net.tick();
    }
    assert_ne!(net.nodes[l].role(), Role::Leader, "check-quorum");
    let others = net.leaders();
    assert_eq!(others.len(), 1);
    assert!(net.nodes[others[0]].term() > net.nodes[l].term());
}

#[test]
fn replication_commits_and_applies_in_order_everywhere() {
    let mut net = Net::new(5, Mode::Vanilla);
    let l = net.elect();
    for rid in 0..100 {
        net.step(l, Input::Request(req(rid, false)));
        if rid % 7 == 0 {
            net.deliver();
        }
    }
    for _ in 0..10 {
        net.tick();
    }
    let want = net.requests_applied(l);
    assert_eq!(want.len(), 100);
    for i in 0..5 {
        assert_eq!(net.requests_applied(i), want, "node {i}");
        assert_eq!(net.nodes[i].commit(), net.nodes[l].log().last_index());
    }
    // Vanilla: the leader replies and executes everything.
    assert!(net.applied[l].iter().all(|a| a.reply == a.execute));
    let f = (l + 1) % 5;
    assert!(net.applied[f].iter().all(|a| !a.reply));
    // A follower redirects clients to the leader.
    let out = net.nodes[f].step(Input::Request(req(999, false)));
    assert_eq!(out.redirects, vec![(req(999, false).id, Some(l as NodeId))]);
}

#[test]
fn vote_is_written_before_the_answer_is_sent() {
    let mut n = Node::new(cfg(1, 3, Mode::Vanilla), Durable::default()).unwrap();
    let out = n.step(Input::Message {
        from: 0,
        msg: Message::VoteReq {
            term: 1,
            last_index: 0,
            last_term: 0,
        },
    });
    assert_eq!(
        out.writes.last(),
        Some(&Write::HardState {
            term: 1,
            vote: Some(0)
        })
    );
    assert_eq!(
        out.messages,
        vec![(
            0,
            Message::VoteRep {
                term: 1,
                granted: true
            }
        )]
    );
    // A second candidate in the same term is refused.
    let out = n.step(Input::Message {
        from: 2,
        msg: Message::VoteReq {
            term: 1,
            last_index: 5,
            last_term: 1,
        },
    });
    assert!(matches!(
        out.messages[0].1,
        Message::VoteRep { granted: false, .. }
    ));
}

fn entries(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .map(|&term| Entry { term, op: Op::Noop })
        .collect()
}

fn durable(term: u64, terms: &[u64]) -> Durable {
    let mut d = Durable {
        term,
        ..Durable::default()
    };
    d.apply(&Write::Entries {
        from: 1,
        entries: entries(terms),
    });
    d
}

/// Raft figure 7: followers with missing and extra entries converge on the leader's log,
/// the hint skipping a term per rejection.
#[test]
fn conflicting_logs_converge_on_the_leaders() {
    let leader_log = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let logs: [&[u64]; 5] = [
        &leader_log,
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],          // a: missing one
        &[1, 1, 1, 4],                         // b: missing many
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],    // c: one extra
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3], // f: other terms
    ];
    let mut net = Net::with(5, |id| {
        let mut c = cfg(id, 5, Mode::Vanilla);
        // Node 0 times out first.
        c.election_ticks = if id == 0 { 3 } else { 50 };
        c
    });
    for (i, l) in logs.iter().enumerate() {
        net.nodes[i] = Node::new(net.nodes[i].config().clone(), durable(7, l)).unwrap();
        net.store[i] = MemStorage::from_durable(durable(7, l));
    }
    let l = net.elect();
    assert_eq!(l, 0, "only the leader's log is up to date for a majority");
    for _ in 0..10 {
        net.tick();
    }
    let want: Vec<u64> = net.nodes[0].log().entries().map(|e| e.term).collect();
    assert_eq!(&want[..10], &leader_log);
    for i in 1..5 {
        let got: Vec<u64> = net.nodes[i].log().entries().map(|e| e.term).collect();
        assert_eq!(got, want, "node {i}");
        assert_eq!(net.nodes[i].commit(), 11);
        // The durable copy went through the same writes.
        let durable: Vec<u64> = net.store[i]
            .durable()
            .log
            .entries()
            .map(|e| e.term)
            .collect();
        assert_eq!(durable, want, "storage of node {i}");
    }
    // f's rejections: one per conflicting term (3, 2), not one per entry.
    let rejections = net
        .sent
        .iter()
        .filter(|m| matches!(m, Message::AppendRep { success: false, .. }))
        .count();
    assert!(rejections <= 4, "{rejections} rejections");
}

/// Raft figure 8: a leader does not commit an entry of an earlier term by counting
/// replicas, only together with an entry of its own term.
#[test]
fn entries_of_earlier_terms_commit_only_with_the_current_term() {
    let mut n = Node::new(cfg(0, 3, Mode::Vanilla), durable(3, &[1, 2])).unwrap();
    n.role = Role::Leader;
    n.term = 4;
    for p in &mut n.peers {
        p.next = 3;
    }
    n.peers[0].matched = 2;
    // Follower 1 has index 2 (term 2): a majority, but term 2 is not 4.
    n.peers[1].matched = 2;
    n.maybe_commit();
    assert_eq!(n.commit(), 0);
    n.append_local(entries(&[4]));
    n.maybe_commit();
    assert_eq!(n.commit(), 0);
    n.peers[1].matched = 3;
    n.maybe_commit();
    assert_eq!(n.commit(), 3);
    assert_eq!(n.applied(), 3);
}

#[test]
fn lagging_follower_gets_the_snapshot() {
    let mut net = Net::new(3, Mode::Vanilla);
    let l = net.elect();
    let f = (l + 1) % 3;
    net.cut[f] = true;
    for rid in 0..50 {
        net.step(l, Input::Request(req(rid, false)));
        net.deliver();
    }
    net.tick();
    let applied = net.nodes[l].applied();
    assert!(applied >= 50);
    net.step(
        l,
        Input::Compact {
            index: applied,
            data: b"state".to_vec(),
        },
    );
    assert_eq!(net.nodes[l].log().snapshot().index, applied);
    assert_eq!(net.store[l].durable().log.snapshot().index, applied);
    net.cut[f] = false;
    for _ in 0..10 {
        net.tick();
    }
    assert_eq!(net.restored[f], 1);
    assert_eq!(net.nodes[f].log().snapshot().data, b"state");
    assert_eq!(net.nodes[f].commit(), net.nodes[l].commit());
    assert_eq!(
        net.nodes[f].log().last_index(),
        net.nodes[l].log().last_index()
    );
    // And it follows new entries after the snapshot.
    net.step(l, Input::Request(req(500, false)));
    for _ in 0..5 {
        net.tick();
    }
    assert_eq!(net.requests_applied(f).last().map(|x| x.1), Some(500));
    // A restart resumes from the snapshot.
    let r = Node::new(net.nodes[f].config().clone(), net.store[f].load()).unwrap();
    assert_eq!(r.applied(), applied);
}

fn hover_net(n: u8, policy: ReplierPolicy, bound: u32) -> Net {
    Net::with(n, |id| {
        let mut c = cfg(id, n, Mode::Hover);
        c.replier = policy;
        c.reply_bound = bound;
        c
    })
}

#[test]
fn hover_orders_metadata_and_recovers_missing_bodies() {
    let mut net = hover_net(3, ReplierPolicy::RoundRobin, 32);
    let l = net.elect();
    let f = (l + 1) % 3;
    for rid in 0..40 {
        // Multicast: every replica gets the request, except f misses every 5th.
        for i in 0..3 {
            if i == f && rid % 5 == 0 {
                continue;
            }
            net.step(i, Input::Request(req(rid, rid % 2 == 1)));
        }
        net.deliver();
    }
    for _ in 0..20 {
        net.tick();
    }
    let want = net.requests_applied(l);
    assert_eq!(want.len(), 40);
    for i in 0..3 {
        assert_eq!(net.requests_applied(i), want, "node {i}");
        assert_eq!(net.nodes[i].pending_len(), 0);
    }
    assert!(net.nodes[f].stats().recovery_asked >= 8);
    // AppendEntries carried no bodies.
    for m in &net.sent {
        if let Message::AppendReq { entries, .. } = m {
            assert!(entries.iter().all(|e| e.body.is_none()));
        }
    }
    // Each request has one replier; round robin spreads them over all three; a read-only
    // request runs only on its replier.
    let mut per = [0; 3];
    for (i, count) in per.iter_mut().enumerate() {
        for a in &net.applied[i] {
            if let Op::Request { req, replier } = &a.op {
                assert_eq!(a.reply, *replier as usize == i);
                assert_eq!(a.execute, !req.read_only || a.reply);
                if a.reply {
                    *count += 1;
                }
            }
        }
    }
    assert_eq!(per.iter().sum::<i32>(), 40);
    assert!(per.iter().all(|&c| c >= 10), "{per:?}");
}

#[test]
fn hover_bounded_queues_stop_announcing_and_resume() {
    let mut net = hover_net(3, ReplierPolicy::Jbsq, 2);
    let l = net.elect();
    for i in 0..3 {
        if i != l {
            net.cut[i] = true;
        }
    }
    for rid in 0..20 {
        for i in 0..3 {
            net.step(i, Input::Request(req(rid, false)));
        }
    }
    // Nothing commits without followers, so nothing is applied: at most 2 per replier.
    let announced = net.nodes[l]
        .log()
        .entries()
        .filter(|e| e.client().is_some())
        .count();
    assert_eq!(announced, 6);
    assert_eq!(net.nodes[l].backlog.len(), 14);
    net.cut = vec![false; 3];
    for _ in 0..40 {
        net.tick();
    }
    assert_eq!(net.requests_applied(l).len(), 20);
    assert!(net.nodes[l].backlog.is_empty());
}

#[test]
fn new_hover_leader_orders_its_pending_requests() {
    let mut net = hover_net(3, ReplierPolicy::Jbsq, 32);
    let l = net.elect();
    net.cut[l] = true;
    // The leader is gone; the request reaches the other two only.
    for i in 0..3 {
        if i != l {
            net.step(i, Input::Request(req(77, false)));
        }
    }
    let l2 = net.elect();
    assert_ne!(l2, l);
    for _ in 0..5 {
        net.tick();
    }
    assert_eq!(net.requests_applied(l2).len(), 1);
}

/// Thesis table 12.1 (shared/spec/numbers.md, "HovercRaft"): per client operation in the
/// failure-free case the leader receives 1 request + (N-1) AppendEntries answers and sends
/// (N-1) AppendEntries, plus 1 reply in vanilla Raft and about 1/N replies in HovercRaft
/// (replies are load balanced). Heartbeats are left out (no ticks while counting).
#[test]
fn leader_messages_per_operation_follow_table_12_1() {
    for mode in [Mode::Vanilla, Mode::Hover] {
        for n in [3u8, 5, 9] {
            let mut net = Net::new(n, mode);
            let l = net.elect();
            for _ in 0..5 {
                net.tick();
            }
            let (tx0, rx0) = (net.tx[l], net.rx[l]);
            let replies0 = net.applied[l].iter().filter(|a| a.reply).count();
            let ops = 90;
            for rid in 0..ops {
                let targets: Vec<usize> = match mode {
                    Mode::Vanilla => vec![l],
                    Mode::Hover => (0..usize::from(n)).collect(),
                };
                for i in targets {
                    net.step(i, Input::Request(req(rid, false)));
                }
                net.deliver();
            }
            let k = usize::from(n) - 1;
            let ops = usize::from(ops);
            assert_eq!(net.tx[l] - tx0, k * ops, "{mode:?} n={n} tx");
            assert_eq!(
                net.rx[l] - rx0,
                k * ops,
                "{mode:?} n={n} rx (+1 request each)"
            );
            let replies = net.applied[l].iter().filter(|a| a.reply).count() - replies0;
            match mode {
                Mode::Vanilla => assert_eq!(replies, ops),
                // JBSQ with equal queues: each replica answers about 1/N of the requests.
                Mode::Hover => {
                    let want = ops / usize::from(n);
                    assert!(
                        replies.abs_diff(want) <= 1,
                        "{mode:?} n={n}: {replies} replies"
                    );
                }
            }
        }
    }
}

/// Thesis 12.3.4 and 12.3.6: a failed replica is assigned at most `reply_bound` replies (the
/// replies clients may lose), and the others take the rest without waiting for it.
#[test]
fn a_silent_replica_gets_at_most_the_bound() {
    for policy in [ReplierPolicy::Jbsq, ReplierPolicy::RoundRobin] {
        let mut net = hover_net(5, policy, 4);
        let l = net.elect();
        for _ in 0..5 {
            net.tick();
        }
        let dead = (l + 1) % 5;
        net.cut[dead] = true;
        for rid in 0..100 {
            for i in 0..5 {
                net.step(i, Input::Request(req(rid, rid % 3 == 0)));
            }
            net.deliver();
        }
        for _ in 0..5 {
            net.tick();
        }
        let mut per = [0usize; 5];
        for e in net.nodes[l].log().entries() {
            if let Op::Request { replier, .. } = &e.op {
                per[usize::from(*replier)] += 1;
            }
        }
        // Round robin fills the dead replica's queue to the bound; JBSQ prefers the live,
        // emptier queues and gives it less.
        match policy {
            ReplierPolicy::RoundRobin => assert_eq!(per[dead], 4, "{per:?}"),
            ReplierPolicy::Jbsq => assert!(per[dead] <= 1, "{per:?}"),
            ReplierPolicy::Random => unreachable!(),
        }
        assert_eq!(per.iter().sum::<usize>(), 100, "{policy:?}: all ordered");
        // Everything committed and answered by the live replicas, but for the dead one's.
        let answered: usize = (0..5)
            .filter(|&i| i != dead)
            .map(|i| net.applied[i].iter().filter(|a| a.reply).count())
            .sum();
        assert_eq!(answered, 100 - per[dead], "{policy:?}");
    }
}

#[test]
fn append_entries_stay_within_max_message_bytes() {
    const LIMIT: usize = 600;
    let mut net = Net::with(3, |id| {
        let mut c = cfg(id, 3, Mode::Vanilla);
        c.max_message_bytes = LIMIT;
        c
    });
    let l = net.elect();
    for rid in 0..40u16 {
        let mut r = req(rid, false);
        r.body = vec![rid as u8; 100];
        net.step(l, Input::Request(r));
    }
    for _ in 0..100 {
        net.tick();
    }
    for i in 0..3 {
        assert_eq!(net.requests_applied(i).len(), 40, "node {i}");
    }
    let mut biggest = 0;
    let mut appends = 0;
    for m in &net.sent {
        if let Message::AppendReq { entries, .. } = m {
            let mut b = Vec::new();
            wire::encode(0, m, &mut b);
            assert!(
                b.len() <= LIMIT,
                "{} bytes, {} entries",
                b.len(),
                entries.len()
            );
            biggest = biggest.max(entries.len());
            appends += 1;
        }
    }
    // 100-byte bodies: 130 bytes an entry, so 4 of them a message, never 30.
    assert_eq!(
        biggest,
        (LIMIT - wire::APPEND_HEADER) / (wire::ENTRY_HEADER + 4 + 100)
    );
    assert!(appends > 20);
}

/// A HovercRaft++ cluster: HovercRaft with the aggregator.
fn plus_net(n: u8) -> Net {
    let mut net = Net::with(n, |id| {
        let mut c = cfg(id, n, Mode::Hover);
        c.aggregator = true;
        c
    });
    net.agg = Some(Aggregator::new(n));
    net
}

/// A HovercRaft++ cluster with an elected leader that switched to the aggregator.
fn plus_leader(n: u8) -> (Net, usize) {
    let mut net = plus_net(n);
    let l = net.elect();
    for _ in 0..5 {
        net.tick();
    }
    assert_eq!(net.nodes[l].stats().agg_switches, 1, "n={n}");
    (net, l)
}

/// Thesis table 12.1, HovercRaft++: per client operation the leader receives the request
/// and one AGG_COMMIT, and sends one AGG_AE_REQ (to the aggregator) and about 1/N replies,
/// whatever N. (The request and the replies are not Raft messages: `rx`/`tx` count the Raft
/// messages, replies are counted apart.)
#[test]
fn leader_messages_per_operation_follow_table_12_1_with_the_aggregator() {
    for n in [3u8, 5, 7, 9] {
        let (mut net, l) = plus_leader(n);
        let (tx0, rx0) = (net.tx[l], net.rx[l]);
        let replies0: Vec<usize> = (0..usize::from(n))
            .map(|i| net.applied[i].iter().filter(|a| a.reply).count())
            .collect();
        let ops = 315; // a multiple of 3, 5, 7 and 9
        for rid in 0..ops {
            for i in 0..usize::from(n) {
                net.step(i, Input::Request(req(rid, false)));
            }
            net.deliver();
        }
        let ops = usize::from(ops);
        assert_eq!(net.tx[l] - tx0, ops, "n={n}: tx 1 AGG_AE_REQ each");
        assert_eq!(net.rx[l] - rx0, ops, "n={n}: rx 1 AGG_COMMIT each");
        // Every replica answers about 1/N of the requests, the leader among them.
        for (i, r0) in replies0.iter().enumerate() {
            let replies = net.applied[i].iter().filter(|a| a.reply).count() - r0;
            let want = ops / usize::from(n);
            assert!(replies.abs_diff(want) <= 1, "n={n} node {i}: {replies}");
        }
        // Followers committed from the AGG_COMMITs, not from a later AppendEntries.
        for i in (0..usize::from(n)).filter(|&i| i != l) {
            assert_eq!(net.requests_applied(i).len(), ops, "n={n} node {i}");
            assert!(net.nodes[i].stats().agg_commits as usize >= ops, "n={n}");
        }
    }
}

#[test]
fn plus_falls_back_when_the_aggregator_is_silent_and_returns() {
    let (mut net, l) = plus_leader(5);
    let term = net.nodes[l].term();
    net.agg_cut = true;
    for rid in 0..10 {
        for i in 0..5 {
            net.step(i, Input::Request(req(rid, false)));
        }
        net.deliver();
    }
    assert!(
        net.requests_applied(l).is_empty(),
        "nothing commits without it"
    );
    // After half an election timeout the leader replicates directly: all commit, and no
    // election happened.
    for _ in 0..5 {
        net.tick();
    }
    assert_eq!(net.nodes[l].stats().agg_fallbacks, 1);
    for _ in 0..5 {
        net.tick();
    }
    for i in 0..5 {
        assert_eq!(net.requests_applied(i).len(), 10, "node {i}");
        assert_eq!(net.nodes[i].term(), term);
    }
    // The aggregator is back: after the back-off a probe, and one AGG_AE_REQ an op again.
    net.agg_cut = false;
    for _ in 0..15 {
        net.tick();
    }
    assert_eq!(net.nodes[l].stats().agg_switches, 2);
    let tx0 = net.tx[l];
    for rid in 10..20 {
        for i in 0..5 {
            net.step(i, Input::Request(req(rid, false)));
        }
        net.deliver();
    }
    assert_eq!(net.tx[l] - tx0, 10);
    assert_eq!(net.requests_applied(l).len(), 20);
    assert_eq!(net.nodes[l].term(), term);
}

/// What the leader believes of an AGG_COMMIT: only its own term, never past what it
/// multicast, and it counts itself (the aggregator's commit field is ignored).
#[test]
fn leader_commits_by_its_own_count_from_agg_commits() {
    let (mut net, l) = plus_leader(3);
    let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    for &i in &others {
        net.cut[i] = true;
    }
    net.agg_cut = true;
    for rid in 0..3 {
        net.step(l, Input::Request(req(rid, false)));
    }
    let (term, last, commit) = (
        net.nodes[l].term(),
        net.nodes[l].log().last_index(),
        net.nodes[l].commit(),
    );
    assert!(commit < last);
    let forged = |term, commit, matched| Message::AggCommit {
        term,
        commit,
        fresh: 0b111,
        progress: vec![
            Progress {
                matched,
                applied: 0,
            };
            3
        ],
    };
    let feed = |net: &mut Net, m: Message| {
        net.step(
            l,
            Input::Message {
                from: AGGREGATOR,
                msg: m,
            },
        );
        net.nodes[l].commit()
    };
    // Another term's (stale) progress, or a commit index with no progress behind it.
    assert_eq!(feed(&mut net, forged(term - 1, last, last)), commit);
    assert_eq!(feed(&mut net, forged(term + 1, last, last)), commit);
    assert_eq!(
        net.nodes[l].term(),
        term,
        "the aggregator never changes a term"
    );
    assert_eq!(feed(&mut net, forged(term, last + 5, commit)), commit);
    // From a member instead of the aggregator: refused.
    net.step(
        l,
        Input::Message {
            from: others[0] as NodeId,
            msg: forged(term, last, last),
        },
    );
    assert_eq!(net.nodes[l].commit(), commit);
    // Progress past what was multicast is capped at it.
    assert_eq!(feed(&mut net, forged(term, last + 100, last + 100)), last);
}

/// A follower commits from an AGG_COMMIT at most its verified prefix, only an entry of the
/// current term, only in its term.
#[test]
fn follower_commits_from_agg_commit_only_what_it_verified() {
    let mut c = cfg(1, 3, Mode::Hover);
    c.aggregator = true;
    let mut f = Node::new(c, durable(2, &[1, 1])).unwrap();
    let ae = |prev_index, prev_term, entries| Input::Message {
        from: 0,
        msg: Message::AggAppendReq {
            term: 2,
            prev_index,
            prev_term,
            commit: 0,
            term_start: 3,
            entries,
        },
    };
    let commit = |term, commit| Input::Message {
        from: AGGREGATOR,
        msg: Message::AggCommit {
            term,
            commit,
            fresh: 0,
            progress: vec![Progress::default(); 3],
        },
    };
    // Before hearing the leader of its term: nothing.
    f.step(commit(2, 2));
    assert_eq!(f.commit(), 0);
    let out = f.step(ae(2, 1, Vec::new()));
    // A success answer goes to the aggregator.
    assert!(matches!(
        out.messages[..],
        [(AGGREGATOR, Message::AppendRep { success: true, .. })]
    ));
    // Index 2 is verified but of term 1 (figure 8): not committed by an AGG_COMMIT.
    f.step(commit(2, 2));
    assert_eq!(f.commit(), 0);
    let noop = WireEntry {
        term: 2,
        meta: None,
        body: None,
    };
    f.step(ae(2, 1, vec![noop]));
    // Past the verified prefix: up to it; another term's: nothing, term unchanged.
    f.step(commit(3, 10));
    assert_eq!((f.commit(), f.term()), (0, 2));
    let out = f.step(commit(2, 10));
    assert_eq!(f.commit(), 3);
    assert_eq!(out.applied.len(), 3);
    // A failed multicast AppendEntries is answered to the leader itself.
    let out = f.step(ae(9, 2, Vec::new()));
    assert!(matches!(
        out.messages[..],
        [(0, Message::AppendRep { success: false, .. })]
    ));
}

/// Thesis 12.3.6, RANDOM: the replier is drawn among the nodes under the bound; every node
/// gets a share, none more than the bound while it applies nothing.
#[test]
fn random_repliers_spread_and_respect_the_bound() {
    let mut net = hover_net(5, ReplierPolicy::Random, 4);
    let l = net.elect();
    for _ in 0..5 {
        net.tick();
    }
    let dead = (l + 2) % 5;
    net.cut[dead] = true;
    for rid in 0..200 {
        for i in 0..5 {
            net.step(i, Input::Request(req(rid, false)));
        }
        net.deliver();
    }
    let mut per = [0usize; 5];
    for e in net.nodes[l].log().entries() {
        if let Op::Request { replier, .. } = &e.op {
            per[usize::from(*replier)] += 1;
        }
    }
    assert_eq!(per.iter().sum::<usize>(), 200, "{per:?}");
    assert!(per[dead] <= 4, "{per:?}");
    // Not round robin: the live shares differ, and each is about a quarter.
    let live: Vec<usize> = (0..5).filter(|&i| i != dead).map(|i| per[i]).collect();
    assert!(live.iter().all(|&c| (25..=75).contains(&c)), "{per:?}");
    assert!(live.iter().any(|&c| c != live[0]), "{per:?}");
}

/// Thesis 12.3.4 with an application thread (12.6): once the application reports what it
/// ran ([`Input::Executed`]), a replier whose application is stuck is assigned at most the
/// bound, although its replica commits (hands out) every entry.
#[test]
fn executed_index_bounds_a_busy_replier() {
    let mut net = hover_net(3, ReplierPolicy::Jbsq, 3);
    let l = net.elect();
    for _ in 0..5 {
        net.tick();
    }
    let busy = (l + 1) % 3;
    for i in 0..3 {
        net.step(i, Input::Executed(0));
    }
    for rid in 0..60 {
        for i in 0..3 {
            net.step(i, Input::Request(req(rid, true)));
        }
        net.deliver();
        // Everyone but `busy` runs what it was handed at once.
        for i in 0..3 {
            if i != busy {
                let done = net.nodes[i].applied();
                net.step(i, Input::Executed(done));
            }
        }
        net.deliver();
    }
    for _ in 0..5 {
        net.tick();
    }
    let mut per = [0usize; 3];
    for e in net.nodes[l].log().entries() {
        if let Op::Request { replier, .. } = &e.op {
            per[usize::from(*replier)] += 1;
        }
    }
    assert_eq!(per.iter().sum::<usize>(), 60, "{per:?}");
    assert!(per[busy] <= 3, "{per:?}");
    // The busy replica was handed every entry all the same, and reports only what it ran.
    assert_eq!(net.requests_applied(busy).len(), 60);
    assert_eq!(net.nodes[busy].done(), 0);
    // It catches up: its queue frees and it is assigned again.
    let done = net.nodes[busy].applied();
    net.step(busy, Input::Executed(done));
    net.tick();
    for rid in 60..66 {
        for i in 0..3 {
            net.step(i, Input::Request(req(rid, true)));
        }
        net.deliver();
    }
    let late = net.nodes[l]
        .log()
        .entries()
        .filter(|e| matches!(&e.op, Op::Request { replier, req } if usize::from(*replier) == busy && req.id.rid >= 60))
        .count();
    assert!(late >= 1, "busy replica never assigned again");
}

/// Without [`Input::Executed`] the handed-out index counts as run (an application that runs
/// each step's entries before the next step): the same stuck replier is assigned its share.
#[test]
fn without_executed_reports_handed_out_entries_count_as_run() {
    let mut net = hover_net(3, ReplierPolicy::Jbsq, 3);
    let l = net.elect();
    for rid in 0..30 {
        for i in 0..3 {
            net.step(i, Input::Request(req(rid, true)));
        }
        net.deliver();
    }
    for i in 0..3 {
        assert_eq!(net.nodes[i].done(), net.nodes[i].applied());
    }
    let per = (0..3)
        .map(|j| {
            net.nodes[l]
                .log()
                .entries()
                .filter(
                    |e| matches!(&e.op, Op::Request { replier, .. } if usize::from(*replier) == j),
                )
                .count()
        })
        .collect::<Vec<_>>();
    assert!(per.iter().all(|&c| c >= 5), "{per:?}");
}

/// Each follower has one AppendEntries outstanding, plus at most the heartbeat sent while
/// one was: under steady load the answers to both must not start two streams (every
/// heartbeat would add one, and each entry would go out once per stream).
#[test]
fn heartbeats_under_load_do_not_multiply_append_entries() {
    for mode in [Mode::Vanilla, Mode::Hover] {
        let mut net = Net::new(3, mode);
        let l = net.elect();
        for _ in 0..5 {
            net.tick();
        }
        let sent0 = net.sent.len();
        let ops = 400u16;
        for rid in 0..ops {
            let targets: Vec<usize> = match mode {
                Mode::Vanilla => vec![l],
                Mode::Hover => (0..3).collect(),
            };
            for i in targets {
                net.step(i, Input::Request(req(rid, false)));
            }
            // A few messages in flight at all times; a tick every 10 requests (a heartbeat
            // every 20).
            for _ in 0..3 {
                net.deliver_one();
            }
            if rid % 10 == 0 {
                net.step(l, Input::Tick);
            }
        }
        net.deliver();
        let carried: usize = net.sent[sent0..]
            .iter()
            .map(|m| match m {
                Message::AppendReq { entries, .. } => entries.len(),
                _ => 0,
            })
            .sum();
        // Each entry reaches each of the 2 followers once, plus what the 20 heartbeats
        // resend (what is outstanding at the time: a few entries).
        let once = 2 * usize::from(ops);
        assert!(
            carried < once + once / 2,
            "{mode:?}: {carried} entries sent for {once}"
        );
        assert_eq!(net.requests_applied(l).len(), usize::from(ops), "{mode:?}");
    }
}

/// A member flooding the leader with RECOVERY_REQs: for bodies nobody holds they cost no
/// answer (counted; a body is the same in any term, so an old term's request is served like
/// a current one), from a non-member they never decode; every answer fits one message; the
/// cluster's log and commit are unchanged.
#[test]
fn recovery_req_floods_are_answered_at_most_in_kind_and_counted() {
    let mut net = hover_net(3, ReplierPolicy::RoundRobin, 32);
    let l = net.elect();
    let f = (l + 1) % 3;
    for rid in 0..10 {
        for i in 0..3 {
            net.step(i, Input::Request(req(rid, false)));
        }
        net.deliver();
    }
    for _ in 0..5 {
        net.tick();
    }
    let (commit, last) = (net.nodes[l].commit(), net.nodes[l].log().last_index());
    let term = net.nodes[l].term();
    let unknown = |rid: u16| ClientId {
        ip: 0x0a00_0009,
        port: 1,
        rid,
    };
    let flood = |term: u64, from: NodeId, rid: u16| {
        let mut b = Vec::new();
        let missing = (0..8).map(|k| (last + 1 + k, unknown(rid))).collect();
        wire::encode(from, &Message::RecoveryReq { term, missing }, &mut b);
        b
    };
    let before = net.nodes[l].stats().clone();
    let mut sent = 0;
    for rid in 0..5000u16 {
        for b in [
            flood(term, f as NodeId, rid),
            flood(term.saturating_sub(1), f as NodeId, rid),
            flood(term, 7, rid),
        ] {
            sent += net.nodes[l].receive(&b).messages.len();
        }
    }
    let st = net.nodes[l].stats();
    assert_eq!(sent, 0, "no answer to a flood for bodies nobody holds");
    assert_eq!(st.recovery_unknown - before.recovery_unknown, 2 * 5000 * 8);
    assert_eq!(st.unknown_sender - before.unknown_sender, 5000);
    assert_eq!(st.recovery_served, before.recovery_served);
    // A request for a body the leader holds is answered once per request, within one message.
    let held = net.nodes[l].log().entry(last).map(|e| e.op.clone());
    let Some(Op::Request { req: r, .. }) = held else {
        panic!("the last entry is a request");
    };
    let mut b = Vec::new();
    let missing = vec![(last, r.id); 64];
    wire::encode(f as NodeId, &Message::RecoveryReq { term, missing }, &mut b);
    let out = net.nodes[l].receive(&b);
    let reps: Vec<&Message> = out
        .messages
        .iter()
        .map(|(_, m)| m)
        .filter(|m| matches!(m, Message::RecoveryRep { .. }))
        .collect();
    assert_eq!(reps.len(), 1);
    // Safety: nothing moved.
    assert_eq!(net.nodes[l].commit(), commit);
    assert_eq!(net.nodes[l].log().last_index(), last);
    assert_eq!(net.nodes[l].role(), Role::Leader);
}
