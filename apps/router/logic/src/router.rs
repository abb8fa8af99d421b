//! The router: REQ0s in, decisions out; FEEDBACKs in, slots freed and held REQ0s released.
//!
//! It handles only REQ0 and FEEDBACK. A forwarded REQ0 is the client's datagram unchanged;
//! the caller sends it to the chosen server with only the destination rewritten (the client
//! stays the source), so servers reply to clients directly and send the rest of a
//! multi-packet request's packets straight to the server that ACKed it (thesis 10.4). Time is
//! a parameter of every call (`now_ns`), so the same code runs in the guest, on Linux and in a
//! simulation.
//!
//! Priority: [`Router::feedback`] never waits behind REQ0s. Callers that receive a burst
//! hand the router its FEEDBACKs first ([`Router::handle_burst`] does this), so slot counts
//! are current when the REQ0s of the same burst are placed (thesis 10.5.1).

use crate::group::{Group, GroupConfig};
use crate::policy::{self, Balance};
use crate::rng::Rng;
use crate::servers::{JoinRefused, Outstanding, ServerTable};
use crate::stats::{Refusal, RouterStats};
use crate::sven::{Sven, SvenConfig};
use crate::wire::{
    DROP_LEN, Feedback, Head, POLICY_FIXED, POLICY_LB, POLICY_REPLICATED, POLICY_REPLICATED_NO_SE,
    TYPE_FEEDBACK, TYPE_REQUEST, drop_message,
};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

/// The router's configuration. Times are in ns of the caller's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// Policy for LB_ROUTE requests (and for policies the router does not serve).
    pub balance: Balance,
    /// Most REQ0s held in the central queue (JBSQ); beyond, DROP.
    pub queue_cap: usize,
    /// A REQ0 held longer than this is refused with DROP.
    pub queue_timeout_ns: u64,
    /// An outstanding request with no FEEDBACK for this long frees its slot.
    pub slot_timeout_ns: u64,
    /// A server silent (no FEEDBACK, no heartbeat) for this long is removed.
    pub server_timeout_ns: u64,
    /// Most servers.
    pub max_servers: usize,
    /// Most requests tracked per server under unbounded policies.
    pub max_tracked: usize,
    /// Let the bound a server announces in FEEDBACK replace the policy's n.
    pub honour_announced: bool,
    /// FIXED_ROUTE's target; None (or not live): the live server with the lowest address.
    pub master: Option<SocketAddrV4>,
    /// Only addresses in this network (address, prefix length) may join.
    pub server_net: Option<(Ipv4Addr, u8)>,
    /// SVEN admission control in front of the policy.
    pub sven: Option<SvenConfig>,
    /// The replicated group REPLICATED_ROUTE(_NO_SE) requests go to, with its bound.
    pub group: Option<GroupConfig>,
    /// RNG seed (random picks, SVEN).
    pub seed: u64,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            balance: Balance::Jbsq(1),
            queue_cap: 4096,
            queue_timeout_ns: 1_000_000_000,
            slot_timeout_ns: 1_000_000_000,
            server_timeout_ns: 3_000_000_000,
            max_servers: 64,
            max_tracked: 4096,
            honour_announced: true,
            master: None,
            server_net: None,
            sven: None,
            group: None,
            seed: 0x5eed,
        }
    }
}

/// What to do with a REQ0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to this server (rewriting only the destination).
    Forward(SocketAddrV4),
    /// Held in the central queue; it leaves later through [`Output::Forward`] or
    /// [`Output::Drop`].
    Queued,
    /// Refused: send `message` (DROP) to the client.
    Refused(Refusal, [u8; DROP_LEN]),
    /// Not a REQ0 the router takes (counted); nothing to send.
    Ignored,
}

/// A datagram the router wants sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// `datagram` to `server`, with `client` as its source.
    Forward {
        client: SocketAddrV4,
        server: SocketAddrV4,
        datagram: &'a [u8],
    },
    /// DROP to `client` (from the router's own address).
    Drop {
        client: SocketAddrV4,
        message: [u8; DROP_LEN],
    },
}

/// A REQ0 held in the central queue.
#[derive(Clone, Debug)]
struct Held {
    client: SocketAddrV4,
    rid: u16,
    class: u8,
    arrived_ns: u64,
    datagram: Vec<u8>,
}

/// The R2P2 router.
#[derive(Clone, Debug)]
pub struct Router {
    cfg: RouterConfig,
    servers: ServerTable,
    central: VecDeque<Held>,
    cursor: usize,
    rng: Rng,
    sven: Option<Sven>,
    group: Option<Group>,
    stats: RouterStats,
}

impl Router {
    /// A router with no servers yet (they join by sending FEEDBACK).
    pub fn new(cfg: RouterConfig) -> Router {
        Router {
            servers: ServerTable::new(
                cfg.max_servers,
                cfg.max_tracked,
                cfg.balance.default_bound(),
                cfg.honour_announced,
            ),
            central: VecDeque::new(),
            cursor: 0,
            rng: Rng::new(cfg.seed),
            sven: cfg.sven.map(Sven::new),
            group: cfg.group.map(Group::new),
            stats: RouterStats::default(),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    /// The servers in join order.
    pub fn servers(&self) -> &ServerTable {
        &self.servers
    }

    /// SVEN's state, if enabled.
    pub fn sven(&self) -> Option<&Sven> {
        self.sven.as_ref()
    }

    /// The replicated group's flow control, if configured.
    pub fn group(&self) -> Option<&Group> {
        self.group.as_ref()
    }

    /// REQ0s in the central queue.
    pub fn held(&self) -> usize {
        self.central.len()
    }

    /// Handles one datagram from `src` of any type; what to send goes to `out`.
    pub fn handle(
        &mut self,
        now_ns: u64,
        src: SocketAddrV4,
        datagram: &[u8],
        out: &mut impl FnMut(Output<'_>),
    ) {
        self.stats.rx += 1;
        let head = match Head::parse(datagram) {
            Ok(h) => h,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if head.msg_type == TYPE_FEEDBACK {
            self.feedback_parsed(now_ns, src, &head, datagram, out);
            return;
        }
        match self.request_parsed(now_ns, src, &head, datagram) {
            Verdict::Forward(server) => out(Output::Forward {
                client: src,
                server,
                datagram,
            }),
            Verdict::Refused(_, message) => out(Output::Drop {
                client: src,
                message,
            }),
            Verdict::Queued | Verdict::Ignored => {}
        }
    }

    /// Handles a burst: FEEDBACKs first, then the rest in arrival order.
    pub fn handle_burst(
        &mut self,
        now_ns: u64,
        burst: &[(SocketAddrV4, &[u8])],
        out: &mut impl FnMut(Output<'_>),
    ) {
        let is_fb = |d: &[u8]| Head::parse(d).is_ok_and(|h| h.msg_type == TYPE_FEEDBACK);
        for (src, d) in burst.iter().filter(|(_, d)| is_fb(d)) {
            self.handle(now_ns, *src, d, out);
        }
        for (src, d) in burst.iter().filter(|(_, d)| !is_fb(d)) {
            self.handle(now_ns, *src, d, out);
        }
    }

    /// Decides where a REQ0 from `client` goes. Anything else that reaches this call is
    /// counted and ignored.
    #[inline]
    pub fn request(&mut self, now_ns: u64, client: SocketAddrV4, datagram: &[u8]) -> Verdict {
        self.stats.rx += 1;
        match Head::parse(datagram) {
            Ok(h) => self.request_parsed(now_ns, client, &h, datagram),
            Err(_) => {
                self.stats.malformed += 1;
                Verdict::Ignored
            }
        }
    }

    fn request_parsed(
        &mut self,
        now_ns: u64,
        client: SocketAddrV4,
        head: &Head,
        datagram: &[u8],
    ) -> Verdict {
        if head.msg_type != TYPE_REQUEST {
            self.stats.unexpected_type += 1;
            return Verdict::Ignored;
        }
        if !head.is_req0() {
            self.stats.not_req0 += 1;
            return Verdict::Ignored;
        }
        self.stats.req0 += 1;
        let class = head.policy;
        if let Some(s) = self.sven.as_mut() {
            s.tick(now_ns);
            if !s.admit(class, &mut self.rng) {
                return self.refuse(Refusal::Sven, head.rid);
            }
        }
        if matches!(class, POLICY_REPLICATED | POLICY_REPLICATED_NO_SE)
            && let Some(g) = self.group.as_mut()
        {
            if !g.admit(client, head.rid, now_ns) {
                return self.refuse(Refusal::GroupFull, head.rid);
            }
            self.stats.forwarded += 1;
            return Verdict::Forward(g.config().addr);
        }
        let target = match class {
            POLICY_FIXED => self.master(),
            POLICY_LB => self.pick(),
            _ => {
                self.stats.policy_fallback += 1;
                self.pick()
            }
        };
        let o = Outstanding {
            client,
            rid: head.rid,
            class,
            arrived_ns: now_ns,
            sent_ns: now_ns,
        };
        match target {
            Some(i) => Verdict::Forward(self.assign(i, o)),
            None if self.cfg.balance.is_bounded() && !self.servers.as_slice().is_empty() => {
                if self.central.len() >= self.cfg.queue_cap {
                    return self.refuse(Refusal::QueueFull, head.rid);
                }
                self.stats.queued += 1;
                self.central.push_back(Held {
                    client,
                    rid: head.rid,
                    class,
                    arrived_ns: now_ns,
                    datagram: datagram.to_vec(),
                });
                Verdict::Queued
            }
            None => self.refuse(Refusal::NoServer, head.rid),
        }
    }

    fn refuse(&mut self, why: Refusal, rid: u16) -> Verdict {
        self.stats.count_refusal(why);
        Verdict::Refused(why, drop_message(rid))
    }

    #[inline]
    fn pick(&mut self) -> Option<usize> {
        policy::pick(
            self.cfg.balance,
            self.servers.as_slice(),
            &mut self.cursor,
            &mut self.rng,
        )
    }

    fn master(&self) -> Option<usize> {
        let live = self.servers.as_slice();
        self.cfg
            .master
            .and_then(|m| self.servers.find(m))
            .or_else(|| {
                (0..live.len())
                    .filter(|&i| live[i].bound() > 0)
                    .min_by_key(|&i| (live[i].addr().ip().octets(), live[i].addr().port()))
            })
    }

    #[inline]
    fn assign(&mut self, i: usize, o: Outstanding) -> SocketAddrV4 {
        self.stats.forwarded += 1;
        if self.servers.assign(i, o).is_some() {
            self.stats.untracked += 1;
        }
        self.servers.as_slice()[i].addr()
    }

    /// Handles a FEEDBACK datagram from server `src`; REQ0s it releases go to `out`.
    pub fn feedback(
        &mut self,
        now_ns: u64,
        src: SocketAddrV4,
        datagram: &[u8],
        out: &mut impl FnMut(Output<'_>),
    ) {
        self.stats.rx += 1;
        match Head::parse(datagram) {
            Ok(h) if h.msg_type == TYPE_FEEDBACK => {
                self.feedback_parsed(now_ns, src, &h, datagram, out)
            }
            Ok(_) => self.stats.unexpected_type += 1,
            Err(_) => self.stats.malformed += 1,
        }
    }

    fn feedback_parsed(
        &mut self,
        now_ns: u64,
        src: SocketAddrV4,
        head: &Head,
        datagram: &[u8],
        out: &mut impl FnMut(Output<'_>),
    ) {
        self.stats.feedback += 1;
        let Ok(fb) = Feedback::parse(&datagram[head.payload_at..]) else {
            self.stats.malformed_feedback += 1;
            return;
        };
        if let Some(g) = self.group.as_mut()
            && !fb.is_heartbeat()
        {
            if g.complete(fb.client, fb.rid) {
                return;
            }
            // Not the group's: a member's FEEDBACK, or a late one nobody waits for (which
            // must not make a replica a member).
            if self.servers.find(src).is_none() {
                self.stats.feedback_unmatched += 1;
                return;
            }
        }
        let i = match self.admit_server(src, now_ns) {
            Ok(i) => i,
            Err(_) => {
                self.stats.feedback_refused += 1;
                return;
            }
        };
        let c = self.servers.complete(i, &fb, now_ns);
        match (c.matched, fb.is_heartbeat()) {
            (Some(o), _) => {
                if let Some(s) = self.sven.as_mut() {
                    s.record(o.class, now_ns.saturating_sub(o.arrived_ns));
                }
            }
            (None, true) => self.stats.heartbeats += 1,
            (None, false) => self.stats.feedback_unmatched += 1,
        }
        self.stats.slots_reclaimed += u64::from(c.reclaimed);
        if let Some(s) = self.sven.as_mut() {
            s.tick(now_ns);
        }
        self.release(now_ns, out);
    }

    fn admit_server(&mut self, src: SocketAddrV4, now_ns: u64) -> Result<usize, JoinRefused> {
        if let Some((net, prefix)) = self.cfg.server_net {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            if u32::from(*src.ip()) & mask != u32::from(net) & mask {
                return Err(JoinRefused::NotAllowed);
            }
        }
        let (i, joined) = self.servers.find_or_join(src, now_ns)?;
        if joined {
            self.stats.servers_joined += 1;
        }
        Ok(i)
    }

    /// Sends held REQ0s, oldest first, while some server has a free slot.
    fn release(&mut self, now_ns: u64, out: &mut impl FnMut(Output<'_>)) {
        while !self.central.is_empty() {
            let Some(i) = self.pick() else { break };
            let Some(h) = self.central.pop_front() else {
                break;
            };
            let server = self.assign(
                i,
                Outstanding {
                    client: h.client,
                    rid: h.rid,
                    class: h.class,
                    arrived_ns: h.arrived_ns,
                    sent_ns: now_ns,
                },
            );
            out(Output::Forward {
                client: h.client,
                server,
                datagram: &h.datagram,
            });
        }
    }

    /// Timers: SVEN's control loop, slot and queue timeouts, silent servers. Call it
    /// regularly (every poll of the caller's loop is fine; it costs a few comparisons).
    pub fn poll(&mut self, now_ns: u64, out: &mut impl FnMut(Output<'_>)) {
        let Router {
            servers,
            sven,
            stats,
            cfg,
            ..
        } = self;
        if let Some(s) = sven.as_mut() {
            s.tick(now_ns);
        }
        let slot_deadline = now_ns.saturating_sub(cfg.slot_timeout_ns);
        if let Some(g) = self.group.as_mut() {
            stats.slots_expired += g.expire(slot_deadline) as u64;
        }
        servers.expire(slot_deadline, |o| {
            stats.slots_expired += 1;
            if let Some(s) = sven.as_mut() {
                s.record_lost(o.class);
            }
        });
        let silent = now_ns.saturating_sub(cfg.server_timeout_ns);
        servers.remove_silent(silent, |s| {
            stats.servers_removed += 1;
            stats.lost_with_server += s.outstanding() as u64;
        });
        // Freed slots go to held REQ0s first; only those still held then may time out.
        self.release(now_ns, out);
        let Router {
            servers,
            stats,
            cfg,
            central,
            ..
        } = self;
        let queue_deadline = now_ns.saturating_sub(cfg.queue_timeout_ns);
        while central
            .front()
            .is_some_and(|h| h.arrived_ns < queue_deadline)
        {
            if let Some(h) = central.pop_front() {
                stats.refused_queue_timeout += 1;
                out(Output::Drop {
                    client: h.client,
                    message: drop_message(h.rid),
                });
            }
        }
        // Held REQ0s with no server left are refused rather than kept for ever.
        if servers.as_slice().is_empty() {
            while let Some(h) = central.pop_front() {
                stats.refused_no_server += 1;
                out(Output::Drop {
                    client: h.client,
                    message: drop_message(h.rid),
                });
            }
        }
    }
}
