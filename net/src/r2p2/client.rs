//! The R2P2 client: sends requests (one packet, or REQ0 + wait for ACK + the rest straight to
//! the ACK's source) and delivers exactly one [`Completion`] per request: the reassembled
//! reply, a timeout (the request's own timer), or an error (DROP received, send failure).
//!
//! rids are scoped to the local port (one [`Client`] per socket); a rid is never reused while
//! a request with it is in flight.

use super::header::{Header, MsgType, Policy};
use super::message::{Added, Packetizer, Reassembly};
use super::{Clock, R2p2Stats, Transport, send_packet};
use alloc::collections::{BTreeMap, BinaryHeap, VecDeque};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::SocketAddrV4;

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The rid of the first request (later ones count up, skipping rids in flight).
    pub first_rid: u16,
    /// Largest request or reply, in packets (the reference caps below 255; the header allows
    /// 65,535).
    pub max_packets: u16,
    /// **Extension**: recover lost packets of multi-packet messages (resend an unanswered
    /// REQ0, send SACK for a stalled reply, answer a server's SACK). Off by default: a
    /// reference peer does not know SACK.
    pub sack: bool,
    /// Retransmission timeout for the SACK extension, ns.
    pub rto_ns: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            first_rid: 0,
            max_packets: 1024,
            sack: false,
            rto_ns: 1_000_000,
        }
    }
}

/// Identifies one request: its rid and a sequence number unique for the client's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestHandle {
    /// The request id on the wire.
    pub rid: u16,
    /// Sequence number (rids repeat, this does not).
    pub seq: u64,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The whole reply (`req_success`).
    Success(Vec<u8>),
    /// The request's timer expired first (`req_timeout`).
    Timeout,
    /// The router or server answered DROP (`req_error`).
    Dropped,
    /// The transport could not send a packet of the request (`req_error`).
    SendFailed,
}

/// The one completion of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Which request.
    pub handle: RequestHandle,
    /// The caller's context given to [`Client::send_request`].
    pub ctx: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// Why a request could not even start (no completion follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// More than `max_packets` packets.
    TooLarge,
    /// All 65,536 rids are in flight.
    NoFreeRid,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// REQ0 sent; the rest waits for the ACK.
    WaitAck,
    /// Every request packet sent.
    WaitResponse,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    ctx: u64,
    policy: Policy,
    state: State,
    /// Where REQ0 went.
    dest: SocketAddrV4,
    /// The whole request, kept for multi-packet requests (to send the rest, and to answer SACK).
    request: Vec<u8>,
    reply: Reassembly,
    /// Where the reply comes from (its first packet's source).
    replier: Option<SocketAddrV4>,
    /// The server that ACKed REQ0 (multi-packet requests).
    server: Option<SocketAddrV4>,
    /// Last time the request made progress or we asked for recovery (SACK extension).
    last_progress: u64,
}

/// An R2P2 client bound to one local port.
pub struct Client<T, C> {
    transport: T,
    clock: C,
    cfg: ClientConfig,
    next_rid: u16,
    next_seq: u64,
    pending: BTreeMap<u16, Pending>,
    timers: BinaryHeap<Reverse<(u64, u16, u64)>>,
    done: VecDeque<Completion>,
    stats: R2p2Stats,
    next_sweep: u64,
}

impl<T: Transport, C: Clock> Client<T, C> {
    /// A client sending through `transport`.
    pub fn new(transport: T, clock: C, cfg: ClientConfig) -> Self {
        Client {
            transport,
            clock,
            next_rid: cfg.first_rid,
            cfg,
            next_seq: 0,
            pending: BTreeMap::new(),
            timers: BinaryHeap::new(),
            done: VecDeque::new(),
            stats: R2p2Stats::default(),
            next_sweep: 0,
        }
    }

    /// The transport (e.g. to read datagrams from the socket it wraps).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Counters.
    pub fn stats(&self) -> &R2p2Stats {
        &self.stats
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The earliest request deadline, if any (when to call [`Self::poll_timers`] next).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((d, _, _))| *d)
    }

    fn alloc_rid(&mut self) -> Option<u16> {
        for _ in 0..=u16::MAX {
            let rid = self.next_rid;
            self.next_rid = self.next_rid.wrapping_add(1);
            if !self.pending.contains_key(&rid) {
                return Some(rid);
            }
        }
        None
    }

    /// Sends a request to `dest` (a server or a router) with a timer of `timeout_ns`.
    /// Exactly one [`Completion`] carrying `ctx` follows, from [`Self::next_completion`].
    pub fn send_request(
        &mut self,
        dest: SocketAddrV4,
        payload: &[u8],
        policy: Policy,
        timeout_ns: u64,
        ctx: u64,
    ) -> Result<RequestHandle, ClientError> {
        if self.pending.len() > usize::from(u16::MAX) {
            return Err(ClientError::NoFreeRid);
        }
        let rid = self.alloc_rid().ok_or(ClientError::NoFreeRid)?;
        let plan = Packetizer::new(
            MsgType::Request,
            policy,
            rid,
            payload.len(),
            self.cfg.max_packets,
        )
        .ok_or(ClientError::TooLarge)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let handle = RequestHandle { rid, seq };
        let (h0, r0) = plan.packet(0).ok_or(ClientError::TooLarge)?;
        let multi = plan.count() > 1;
        let sent = send_packet(
            &mut self.transport,
            &mut self.stats,
            dest,
            &h0,
            payload.get(r0).unwrap_or_default(),
        );
        if sent.is_err() {
            self.finish_now(handle, ctx, Outcome::SendFailed);
            return Ok(handle);
        }
        let now = self.clock.now_ns();
        let deadline = now.saturating_add(timeout_ns);
        self.timers.push(Reverse((deadline, rid, seq)));
        self.pending.insert(
            rid,
            Pending {
                seq,
                ctx,
                policy,
                state: if multi {
                    State::WaitAck
                } else {
                    State::WaitResponse
                },
                dest,
                request: if multi { payload.to_vec() } else { Vec::new() },
                reply: Reassembly::default(),
                replier: None,
                server: None,
                last_progress: now,
            },
        );
        Ok(handle)
    }

    fn finish_now(&mut self, handle: RequestHandle, ctx: u64, outcome: Outcome) {
        self.stats.completed += 1;
        self.done.push_back(Completion {
            handle,
            ctx,
            outcome,
        });
    }

    fn finish(&mut self, rid: u16, outcome: Outcome) {
        if let Some(p) = self.pending.remove(&rid) {
            let handle = RequestHandle { rid, seq: p.seq };
            self.finish_now(handle, p.ctx, outcome);
        }
    }

    /// Handles one datagram received on the client's socket from `src`.
    pub fn handle_datagram(&mut self, src: SocketAddrV4, dgram: &[u8]) {
        self.stats.rx_packets += 1;
        let (h, payload) = match Header::parse(dgram) {
            Ok(v) => v,
            Err(e) => return self.stats.count_header_error(e),
        };
        let now = self.clock.now_ns();
        let Some(p) = self.pending.get_mut(&h.rid) else {
            self.stats.unexpected += 1;
            return;
        };
        match h.msg_type {
            MsgType::Ack if p.state == State::WaitAck => {
                p.state = State::WaitResponse;
                p.last_progress = now;
                p.server = Some(src);
                let request = core::mem::take(&mut p.request);
                let count = self.packet_count(h.rid, &request);
                self.send_packets(src, h.rid, &request, 1..count);
                if let Some(p) = self.pending.get_mut(&h.rid) {
                    p.request = request;
                }
            }
            MsgType::Sack
                if self.cfg.sack && p.state == State::WaitResponse && !p.request.is_empty() =>
            {
                let request = core::mem::take(&mut p.request);
                let count = self.packet_count(h.rid, &request);
                match super::sack::wanted(payload, count) {
                    Some(w) => self.send_packets(src, h.rid, &request, w),
                    None => self.stats.inconsistent += 1,
                }
                if let Some(p) = self.pending.get_mut(&h.rid) {
                    p.request = request;
                }
            }
            MsgType::Response if p.state == State::WaitResponse => {
                p.replier.get_or_insert(src);
                p.last_progress = now;
                if h.is_first() && h.is_last() && h.p_order == 1 && p.reply.received() == 0 {
                    return self.finish(h.rid, Outcome::Success(payload.to_vec()));
                }
                match p.reply.add(&h, payload, self.cfg.max_packets) {
                    Added::Stored => {}
                    Added::Duplicate => self.stats.duplicates += 1,
                    Added::Inconsistent => self.stats.inconsistent += 1,
                    Added::Complete => {
                        let reply = core::mem::take(&mut p.reply).into_payload();
                        self.finish(h.rid, Outcome::Success(reply));
                    }
                }
            }
            MsgType::Drop => {
                self.stats.drops += 1;
                self.finish(h.rid, Outcome::Dropped);
            }
            _ => self.stats.unexpected += 1,
        }
    }

    fn packet_count(&self, rid: u16, request: &[u8]) -> u16 {
        let policy = self.pending.get(&rid).map_or(Policy::LbRoute, |p| p.policy);
        Packetizer::new(MsgType::Request, policy, rid, request.len(), u16::MAX)
            .map_or(0, |p| p.count())
    }

    /// Sends packets `indices` of request `rid` to `server` (the source of its ACK or SACK).
    fn send_packets(
        &mut self,
        server: SocketAddrV4,
        rid: u16,
        request: &[u8],
        indices: impl IntoIterator<Item = u16>,
    ) {
        let policy = self.pending.get(&rid).map_or(Policy::LbRoute, |p| p.policy);
        let Some(plan) = Packetizer::new(MsgType::Request, policy, rid, request.len(), u16::MAX)
        else {
            return;
        };
        for i in indices {
            let Some((h, r)) = plan.packet(i) else {
                continue;
            };
            let part = request.get(r).unwrap_or_default();
            if send_packet(&mut self.transport, &mut self.stats, server, &h, part).is_err() {
                return self.finish(rid, Outcome::SendFailed);
            }
        }
    }

    /// SACK extension: resends REQ0 of requests still waiting for their ACK, and asks for the
    /// missing packets of stalled replies, once per RTO.
    fn recover(&mut self, now: u64) {
        if !self.cfg.sack || now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(self.cfg.rto_ns / 2);
        let rto = self.cfg.rto_ns;
        let mut resend_req0 = Vec::new();
        let mut sacks = Vec::new();
        for (&rid, p) in self.pending.iter_mut() {
            if now.saturating_sub(p.last_progress) < rto {
                continue;
            }
            if p.state == State::WaitAck {
                resend_req0.push(rid);
                p.last_progress = now;
            } else if let Some(replier) = p.replier.or(p.server)
                && !p.reply.is_complete()
            {
                // No reply packet yet from the server that ACKed: ask for all of it (it may
                // all have been lost; a server still working ignores this).
                let tail = p.reply.total().is_none().then(|| p.reply.known_len());
                sacks.push((replier, rid, super::sack::encode(tail, p.reply.missing())));
                p.last_progress = now;
            }
        }
        for rid in resend_req0 {
            let Some(p) = self.pending.get_mut(&rid) else {
                continue;
            };
            let (dest, request) = (p.dest, core::mem::take(&mut p.request));
            self.send_packets(dest, rid, &request, [0]);
            if let Some(p) = self.pending.get_mut(&rid) {
                p.request = request;
            }
        }
        for (replier, rid, body) in sacks {
            let h = Header::single(MsgType::Sack, Policy::FixedRoute, rid);
            let _ = send_packet(&mut self.transport, &mut self.stats, replier, &h, &body);
        }
    }

    /// Expires request timers; call it whenever the clock may have passed
    /// [`Self::next_deadline`].
    pub fn poll_timers(&mut self) {
        let now = self.clock.now_ns();
        self.recover(now);
        while let Some(&Reverse((deadline, rid, seq))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            if self.pending.get(&rid).is_some_and(|p| p.seq == seq) {
                self.stats.timeouts += 1;
                self.finish(rid, Outcome::Timeout);
            }
        }
    }

    /// The next finished request, if any.
    pub fn next_completion(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
}
