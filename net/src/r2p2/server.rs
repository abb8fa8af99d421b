//! The R2P2 server: takes request packets, ACKs the REQ0 of multi-packet requests, reassembles
//! them keyed by (client IP, client port, rid), hands complete requests to the application
//! (single-packet ones zero-copy, borrowed from the datagram), sends replies (one or many
//! packets) straight to the client and a FEEDBACK to the router, refuses requests with DROP
//! through an application flow-control hook, and garbage-collects partial requests that made
//! no progress for `gc_rtos` retransmission timeouts.

use super::header::{HEADER_LEN, Header, MsgType, Policy};
use super::message::{Added, MAX_PAYLOAD, Packetizer, Reassembly};
use super::{Clock, R2p2Stats, SendFailed, Transport, send_packet};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::ops::Deref;

/// Payload of an ACK.
pub const ACK_PAYLOAD: &[u8] = b"ACK";
/// Payload of a DROP.
pub const DROP_PAYLOAD: &[u8] = b"DROP";

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where FEEDBACK goes after each reply (None: no router).
    pub router: Option<SocketAddrV4>,
    /// The JBSQ bound "n" announced in FEEDBACK (extension field).
    pub jbsq_n: u32,
    /// Retransmission timeout, ns (thesis 9.2.1: milliseconds).
    pub rto_ns: u64,
    /// Partial requests idle for this many RTOs are dropped.
    pub gc_rtos: u32,
    /// Largest request or reply, in packets.
    pub max_packets: u16,
    /// Most partial requests held at once; REQ0s beyond are answered with DROP.
    pub max_partial: usize,
    /// **Extension**: SACK for stalled partial requests, and keep multi-packet replies for
    /// `gc_rtos` RTOs to answer the client's SACK. Off by default (a reference peer does not
    /// know SACK).
    pub sack: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            router: None,
            jbsq_n: 1,
            rto_ns: 1_000_000,
            gc_rtos: 5,
            max_packets: 1024,
            max_partial: 4096,
            sack: false,
        }
    }
}

/// Who sent a request and under which id: what a reply needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestMeta {
    /// The client's address (the source of REQ0; a router keeps it).
    pub client: SocketAddrV4,
    /// The client's request id.
    pub rid: u16,
    /// The policy the client asked for.
    pub policy: Policy,
}

/// A request's payload: borrowed from the datagram when it was one packet, reassembled
/// otherwise.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Points into the received packet buffer (zero copy).
    Borrowed(&'a [u8]),
    /// Reassembled from several packets.
    Owned(Vec<u8>),
}

impl Deref for Payload<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        }
    }
}

/// A complete request for the application (`req_recv`).
#[derive(Debug, PartialEq, Eq)]
pub struct IncomingRequest<'a> {
    /// Where the reply goes.
    pub meta: RequestMeta,
    /// The whole request.
    pub payload: Payload<'a>,
}

/// The application's admission decision for a new request (true: take it, false: DROP).
pub type FlowControl = Box<dyn FnMut(&RequestMeta) -> bool + Send>;

#[derive(Debug)]
struct Partial {
    policy: Policy,
    last_progress: u64,
    last_sack: u64,
    msg: Reassembly,
}

/// A multi-packet reply kept for SACK (extension).
#[derive(Debug)]
struct SentReply {
    at: u64,
    reply: Vec<u8>,
}

/// An R2P2 server on one UDP port.
pub struct Server<T, C> {
    transport: T,
    clock: C,
    cfg: ServerConfig,
    partial: BTreeMap<(SocketAddrV4, u16), Partial>,
    sent: BTreeMap<(SocketAddrV4, u16), SentReply>,
    flow: Option<FlowControl>,
    served: u64,
    stats: R2p2Stats,
}

impl<T: Transport, C: Clock> Server<T, C> {
    /// A server replying through `transport`.
    pub fn new(transport: T, clock: C, cfg: ServerConfig) -> Self {
        Server {
            transport,
            clock,
            cfg,
            partial: BTreeMap::new(),
            sent: BTreeMap::new(),
            flow: None,
            served: 0,
            stats: R2p2Stats::default(),
        }
    }

    /// Installs the flow-control hook, asked once per new request (at its first packet).
    pub fn set_flow_control(&mut self, hook: FlowControl) {
        self.flow = Some(hook);
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Counters.
    pub fn stats(&self) -> &R2p2Stats {
        &self.stats
    }

    /// Replies sent so far (the FEEDBACK `served` count).
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Partial (multi-packet, incomplete) requests held.
    pub fn partial_count(&self) -> usize {
        self.partial.len()
    }

    fn send_single(
        &mut self,
        dst: SocketAddrV4,
        ty: MsgType,
        policy: Policy,
        rid: u16,
        body: &[u8],
    ) {
        let h = Header::single(ty, policy, rid);
        // A failed control packet is counted in tx_errors; the peer's timer covers it.
        let _ = send_packet(&mut self.transport, &mut self.stats, dst, &h, body);
    }

    fn admit(&mut self, meta: &RequestMeta) -> bool {
        let ok = self.flow.as_mut().is_none_or(|f| f(meta));
        if !ok {
            self.drop_request(meta);
        }
        ok
    }

    /// Refuses a request: sends DROP to its client.
    pub fn drop_request(&mut self, meta: &RequestMeta) {
        self.stats.drops += 1;
        self.send_single(
            meta.client,
            MsgType::Drop,
            Policy::FixedRoute,
            meta.rid,
            DROP_PAYLOAD,
        );
    }

    /// Handles one datagram from `src`; returns a request when one is complete.
    pub fn handle_datagram<'a>(
        &mut self,
        src: SocketAddrV4,
        dgram: &'a [u8],
    ) -> Option<IncomingRequest<'a>> {
        self.stats.rx_packets += 1;
        let (h, payload) = match Header::parse(dgram) {
            Ok(v) => v,
            Err(e) => {
                self.stats.count_header_error(e);
                return None;
            }
        };
        if h.msg_type == MsgType::Sack && self.cfg.sack {
            self.answer_sack(src, h.rid, payload);
            return None;
        }
        if h.msg_type != MsgType::Request {
            self.stats.unexpected += 1;
            return None;
        }
        let meta = RequestMeta {
            client: src,
            rid: h.rid,
            policy: h.policy,
        };
        let key = (src, h.rid);
        if h.is_first() && h.is_last() && h.p_order == 1 {
            if self.partial.contains_key(&key) {
                self.stats.inconsistent += 1;
                return None;
            }
            if !self.admit(&meta) {
                return None;
            }
            self.stats.completed += 1;
            return Some(IncomingRequest {
                meta,
                payload: Payload::Borrowed(payload),
            });
        }
        let now = self.clock.now_ns();
        if h.is_first() {
            match self.partial.get(&key) {
                // A repeated REQ0: the ACK may have been lost, send it again.
                Some(_) => {
                    self.stats.duplicates += 1;
                    self.send_ack(src, h.rid);
                    return None;
                }
                None => {
                    if h.p_order < 2 || h.p_order > self.cfg.max_packets || h.is_last() {
                        self.stats.inconsistent += 1;
                        return None;
                    }
                    if self.partial.len() >= self.cfg.max_partial {
                        self.drop_request(&meta);
                        return None;
                    }
                    if !self.admit(&meta) {
                        return None;
                    }
                    self.partial.insert(
                        key,
                        Partial {
                            policy: h.policy,
                            last_progress: now,
                            last_sack: now,
                            msg: Reassembly::default(),
                        },
                    );
                    self.send_ack(src, h.rid);
                }
            }
        }
        let Some(p) = self.partial.get_mut(&key) else {
            self.stats.unexpected += 1;
            return None;
        };
        match p.msg.add(&h, payload, self.cfg.max_packets) {
            Added::Stored => {
                p.last_progress = now;
                None
            }
            Added::Duplicate => {
                self.stats.duplicates += 1;
                None
            }
            Added::Inconsistent => {
                self.stats.inconsistent += 1;
                None
            }
            Added::Complete => {
                let p = self.partial.remove(&key)?;
                self.stats.completed += 1;
                Some(IncomingRequest {
                    meta: RequestMeta {
                        policy: p.policy,
                        ..meta
                    },
                    payload: Payload::Owned(p.msg.into_payload()),
                })
            }
        }
    }

    fn send_ack(&mut self, client: SocketAddrV4, rid: u16) {
        self.stats.acks_sent += 1;
        self.send_single(client, MsgType::Ack, Policy::FixedRoute, rid, ACK_PAYLOAD);
    }

    /// Sends `reply` to the client of `meta` (as many packets as it takes, 1464 bytes each),
    /// then FEEDBACK to the router if one is configured.
    pub fn send_response(&mut self, meta: &RequestMeta, reply: &[u8]) -> Result<(), SendFailed> {
        let plan = Packetizer::new(
            MsgType::Response,
            Policy::FixedRoute,
            meta.rid,
            reply.len(),
            self.cfg.max_packets,
        )
        .ok_or(SendFailed)?;
        let result = self.send_reply_packets(meta.client, &plan, reply, 0..plan.count());
        if self.cfg.sack && plan.count() > 1 {
            let at = self.clock.now_ns();
            let reply = reply.to_vec();
            self.sent
                .insert((meta.client, meta.rid), SentReply { at, reply });
        }
        self.served += 1;
        self.send_feedback(meta);
        result
    }

    /// Zero-copy reply for the common case: when `len` <= [`MAX_PAYLOAD`] and `buf` holds the
    /// reply payload at `buf[8..8 + len]`, writes the RESPONSE header into `buf[..8]`, sends
    /// FEEDBACK if a router is configured, and returns `8 + len`: the datagram to send back to
    /// the request's source from the port it came to. None (nothing done) if the reply takes
    /// several packets or `buf` is too short: use [`Self::send_response`].
    pub fn response_in_place(
        &mut self,
        meta: &RequestMeta,
        buf: &mut [u8],
        len: usize,
    ) -> Option<usize> {
        if len > MAX_PAYLOAD || buf.len() < HEADER_LEN + len {
            return None;
        }
        let h = Header::single(MsgType::Response, Policy::FixedRoute, meta.rid);
        buf.get_mut(..HEADER_LEN)?.copy_from_slice(&h.encode());
        self.stats.tx_packets += 1;
        self.served += 1;
        self.send_feedback(meta);
        Some(HEADER_LEN + len)
    }

    fn send_feedback(&mut self, meta: &RequestMeta) {
        if let Some(router) = self.cfg.router {
            self.stats.feedback_sent += 1;
            let body = feedback_body(meta, self.cfg.jbsq_n, self.served);
            self.send_single(router, MsgType::Feedback, Policy::LbRoute, meta.rid, &body);
        }
    }

    /// Sends a heartbeat to the router (if one is configured): a FEEDBACK that completes no
    /// request (client `0.0.0.0:0`, rid 0) carrying the extension's bound n and served count.
    /// A router adds the sender (the datagram's source IP and port: send it from the port
    /// requests should reach) to its server set, keeps it a member while it is idle, and
    /// takes a new n from it (n = 0: send nothing new). Returns whether one was sent.
    pub fn heartbeat(&mut self) -> bool {
        let Some(router) = self.cfg.router else {
            return false;
        };
        self.stats.feedback_sent += 1;
        let body = heartbeat_body(self.cfg.jbsq_n, self.served);
        self.send_single(router, MsgType::Feedback, Policy::LbRoute, 0, &body);
        true
    }

    fn send_reply_packets(
        &mut self,
        client: SocketAddrV4,
        plan: &Packetizer,
        reply: &[u8],
        indices: impl IntoIterator<Item = u16>,
    ) -> Result<(), SendFailed> {
        for i in indices {
            let Some((h, r)) = plan.packet(i) else {
                continue;
            };
            let part = reply.get(r).unwrap_or_default();
            send_packet(&mut self.transport, &mut self.stats, client, &h, part)?;
        }
        Ok(())
    }

    /// SACK extension: resends the reply packets a client asks for.
    fn answer_sack(&mut self, client: SocketAddrV4, rid: u16, body: &[u8]) {
        let Some(mut sent) = self.sent.remove(&(client, rid)) else {
            self.stats.unexpected += 1;
            return;
        };
        let plan = Packetizer::new(
            MsgType::Response,
            Policy::FixedRoute,
            rid,
            sent.reply.len(),
            u16::MAX,
        );
        match (
            plan,
            super::sack::wanted(body, plan.map_or(0, |p| p.count())),
        ) {
            (Some(plan), Some(w)) => {
                let _ = self.send_reply_packets(client, &plan, &sent.reply, w);
            }
            _ => self.stats.inconsistent += 1,
        }
        // The client is still asking: keep the reply for another `gc_rtos` RTOs.
        sent.at = self.clock.now_ns();
        self.sent.insert((client, rid), sent);
    }

    /// Drops partial requests (and, with SACK, kept replies) idle for `gc_rtos` RTOs; with
    /// SACK, asks clients for the missing packets of partial requests stalled for an RTO.
    pub fn poll_timers(&mut self) {
        if self.partial.is_empty() && self.sent.is_empty() {
            return;
        }
        let now = self.clock.now_ns();
        let rto = self.cfg.rto_ns;
        let limit = rto.saturating_mul(u64::from(self.cfg.gc_rtos));
        let before = self.partial.len();
        self.partial
            .retain(|_, p| now.saturating_sub(p.last_progress) < limit);
        self.stats.gc_messages += (before - self.partial.len()) as u64;
        if !self.cfg.sack {
            return;
        }
        self.sent.retain(|_, s| now.saturating_sub(s.at) < limit);
        let mut sacks = Vec::new();
        for (&(client, rid), p) in self.partial.iter_mut() {
            if now.saturating_sub(p.last_progress.max(p.last_sack)) >= rto {
                p.last_sack = now;
                let tail = p.msg.total().is_none().then(|| p.msg.known_len());
                sacks.push((client, rid, super::sack::encode(tail, p.msg.missing())));
            }
        }
        for (client, rid, body) in sacks {
            self.send_single(client, MsgType::Sack, Policy::FixedRoute, rid, &body);
        }
    }
}

/// Length of a FEEDBACK body: reference part (8) + extension (12).
pub const FEEDBACK_BODY_LEN: usize = 20;

/// The FEEDBACK body for request `meta`: `u16 rid, u16 client port, u32 client IP` (reference,
/// big-endian) then **(ext)** `u32 n, u64 served` (big-endian).
pub fn feedback_body(meta: &RequestMeta, n: u32, served: u64) -> [u8; FEEDBACK_BODY_LEN] {
    let mut b = [0u8; FEEDBACK_BODY_LEN];
    b[0..2].copy_from_slice(&meta.rid.to_be_bytes());
    b[2..4].copy_from_slice(&meta.client.port().to_be_bytes());
    b[4..8].copy_from_slice(&meta.client.ip().octets());
    b[8..12].copy_from_slice(&n.to_be_bytes());
    b[12..20].copy_from_slice(&served.to_be_bytes());
    b
}

/// The body of a heartbeat FEEDBACK: the reference fields name no request (rid 0, client
/// `0.0.0.0:0`), then **(ext)** `u32 n, u64 served` as in [`feedback_body`].
pub fn heartbeat_body(n: u32, served: u64) -> [u8; FEEDBACK_BODY_LEN] {
    let none = RequestMeta {
        client: SocketAddrV4::new(core::net::Ipv4Addr::UNSPECIFIED, 0),
        rid: 0,
        policy: Policy::LbRoute,
    };
    feedback_body(&none, n, served)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[derive(Default)]
    struct Rec(Vec<(SocketAddrV4, Vec<u8>)>);
    impl Transport for &mut Rec {
        fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
            self.0.push((dst, parts.concat()));
            Ok(())
        }
    }
    struct Zero;
    impl Clock for Zero {
        fn now_ns(&self) -> u64 {
            0
        }
    }

    #[test]
    fn heartbeat_is_a_feedback_naming_no_request() {
        let mut rec = Rec::default();
        let router: SocketAddrV4 = "10.0.0.1:9000".parse().unwrap();
        let cfg = ServerConfig {
            router: Some(router),
            jbsq_n: 3,
            ..ServerConfig::default()
        };
        let mut s = Server::new(&mut rec, Zero, cfg);
        assert!(s.heartbeat());
        drop(s);
        let mut want = vec![0xcc, 8, 0x20, 0xc0, 0, 0, 0, 1];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        want.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(rec.0, [(router, want)]);
        let mut none = Rec::default();
        assert!(!Server::new(&mut none, Zero, ServerConfig::default()).heartbeat());
        assert!(none.0.is_empty());
    }
}
