//! One replica: the Raft core (`ferrix-raft`), the replicated key-value store (`ferrix-kv`,
//! one RESP command per R2P2 message, as apps/kv serves it) and the R2P2 server that takes
//! client requests and sends replies, glued together. No I/O happens here during a poll:
//! replies and Raft messages are queued and go out in [`Replica::flush`].
//!
//! Raft messages ride in R2P2 RAFT_REQ / RAFT_REP datagrams (one packet, rid 0, the layout of
//! `ferrix_raft::wire` after the 8-byte header) between the members' `raft-port`s; a datagram
//! whose source address is not the member its `from_id` names is refused and counted.
//!
//! Client requests are R2P2 REQUESTs with policy REPLICATED_ROUTE (may write) or
//! REPLICATED_ROUTE_NO_SE (read-only: run only by the replier the leader picks). A request
//! must be one packet (HovercRaft clients multicast it: a multi-packet request's ACK would come
//! from every replica). Refusals (another policy, a write marked read-only, a body over
//! `max-body`, a full log, a multi-packet request) are counted by every replica and answered
//! by the leader alone: DROP, or a RESP error for a write marked read-only.
//!
//! Persistent state goes to the VM's disk ([`crate::disk`]) when it has one: a restarted
//! replica replays its term, vote and log, and re-runs the committed entries against a fresh
//! store as the leader tells it the commit index again. Without a disk the state is volatile.
//!
//! The state machine must be deterministic: commands run with a fixed clock (time never
//! passes for the replicated store, so TTLs never expire; an expiry time set is kept and
//! reported), and the store must be large enough never to evict (evictions depend on LRU
//! order, which replicas' reads change; they are counted and reported as a divergence risk).

use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use ferrix::net::r2p2::{GuestClock, GuestTransport};
use ferrix_kv::{Backend, Sharded, StoreConfig};
use ferrix_net::r2p2::header::{Header, MsgType, Policy};
use ferrix_net::r2p2::server::{IncomingRequest, RequestMeta, Server, ServerConfig};
use ferrix_raft::wire;
use ferrix_raft::{Applied, ClientId, Input, Node, Op, Outputs, Request, Role, Write};

use crate::args::Settings;

/// What the glue counts (the core's own counters are `Node::stats`).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Client requests taken to the core.
    pub requests: u64,
    /// Requests with a policy other than REPLICATED_ROUTE(_NO_SE).
    pub wrong_policy: u64,
    /// Writes sent with the read-only policy.
    pub read_only_writes: u64,
    /// Bodies over `max-body`.
    pub too_large: u64,
    /// Multi-packet requests.
    pub multi_packet: u64,
    /// Requests refused because the log is at `max-log`.
    pub log_full: u64,
    /// Entries executed against the store.
    pub executed: u64,
    /// Replies sent (this replica was the replier).
    pub replies: u64,
    /// Vanilla: clients told to go to the leader.
    pub redirects: u64,
    /// Raft datagrams received, and refused before the core (not R2P2 RAFT_REQ/REP, or a
    /// source that is not the member named).
    pub raft_in: u64,
    pub raft_refused: u64,
    /// HovercRaft++: this leader's own AppendEntries, relayed back by the aggregator's
    /// multicast (ignored).
    pub agg_echo: u64,
    /// Raft datagrams sent, and those the stack refused.
    pub raft_out: u64,
    pub send_failed: u64,
    /// Durable writes handed out by the core, and the records (one per flush) that made
    /// them durable on disk (0 without a disk: volatile).
    pub writes: u64,
    pub records: u64,
    /// Snapshots a leader sent (this replica never compacts, so none is expected): ignored.
    pub snapshots_refused: u64,
}

/// A replica and its store.
pub struct Replica {
    node: Node,
    server: Server<GuestTransport, GuestClock>,
    store: Sharded,
    peers: Vec<SocketAddrV4>,
    aggregator: Option<SocketAddrV4>,
    max_body: usize,
    max_log: u64,
    raft_port: u16,
    raft_out: Vec<(SocketAddrV4, Vec<u8>)>,
    reply: Vec<u8>,
    role: Role,
    term: u64,
    /// Where the writes go (None: volatile), and those not yet durable.
    disk: Option<crate::disk::DiskLog>,
    unsynced: Vec<Write>,
    /// Counters of the glue.
    pub counters: Counters,
}

/// The fixed clock of the replicated state machine.
const STATE_CLOCK: ferrix_kv::Clock = ferrix_kv::Clock::new(0, 0);

impl Replica {
    /// A replica resuming from `durable` (what its disk replayed; the default for a fresh
    /// one), writing to `disk` (None: volatile).
    pub fn new(
        s: &Settings,
        durable: ferrix_raft::Durable,
        disk: Option<crate::disk::DiskLog>,
    ) -> Result<Replica, ferrix_raft::ConfigError> {
        let node = Node::new(s.raft.clone(), durable)?;
        let mut transport = GuestTransport::default();
        transport.set_port(s.port);
        let server = Server::new(
            transport,
            GuestClock,
            ServerConfig {
                router: s.router,
                max_packets: 1024,
                ..ServerConfig::default()
            },
        );
        let shards = 8;
        let mem_limit = s.mem_mb << 20;
        let store = Sharded::new(
            shards,
            StoreConfig {
                mem_limit,
                item_size_max: (mem_limit / shards).min(1 << 20),
                ..StoreConfig::default()
            },
        );
        Ok(Replica {
            node,
            server,
            store,
            peers: s
                .peers
                .iter()
                .map(|ip| SocketAddrV4::new(*ip, s.raft_port))
                .collect(),
            aggregator: s.aggregator.map(|ip| SocketAddrV4::new(ip, s.raft_port)),
            max_body: s.max_body,
            max_log: s.max_log,
            raft_port: s.raft_port,
            raft_out: Vec::new(),
            reply: Vec::new(),
            role: Role::Follower,
            term: 0,
            disk,
            unsynced: Vec::new(),
            counters: Counters::default(),
        })
    }

    /// The Raft core.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The store's items, bytes and evictions.
    pub fn store_totals(&self) -> (usize, usize, u64) {
        let mut b = &self.store;
        let (stats, items, bytes) = Backend::totals(&mut b);
        (items, bytes, stats.evictions)
    }

    /// Replies and raft messages the stack refused (ARP unresolved, no buffer).
    pub fn send_failures(&mut self) -> u64 {
        self.counters.send_failed + self.server.transport_mut().failed
    }

    /// The R2P2 server's counters.
    pub fn r2p2_stats(&self) -> &ferrix_net::r2p2::R2p2Stats {
        self.server.stats()
    }

    /// A datagram to the client port.
    pub fn on_client(&mut self, src: SocketAddrV4, dgram: &[u8]) {
        if let Ok((h, _)) = Header::parse(dgram)
            && h.msg_type == MsgType::Request
            && !(h.is_first() && h.is_last())
        {
            // Only REQ0 is answered (once); the other packets are dropped quietly.
            if h.is_first() {
                self.counters.multi_packet += 1;
                self.refuse(RequestMeta {
                    client: src,
                    rid: h.rid,
                    policy: h.policy,
                });
            }
            return;
        }
        let Some(IncomingRequest { meta, payload }) = self.server.handle_datagram(src, dgram)
        else {
            return;
        };
        let read_only = match meta.policy {
            Policy::ReplicatedRoute => false,
            Policy::ReplicatedRouteNoSe => true,
            _ => {
                self.counters.wrong_policy += 1;
                return self.refuse(meta);
            }
        };
        if payload.len() > self.max_body {
            self.counters.too_large += 1;
            return self.refuse(meta);
        }
        if read_only && !ferrix_kv::r2p2::is_read_only(&payload) {
            self.counters.read_only_writes += 1;
            if self.node.role() == Role::Leader {
                self.reply.clear();
                ferrix_kv::resp::reply::error(
                    &mut self.reply,
                    b"ERR write command sent with the read-only policy (REPLICATED_ROUTE_NO_SE)",
                );
                let reply = core::mem::take(&mut self.reply);
                let _ = self.server.send_response(&meta, &reply);
                self.reply = reply;
            }
            return;
        }
        let log = self.node.log();
        if log.last_index() - log.snapshot().index >= self.max_log {
            self.counters.log_full += 1;
            return self.refuse(meta);
        }
        self.counters.requests += 1;
        let req = Request {
            id: ClientId {
                ip: u32::from(*meta.client.ip()),
                port: meta.client.port(),
                rid: meta.rid,
            },
            read_only,
            body: payload.to_vec(),
        };
        let out = self.node.step(Input::Request(req));
        self.carry_out(out);
    }

    /// DROP from the leader only (every replica sees a multicast request).
    fn refuse(&mut self, meta: RequestMeta) {
        if self.node.role() == Role::Leader {
            self.server.drop_request(&meta);
        }
    }

    /// A datagram to the Raft port.
    pub fn on_raft(&mut self, src: SocketAddrV4, dgram: &[u8]) {
        self.counters.raft_in += 1;
        let body = match Header::parse(dgram) {
            Ok((h, body)) if matches!(h.msg_type, MsgType::RaftReq | MsgType::RaftRep) => body,
            _ => {
                self.counters.raft_refused += 1;
                return;
            }
        };
        // The prefix names the sender: only its address vouches for it (the aggregator's for
        // its own messages, and for the leader's AppendEntries it relays).
        let member = |id: u8| self.peers.get(usize::from(id)).map(|p| *p.ip());
        let aggregator = self.aggregator.map(|a| *a.ip());
        let vouched = match wire::sender(body) {
            Some(wire::Sender::Member(id)) => member(id) == Some(*src.ip()),
            Some(wire::Sender::Aggregator) => aggregator == Some(*src.ip()),
            Some(wire::Sender::LeaderViaAggregator(id)) => {
                if id == self.node.id() && aggregator == Some(*src.ip()) {
                    self.counters.agg_echo += 1;
                    return;
                }
                member(id) == Some(*src.ip()) || aggregator == Some(*src.ip())
            }
            None => false,
        };
        if !vouched {
            self.counters.raft_refused += 1;
            return;
        }
        let out = self.node.receive(body);
        self.carry_out(out);
    }

    /// One Raft tick, and the R2P2 server's timers.
    pub fn tick(&mut self) {
        let out = self.node.step(Input::Tick);
        self.carry_out(out);
        self.server.poll_timers();
    }

    /// Whether the role or term changed since the last call (for the console).
    pub fn role_changed(&mut self) -> Option<(Role, u64)> {
        let (role, term) = (self.node.role(), self.node.term());
        if (role, term) == (self.role, self.term) {
            return None;
        }
        let was_leader = self.role == Role::Leader;
        (self.role, self.term) = (role, term);
        (role == Role::Leader || was_leader).then_some((role, term))
    }

    fn carry_out(&mut self, out: Outputs) {
        // The writes become durable in `flush`, before any message is sent (the fsync rule);
        // without a disk they are only counted (the log itself lives in the core).
        self.counters.writes += out.writes.len() as u64;
        if out.writes.iter().any(|w| matches!(w, Write::Snapshot(_))) || out.restore.is_some() {
            self.counters.snapshots_refused += 1;
        }
        if self.disk.is_some() {
            self.unsynced.extend(out.writes);
        }
        for a in out.applied {
            self.apply(a);
        }
        let me = self.node.id();
        for (to, m) in out.messages {
            let dst = if to == wire::AGGREGATOR {
                self.aggregator
            } else {
                self.peers.get(usize::from(to)).copied()
            };
            let Some(dst) = dst else {
                continue;
            };
            let ty = if wire::r2p2_type(&m) == wire::R2P2_RAFT_REQ {
                MsgType::RaftReq
            } else {
                MsgType::RaftRep
            };
            let mut b = Header::single(ty, Policy::FixedRoute, 0).encode().to_vec();
            wire::encode(me, &m, &mut b);
            self.raft_out.push((dst, b));
        }
        for (client, leader) in out.redirects {
            self.counters.redirects += 1;
            self.reply.clear();
            self.reply.extend_from_slice(b"-NOTLEADER ");
            match leader.and_then(|l| self.peers.get(usize::from(l))) {
                Some(p) => self
                    .reply
                    .extend_from_slice(alloc::format!("{}", p.ip()).as_bytes()),
                None => self.reply.extend_from_slice(b"unknown"),
            }
            self.reply.extend_from_slice(b"\r\n");
            self.answer(client);
        }
    }

    fn apply(&mut self, a: Applied) {
        let Op::Request { req, .. } = a.op else {
            return;
        };
        if !a.execute {
            return;
        }
        self.counters.executed += 1;
        self.reply.clear();
        let mut b = &self.store;
        // A malformed body gets a RESP error reply: the same on every replica.
        let _ = ferrix_kv::r2p2::handle_request(&req.body, &mut self.reply, &mut b, STATE_CLOCK);
        if a.reply {
            self.counters.replies += 1;
            self.answer(req.id);
        }
    }

    /// Sends `self.reply` to the client of `id`.
    fn answer(&mut self, id: ClientId) {
        let meta = RequestMeta {
            client: SocketAddrV4::new(Ipv4Addr::from(id.ip), id.port),
            rid: id.rid,
            policy: Policy::FixedRoute,
        };
        let reply = core::mem::take(&mut self.reply);
        if self.server.send_response(&meta, &reply).is_err() {
            self.counters.send_failed += 1;
        }
        self.reply = reply;
    }

    /// Makes the last steps' writes durable, then sends what they queued (call outside a
    /// poll). A write that cannot be made durable stops the replica (crash-stop: nothing
    /// that depends on it is sent).
    pub fn flush(&mut self) -> Result<(), alloc::string::String> {
        if let Some(d) = self.disk.as_mut()
            && !self.unsynced.is_empty()
        {
            d.append(&self.unsynced)?;
            self.unsynced.clear();
            self.counters.records += 1;
        }
        self.server.transport_mut().flush();
        for (dst, b) in self.raft_out.drain(..) {
            self.counters.raft_out += 1;
            if ferrix::net::send_udp(self.raft_port, dst, &b).is_err() {
                self.counters.send_failed += 1;
            }
        }
        Ok(())
    }

    /// Sectors of the disk in use (None: no disk).
    pub fn disk_used(&self) -> Option<u64> {
        self.disk.as_ref().map(|d| d.used())
    }
}
