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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            first_rid: 0,
            max_packets: 1024,
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
    /// The whole request, kept only while the rest still has to be sent.
    request: Vec<u8>,
    reply: Reassembly,
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
        let deadline = self.clock.now_ns().saturating_add(timeout_ns);
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
                request: if multi { payload.to_vec() } else { Vec::new() },
                reply: Reassembly::default(),
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
        let Some(p) = self.pending.get_mut(&h.rid) else {
            self.stats.unexpected += 1;
            return;
        };
        match h.msg_type {
            MsgType::Ack if p.state == State::WaitAck => {
                p.state = State::WaitResponse;
                let request = core::mem::take(&mut p.request);
                self.send_rest(src, h.rid, &request);
            }
            MsgType::Response if p.state == State::WaitResponse => {
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

    /// Sends packets 1.. of request `rid` to `server` (the source of its ACK).
    fn send_rest(&mut self, server: SocketAddrV4, rid: u16, request: &[u8]) {
        let policy = self.pending.get(&rid).map_or(Policy::LbRoute, |p| p.policy);
        let Some(plan) = Packetizer::new(
            MsgType::Request,
            policy,
            rid,
            request.len(),
            self.cfg.max_packets,
        ) else {
            return;
        };
        for i in 1..plan.count() {
            let Some((h, r)) = plan.packet(i) else { break };
            let part = request.get(r).unwrap_or_default();
            if send_packet(&mut self.transport, &mut self.stats, server, &h, part).is_err() {
                return self.finish(rid, Outcome::SendFailed);
            }
        }
    }

    /// Expires request timers; call it whenever the clock may have passed
    /// [`Self::next_deadline`].
    pub fn poll_timers(&mut self) {
        let now = self.clock.now_ns();
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
