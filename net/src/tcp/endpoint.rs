//! The per-core TCP endpoint: one smoltcp [`Interface`], a fixed pool of sockets, events.

use super::crab::{Crab, CrabStats, RxVerdict};
use super::device::{FrameQueue, QueueDevice, RxBuf};
use super::park::{FourTuple, ParkTable, segment_key};
use super::slo::{ConnKey, NoBudget, SloConfig, SloEdge, SloStats};
use crate::config::IfConfig;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::socket::tcp::{Socket, SocketBuffer, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};

/// Ethernet header length: smoltcp's MTU for an Ethernet device includes it.
const ETH_HEADER: usize = 14;
/// First local port for active opens.
const EPHEMERAL_FIRST: u16 = 49152;

/// Sizes and options of a [`TcpEndpoint`].
#[derive(Clone, Copy, Debug)]
pub struct TcpConfig {
    /// Port to listen on (0: no listening sockets).
    pub port: u16,
    /// Listening sockets kept armed (each takes one SYN at a time: the accept backlog).
    pub listeners: usize,
    /// Connections open at once, not counting the listeners.
    pub max_conns: usize,
    /// Receive buffer per connection, bytes.
    pub rx_buf: usize,
    /// Send buffer per connection, bytes.
    pub tx_buf: usize,
    /// Nagle's algorithm (off for request/reply traffic).
    pub nagle: bool,
    /// Seed for initial sequence numbers; give each core its own.
    pub seed: u64,
    /// The NIC checks TCP checksums on receive (virtio GUEST_CSUM): frames reach the endpoint
    /// with valid checksums, or, from a sender on the same host, with a partial one that must
    /// not be verified. The driver of the endpoint verifies frames the NIC did not vouch for.
    pub rx_checksum_offloaded: bool,
    /// Park a connection that has been quiet this long (established, nothing unacknowledged):
    /// its socket leaves smoltcp's set, so polls cost nothing for it, and comes back with its
    /// next segment or call. 0: never park. Keep it above smoltcp's 10 ms delayed-ACK timer.
    pub park_after_ms: u32,
    /// CRAB client: active opens offer connection redirection (`crab.rs`) and follow a
    /// SYN-ACK that redirects them to the server that answered.
    pub crab_client: bool,
    /// CRAB server: a SYN redirected by a CRAB load balancer gets its option echoed in the
    /// SYN-ACK (from this address).
    pub crab_server: bool,
    /// A load balancer's VIP this endpoint also serves, direct server return style: segments
    /// to it are accepted and answered from it, and ARP requests for it are ignored (the load
    /// balancer owns it on the wire). What a CRAB server needs for clients that do not speak
    /// CRAB (the load balancer then forwards their frames unchanged but for the MAC).
    pub vip: Option<Ipv4Addr>,
    /// SLO-aware flow control as a server (`slo.rs`): every accepted connection's segments
    /// advertise tokens or silence in the window, from the load the app reports
    /// ([`TcpEndpoint::slo_request`], [`TcpEndpoint::slo_served`]).
    pub slo: Option<SloConfig>,
    /// SLO-aware flow control as a client: the server's window is read as tokens or silence
    /// and [`TcpEndpoint::send_request`] spends them.
    pub slo_client: bool,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            port: 0,
            listeners: 8,
            max_conns: 1024,
            rx_buf: 4096,
            tx_buf: 4096,
            nagle: false,
            seed: 0x5eed,
            rx_checksum_offloaded: false,
            park_after_ms: 50,
            crab_client: false,
            crab_server: false,
            vip: None,
            slo: None,
            slo_client: false,
        }
    }
}

/// A connection of one endpoint: a pool slot and the generation of its current use, so a stale
/// id of a closed connection never reaches the slot's next connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl ConnId {
    /// The pool slot, `0..pool size`: an index for per-connection application state.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

/// What happened during a [`TcpEndpoint::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpEvent {
    /// A connection to our listening port is established.
    Accepted(ConnId),
    /// A connection opened by [`TcpEndpoint::connect`] is established.
    Connected(ConnId),
    /// Bytes arrived: the count since the last `Received` of this connection. Read them with
    /// [`TcpEndpoint::recv`] and release them with [`TcpEndpoint::recv_done`].
    Received(ConnId, usize),
    /// The peer acknowledged this many more bytes of what was sent.
    Sent(ConnId, usize),
    /// The peer closed its side: nothing more will be received; close ours when done.
    PeerClosed(ConnId),
    /// The connection is over (closed both ways, reset or failed to open); its id is now dead.
    Closed(ConnId),
}

/// Counters of one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// `Accepted` events.
    pub accepted: u64,
    /// `Connected` events.
    pub connected: u64,
    /// `Closed` events.
    pub closed: u64,
    /// Retransmitted SYNs of half-open connections, dropped (see the module doc).
    pub dup_syns_dropped: u64,
    /// SYNs dropped because no socket was free to listen.
    pub syns_dropped_pool_full: u64,
    /// Connections parked (taken out of smoltcp's set while quiet), and brought back.
    pub parked: u64,
    /// See `parked`.
    pub unparked: u64,
    /// `poll` calls that had nothing to do (no frame, no call since the last one, no timer
    /// due) and returned at once.
    pub polls_skipped: u64,
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// The id is of a connection that is closed (or never was).
    BadConn,
    /// The connection cannot send (not established or already closed on our side).
    NotOpen,
    /// Every pool slot is in use.
    PoolFull,
    /// `recv_done` released more bytes than were received.
    TooMuch,
    /// SLO flow control: the server gave this connection no token for another request now
    /// (retry after its next window, another connection, or drop the request).
    NoTokens,
    /// SLO flow control: the server asked for silence for this many more ns.
    Silent(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    Listening,
    /// SYN received or sent; `active` for our own `connect`.
    Opening {
        active: bool,
    },
    Open,
    /// `Closed` reported, waiting in TIME-WAIT for smoltcp to let go of the socket.
    Lingering,
}

struct Slot {
    /// The socket's handle while it is in smoltcp's set...
    handle: Option<SocketHandle>,
    /// ... or the socket itself while parked (free slots are parked too).
    parked: Option<Socket<'static>>,
    /// The 4-tuple it is parked under, for an open connection.
    key: Option<FourTuple>,
    /// Last time something happened on it (an event or a call).
    active_at: Instant,
    state: SlotState,
    generation: u32,
    /// Bytes in the receive buffer already reported by `Received`.
    rx_reported: usize,
    /// Bytes in the send buffer (sent or not) not yet acknowledged, as last seen.
    tx_queued: usize,
    peer_closed: bool,
    /// The local port of an active open (0: passive), for CRAB's tables.
    local_port: u16,
    /// The connection's key in the SLO edge, while it has one.
    slo_key: Option<ConnKey>,
}

/// One core's TCP endpoint.
pub struct TcpEndpoint {
    iface: Interface,
    sockets: SocketSet<'static>,
    slots: Vec<Slot>,
    /// Free slots (a stack: recently freed slots are warm in the cache).
    free: Vec<u32>,
    /// Slots not free and not parked, in no particular order (the slots `poll` looks at).
    busy: Vec<u32>,
    /// Open connections parked, by 4-tuple.
    parked: ParkTable,
    /// Entries of smoltcp's set storage (its high-water mark of sockets in the set: smoltcp
    /// reuses free entries but never shrinks, and visits every entry on each poll).
    set_entries: usize,
    park_after: Duration,
    /// Time of the last `poll`.
    now: Instant,
    /// Slots listening.
    listeners: Vec<u32>,
    /// Remote (address, port) of passive half-open connections.
    syn_guard: Vec<(Ipv4Addr, u16)>,
    /// The slot of each `syn_guard` entry.
    guard_slots: Vec<u32>,
    cfg: TcpConfig,
    frame_mtu: usize,
    next_port: u16,
    stats: TcpStats,
    /// A socket was touched (a call, a listener armed) since the last `poll`'s scan: the next
    /// `poll` must look at the sockets even without frames.
    scan_due: bool,
    /// A socket was touched since the last `flush`: the next one must run smoltcp's egress.
    egress_due: bool,
    /// When smoltcp next wants a poll (its timers); None: no timer. Computed by a quiet
    /// `poll` (asking smoltcp walks every socket in the set, too dear for every flush) and
    /// valid while `next_due_fresh`: an egress clears that.
    next_due: Option<Instant>,
    next_due_fresh: bool,
    /// The last `poll` that did the full round.
    last_full: Instant,
    /// Connection redirection (off unless configured).
    crab: Crab,
    /// CRAB's frame under construction (see `device.rs`).
    scratch: Vec<u8>,
    /// SLO-aware flow control (off unless configured).
    slo: SloEdge,
}

/// Longest a `poll` without frames, calls or due timers may be skipped: smoltcp's own
/// maintenance (the neighbour cache) and parking quiet connections run at least this often.
const MAX_SKIP: Duration = Duration::from_millis(1);

/// A smoltcp instant in ns.
fn ns(t: Instant) -> u64 {
    u64::try_from(t.total_micros())
        .unwrap_or(0)
        .saturating_mul(1000)
}

/// The 4-tuple an established socket's segments carry (remote = their source).
fn parked_key(sock: &Socket) -> Option<FourTuple> {
    let (Some(remote), Some(local)) = (sock.remote_endpoint(), sock.local_endpoint()) else {
        return None;
    };
    let IpAddress::Ipv4(ip) = remote.addr;
    Some(FourTuple {
        remote_ip: u32::from(ip),
        remote_port: remote.port,
        local_port: local.port,
    })
}

fn peer_fin_seen(state: State) -> bool {
    matches!(
        state,
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait
    )
}

impl TcpEndpoint {
    /// An endpoint with the address of `ifc`, its whole socket pool allocated now, and
    /// `cfg.listeners` sockets listening on `cfg.port` (if not 0).
    pub fn new<Q: FrameQueue>(
        ifc: &IfConfig,
        cfg: TcpConfig,
        queue: &mut Q,
        now: Instant,
    ) -> TcpEndpoint {
        let frame_mtu = ifc.mtu + ETH_HEADER;
        let mut icfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(ifc.mac.0)));
        icfg.random_seed = cfg.seed;
        let mut crab = match (cfg.crab_client, cfg.crab_server) {
            (true, server) => Crab::client(server),
            (false, true) => Crab::server(),
            (false, false) => Crab::off(),
        };
        crab.set_vip(cfg.vip);
        let mut slo = SloEdge::new(cfg.slo, cfg.slo_client, ns(now));
        let mut scratch = Vec::new();
        let mut dev = QueueDevice {
            queue,
            pending: None,
            crab: &mut crab,
            slo: &mut slo,
            scratch: &mut scratch,
            frame_mtu,
            rx_l4_checksum_offloaded: cfg.rx_checksum_offloaded,
            syn_guard: &[],
            drop_syns: false,
            dup_syns: 0,
            full_syns: 0,
        };
        let mut iface = Interface::new(icfg, &mut dev, now);
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ifc.ip), ifc.prefix_len));
            if let Some(vip) = cfg.vip {
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(vip), 32));
            }
        });
        if let Some(gw) = ifc.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        let listeners = if cfg.port == 0 { 0 } else { cfg.listeners };
        let pool = cfg.max_conns + listeners;
        let sockets = SocketSet::new(Vec::with_capacity(pool));
        let mut slots = Vec::with_capacity(pool);
        for _ in 0..pool {
            let mut sock = Socket::new(
                SocketBuffer::new(vec![0u8; cfg.rx_buf]),
                SocketBuffer::new(vec![0u8; cfg.tx_buf]),
            );
            sock.set_nagle_enabled(cfg.nagle);
            slots.push(Slot {
                handle: None,
                parked: Some(sock),
                key: None,
                active_at: now,
                state: SlotState::Free,
                generation: 0,
                rx_reported: 0,
                tx_queued: 0,
                peer_closed: false,
                local_port: 0,
                slo_key: None,
            });
        }
        let mut ep = TcpEndpoint {
            iface,
            sockets,
            slots,
            free: (0..pool as u32).rev().collect(),
            busy: Vec::with_capacity(pool),
            parked: ParkTable::with_capacity(pool),
            set_entries: 0,
            park_after: Duration::from_millis(u64::from(cfg.park_after_ms)),
            now,
            listeners: Vec::with_capacity(listeners),
            syn_guard: Vec::with_capacity(pool),
            guard_slots: Vec::with_capacity(pool),
            cfg: TcpConfig { listeners, ..cfg },
            frame_mtu,
            next_port: EPHEMERAL_FIRST,
            stats: TcpStats::default(),
            scan_due: true,
            egress_due: true,
            next_due: None,
            next_due_fresh: false,
            last_full: now,
            crab,
            scratch,
            slo,
        };
        ep.rearm();
        ep
    }

    /// CRAB's counters (all zero unless `crab_client`/`crab_server`).
    pub fn crab_stats(&self) -> CrabStats {
        self.crab.stats()
    }

    /// SLO flow control's counters.
    pub fn slo_stats(&self) -> SloStats {
        self.slo.stats()
    }

    /// SLO flow control, server: the highest load the SLO allows by the current estimates.
    pub fn slo_max_load(&self) -> Option<f64> {
        self.slo.control().and_then(|c| c.max_load())
    }

    /// SLO flow control, server: a request arrived on `conn` (spends one of its tokens).
    pub fn slo_request(&mut self, conn: ConnId) {
        if let Some(key) = self.slot_key(conn) {
            self.slo.request(key, ns(self.now));
        }
    }

    /// SLO flow control, server: a request took `service_ns` to serve.
    pub fn slo_served(&mut self, service_ns: u64) {
        self.slo.served(service_ns);
    }

    /// Sends one request: with SLO flow control (`slo_client`) only if the server gave this
    /// connection a token, else at once [`TcpError::NoTokens`] or [`TcpError::Silent`]
    /// (nothing is queued: the app decides to wait, use another connection or drop it).
    /// Without it, [`send`](Self::send).
    pub fn send_request(&mut self, conn: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        if let Some(key) = self.slot_key(conn) {
            match self.slo.take(key, ns(self.now)) {
                Ok(()) => {}
                Err(NoBudget::NoTokens) => return Err(TcpError::NoTokens),
                Err(NoBudget::Silent(left)) => return Err(TcpError::Silent(left)),
            }
        }
        self.send(conn, data)
    }

    fn slot_key(&self, conn: ConnId) -> Option<ConnKey> {
        let s = self.slots.get(conn.slot as usize)?;
        (s.generation == conn.generation)
            .then_some(s.slo_key)
            .flatten()
    }

    /// The server a connection opened by [`connect`](Self::connect) was redirected to by CRAB
    /// (None: not redirected, or not CRAB).
    pub fn redirected_to(&self, conn: ConnId) -> Option<Ipv4Addr> {
        let s = self.slots.get(conn.slot as usize)?;
        if s.generation != conn.generation || s.local_port == 0 {
            return None;
        }
        self.crab.server_of(s.local_port)
    }

    /// Sockets in the pool (connections plus listeners).
    pub fn pool_size(&self) -> usize {
        self.slots.len()
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// Connections open or opening (not counting listeners).
    pub fn connections(&self) -> usize {
        self.busy.len() + self.parked.len() - self.listeners.len()
    }

    /// Sockets in smoltcp's set (what each poll visits): listeners and connections not parked.
    pub fn hot_sockets(&self) -> usize {
        self.busy.len()
    }

    /// Puts slot `slot`'s socket into smoltcp's set if it is parked; its socket.
    fn hot(&mut self, slot: u32) -> &mut Socket<'static> {
        let s = &mut self.slots[slot as usize];
        if let Some(sock) = s.parked.take() {
            s.handle = Some(self.sockets.add(sock));
            self.set_entries = self.set_entries.max(self.busy.len() + 1);
            if let Some(key) = s.key.take() {
                self.parked.remove(key);
                self.busy.push(slot);
                self.stats.unparked += 1;
            }
        }
        s.active_at = self.now;
        self.scan_due = true;
        self.egress_due = true;
        let h = s.handle.expect("a slot's socket is in the set or parked");
        self.sockets.get_mut::<Socket>(h)
    }

    /// Takes slot `slot`'s socket out of smoltcp's set (it must be in it).
    fn park_socket(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if let Some(h) = s.handle.take() {
            s.parked = Some(match self.sockets.remove(h) {
                smoltcp::socket::Socket::Tcp(t) => t,
            });
        }
    }

    /// Bytes queued for sending and not yet acknowledged, over every open connection (a walk
    /// of all of them: for shutdown, not the hot path).
    pub fn unacked_bytes(&self) -> usize {
        self.busy
            .iter()
            .map(|&slot| &self.slots[slot as usize])
            .filter(|s| s.state == SlotState::Open)
            .filter_map(|s| s.handle)
            .map(|h| self.sockets.get::<Socket>(h).send_queue())
            .sum()
    }

    fn rearm(&mut self) {
        while self.listeners.len() < self.cfg.listeners {
            let Some(slot) = self.free.pop() else { return };
            let port = self.cfg.port;
            if self.hot(slot).listen(port).is_err() {
                self.park_socket(slot);
                self.free.push(slot);
                return;
            }
            let s = &mut self.slots[slot as usize];
            s.state = SlotState::Listening;
            self.busy.push(slot);
            self.listeners.push(slot);
        }
    }

    /// Turns listeners that took a SYN into half-open connections and arms others in their
    /// place, so a burst of SYNs finds listeners while the pool lasts.
    fn promote_listeners(&mut self) {
        let mut i = 0;
        let mut promoted = false;
        while i < self.listeners.len() {
            let slot = self.listeners[i];
            let s = &mut self.slots[slot as usize];
            let Some(h) = s.handle else {
                i += 1; // listeners are never parked
                continue;
            };
            let sock = self.sockets.get_mut::<Socket>(h);
            if sock.state() == State::Listen {
                i += 1;
                continue;
            }
            self.listeners.swap_remove(i);
            promoted = true;
            s.state = SlotState::Opening { active: false };
            if let Some(IpEndpoint {
                addr: IpAddress::Ipv4(a),
                port,
            }) = sock.remote_endpoint()
            {
                self.syn_guard.push((a, port));
                self.guard_slots.push(slot);
            }
        }
        if promoted {
            self.rearm();
        }
    }

    /// Takes frames from `queue`, runs TCP (timers included) up to `now`, sends what is due,
    /// and appends what happened to `events` (in order per connection).
    ///
    /// A poll with nothing to do returns at once: no frame waiting (as far as
    /// [`FrameQueue::has_frames`] knows), no socket touched since the last poll and flush, no
    /// smoltcp timer due, and a full round less than [`MAX_SKIP`] ago. Everything that changes
    /// a socket goes through `hot` (which marks the endpoint due), frames through `queue`, and
    /// time through smoltcp's `poll_at`, so a skipped poll is one that would have done nothing
    /// (beyond maintenance and parking, which wait at most `MAX_SKIP`).
    pub fn poll<Q: FrameQueue>(&mut self, now: Instant, queue: &mut Q, events: &mut Vec<TcpEvent>) {
        self.now = now;
        if !self.scan_due
            && !self.egress_due
            && !queue.has_frames()
            && now < self.last_full + MAX_SKIP
        {
            if !self.next_due_fresh {
                self.next_due = self.iface.poll_at(now, &self.sockets);
                self.next_due_fresh = true;
            }
            if !self.timer_due(now) {
                self.stats.polls_skipped += 1;
                return;
            }
        }
        self.last_full = now;
        self.iface.poll_maintenance(now);
        let now_ns = ns(now);
        self.slo.tick(now_ns);
        while let Some(frame) = queue.receive() {
            // CRAB first: a redirected connection's segment names the VIP from here on.
            let mut frame = match self.crab.rx(frame.as_ref()) {
                RxVerdict::Pass => RxBuf::Queue(frame),
                RxVerdict::Drop => continue,
                RxVerdict::Rewrite => {
                    let mut v = frame.as_ref().to_vec();
                    self.crab.rewrite_rx(&mut v);
                    RxBuf::Owned(v)
                }
            };
            // SLO client: the window is the server's tokens, read before smoltcp sees it.
            if self.slo.rx_wants(frame.as_ref()) {
                let mut v = match frame {
                    RxBuf::Owned(v) => v,
                    RxBuf::Queue(q) => q.as_ref().to_vec(),
                };
                self.slo.rx(&mut v, now_ns);
                frame = RxBuf::Owned(v);
            }
            // A segment of a parked connection: its socket goes back into the set first.
            if !self.parked.is_empty()
                && let Some(slot) = segment_key(frame.as_ref()).and_then(|k| self.parked.get(k))
            {
                self.hot(slot);
            }
            let mut dev = QueueDevice {
                queue: &mut *queue,
                pending: Some(frame),
                crab: &mut self.crab,
                slo: &mut self.slo,
                scratch: &mut self.scratch,
                frame_mtu: self.frame_mtu,
                rx_l4_checksum_offloaded: self.cfg.rx_checksum_offloaded,
                syn_guard: &self.syn_guard,
                drop_syns: self.cfg.listeners > 0 && self.listeners.is_empty(),
                dup_syns: 0,
                full_syns: 0,
            };
            let res = self
                .iface
                .poll_ingress_single(now, &mut dev, &mut self.sockets);
            self.stats.dup_syns_dropped += dev.dup_syns;
            self.stats.syns_dropped_pool_full += dev.full_syns;
            if res != PollIngressSingleResult::None {
                // O(listeners), a handful: cheap enough to do after every frame.
                self.promote_listeners();
            }
        }
        self.scan(events);
        self.scan_due = false;
        self.egress_due = true;
        self.flush(now, queue);
    }

    /// Until when a [`poll`](Self::poll) without frames and a [`flush`](Self::flush) would do
    /// nothing, if that is known now (no socket touched since, smoltcp's timers asked): a
    /// caller may skip both before then without reading its clock's finer parts.
    pub fn quiet_until(&self) -> Option<Instant> {
        if self.scan_due || self.egress_due || !self.next_due_fresh {
            return None;
        }
        let limit = self.last_full + MAX_SKIP;
        Some(self.next_due.map_or(limit, |t| t.min(limit)))
    }

    /// Whether a socket was touched since the last [`flush`](Self::flush) (a call queued
    /// something to send, or may have).
    pub fn egress_pending(&self) -> bool {
        self.egress_due
    }

    /// Whether smoltcp's next timer is due at `now` (true when not known since the last
    /// egress).
    fn timer_due(&self, now: Instant) -> bool {
        !self.next_due_fresh || self.next_due.is_some_and(|t| t <= now)
    }

    /// Sends what the calls since the last `poll` queued, without taking received frames or
    /// reporting events: for a core that wants its replies on the wire before its next turn.
    ///
    /// Returns at once when no socket was touched since the last flush and no timer is due.
    pub fn flush<Q: FrameQueue>(&mut self, now: Instant, queue: &mut Q) {
        if !self.egress_due && !self.timer_due(now) {
            return;
        }
        let mut dev = QueueDevice {
            queue,
            pending: None,
            crab: &mut self.crab,
            slo: &mut self.slo,
            scratch: &mut self.scratch,
            frame_mtu: self.frame_mtu,
            rx_l4_checksum_offloaded: self.cfg.rx_checksum_offloaded,
            syn_guard: &self.syn_guard,
            drop_syns: false,
            dup_syns: 0,
            full_syns: 0,
        };
        while self.iface.poll_egress(now, &mut dev, &mut self.sockets) != PollResult::None {}
        self.egress_due = false;
        self.next_due_fresh = false;
    }

    /// Looks at every busy slot and reports what changed; parks connections quiet for
    /// `park_after`.
    fn scan(&mut self, events: &mut Vec<TcpEvent>) {
        self.promote_listeners();
        let mut changed = false;
        let mut i = 0;
        while i < self.busy.len() {
            let slot = self.busy[i];
            let s = &mut self.slots[slot as usize];
            let Some(h) = s.handle else {
                i += 1; // busy slots are in the set
                continue;
            };
            let id = ConnId {
                slot,
                generation: s.generation,
            };
            let before = events.len();
            let sock = self.sockets.get_mut::<Socket>(h);
            let state = sock.state();
            let mut free = false;
            if let SlotState::Opening { active } = s.state {
                match state {
                    State::SynSent | State::SynReceived => {}
                    State::Listen => {
                        // Reset while half open: a listener again.
                        s.state = SlotState::Listening;
                        self.listeners.push(slot);
                    }
                    State::Closed => {
                        if active {
                            self.stats.closed += 1;
                            events.push(TcpEvent::Closed(id));
                        }
                        free = true;
                    }
                    _ => {
                        s.state = SlotState::Open;
                        if self.slo.enabled()
                            && let Some(k) = parked_key(sock)
                        {
                            let key = (Ipv4Addr::from(k.remote_ip), k.remote_port, k.local_port);
                            self.slo.open(key, !active);
                            s.slo_key = Some(key);
                        }
                        events.push(if active {
                            self.stats.connected += 1;
                            TcpEvent::Connected(id)
                        } else {
                            self.stats.accepted += 1;
                            TcpEvent::Accepted(id)
                        });
                    }
                }
                if !active
                    && s.state != (SlotState::Opening { active })
                    && let Some(g) = self.guard_slots.iter().position(|&g| g == slot)
                {
                    self.guard_slots.swap_remove(g);
                    self.syn_guard.swap_remove(g);
                }
            }
            let mut park = None;
            if s.state == SlotState::Open {
                let rx = sock.recv_queue();
                if rx > s.rx_reported {
                    events.push(TcpEvent::Received(id, rx - s.rx_reported));
                    s.rx_reported = rx;
                }
                let tx = sock.send_queue();
                if tx < s.tx_queued {
                    events.push(TcpEvent::Sent(id, s.tx_queued - tx));
                }
                s.tx_queued = tx;
                if !s.peer_closed && peer_fin_seen(state) {
                    s.peer_closed = true;
                    events.push(TcpEvent::PeerClosed(id));
                }
                if matches!(state, State::Closed | State::TimeWait) {
                    self.stats.closed += 1;
                    events.push(TcpEvent::Closed(id));
                    s.state = SlotState::Lingering;
                }
                if events.len() > before {
                    s.active_at = self.now;
                } else if self.park_after > Duration::ZERO
                    && state == State::Established
                    && tx == 0
                    && self.now >= s.active_at + self.park_after
                {
                    park = parked_key(sock);
                }
            }
            if s.state == SlotState::Lingering && state == State::Closed {
                free = true;
            }
            if free {
                changed = true;
                s.state = SlotState::Free;
                s.generation = s.generation.wrapping_add(1);
                s.rx_reported = 0;
                s.tx_queued = 0;
                s.peer_closed = false;
                if s.local_port != 0 {
                    self.crab.closed(s.local_port);
                    s.local_port = 0;
                }
                if let Some(key) = s.slo_key.take() {
                    self.slo.close(key);
                }
                self.park_socket(slot);
                self.free.push(slot);
                self.busy.swap_remove(i);
            } else if let Some(key) = park
                && self.parked.insert(key, slot)
            {
                self.slots[slot as usize].key = Some(key);
                self.park_socket(slot);
                self.busy.swap_remove(i);
                self.stats.parked += 1;
            } else {
                i += 1;
            }
        }
        if changed {
            self.rearm();
        }
        if self.set_entries > 64 && 4 * self.busy.len() < self.set_entries {
            self.compact_set();
        }
    }

    /// Moves the sockets in the set to a fresh set sized for them, so polls stop visiting the
    /// empty entries parked connections left (amortised: it runs when at most a quarter of the
    /// entries are used, and the new storage grows by doubling).
    fn compact_set(&mut self) {
        let mut fresh = SocketSet::new(Vec::with_capacity(2 * self.busy.len() + 16));
        for &slot in &self.busy {
            let s = &mut self.slots[slot as usize];
            if let Some(h) = s.handle {
                s.handle = Some(fresh.add(self.sockets.remove(h)));
            }
        }
        self.sockets = fresh;
        self.set_entries = self.busy.len();
    }

    /// When `poll` must run next at the latest (a timer), if any socket has one; `now` if at
    /// once.
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        self.iface.poll_at(now, &self.sockets)
    }

    /// How long until `poll` must run, see [`poll_at`](Self::poll_at).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }

    /// The slot and socket of a live connection, back in smoltcp's set if it was parked
    /// (a call may make it send).
    fn live(&mut self, conn: ConnId) -> Result<(&mut Slot, &mut Socket<'static>), TcpError> {
        let ok = self.slots.get(conn.slot as usize).is_some_and(|s| {
            s.generation == conn.generation
                && matches!(s.state, SlotState::Open | SlotState::Opening { .. })
        });
        if !ok {
            return Err(TcpError::BadConn);
        }
        self.hot(conn.slot);
        let s = &mut self.slots[conn.slot as usize];
        let h = s.handle.ok_or(TcpError::BadConn)?;
        Ok((s, self.sockets.get_mut::<Socket>(h)))
    }

    /// Opens a connection to `remote:port` from this endpoint's address ([`TcpEvent::Connected`]
    /// when established). On a multi-core host the local port must hash back to this core.
    pub fn connect(&mut self, remote: Ipv4Addr, port: u16) -> Result<ConnId, TcpError> {
        let slot = self.free.pop().ok_or(TcpError::PoolFull)?;
        let local = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(EPHEMERAL_FIRST);
        self.hot(slot);
        let s = &mut self.slots[slot as usize];
        let opened = s.handle.is_some_and(|h| {
            self.sockets
                .get_mut::<Socket>(h)
                .connect(self.iface.context(), (IpAddress::Ipv4(remote), port), local)
                .is_ok()
        });
        if !opened {
            self.park_socket(slot);
            self.free.push(slot);
            return Err(TcpError::NotOpen);
        }
        let s = &mut self.slots[slot as usize];
        s.state = SlotState::Opening { active: true };
        s.local_port = local;
        self.crab.opened(local, remote, port);
        self.busy.push(slot);
        Ok(ConnId {
            slot,
            generation: s.generation,
        })
    }

    /// Queues bytes of `data` for sending; returns how many fit in the send buffer (the rest
    /// must be sent again after [`TcpEvent::Sent`]).
    pub fn send(&mut self, conn: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        let (s, sock) = self.live(conn)?;
        let n = sock.send_slice(data).map_err(|_| TcpError::NotOpen)?;
        s.tx_queued += n;
        Ok(n)
    }

    /// Zero-copy send: `fill` writes into the free part of the send buffer (contiguous, so
    /// possibly less than all the free space when the ring wraps) and returns how many bytes it
    /// wrote; returns that count.
    pub fn send_with<F: FnOnce(&mut [u8]) -> usize>(
        &mut self,
        conn: ConnId,
        fill: F,
    ) -> Result<usize, TcpError> {
        let (s, sock) = self.live(conn)?;
        let n = sock
            .send(|buf| {
                let n = fill(buf).min(buf.len());
                (n, n)
            })
            .map_err(|_| TcpError::NotOpen)?;
        s.tx_queued += n;
        Ok(n)
    }

    /// The received bytes not yet released, as one contiguous slice of the receive buffer (zero
    /// copy: when the data wraps around the ring, the first part; release it with
    /// [`recv_done`](Self::recv_done) to see the rest).
    pub fn recv(&mut self, conn: ConnId) -> Result<&[u8], TcpError> {
        let (_, sock) = self.live(conn)?;
        Ok(sock.peek(usize::MAX).unwrap_or(&[]))
    }

    /// Releases the first `n` received bytes, reopening the receive window.
    pub fn recv_done(&mut self, conn: ConnId, n: usize) -> Result<(), TcpError> {
        let (s, sock) = self.live(conn)?;
        if n > sock.recv_queue() {
            return Err(TcpError::TooMuch);
        }
        let mut left = n;
        while left > 0 {
            let k = sock
                .recv(|buf| {
                    let k = buf.len().min(left);
                    (k, k)
                })
                .map_err(|_| TcpError::NotOpen)?;
            if k == 0 {
                break;
            }
            left -= k;
        }
        s.rx_reported = s.rx_reported.saturating_sub(n);
        Ok(())
    }

    /// Closes our side (FIN after the queued bytes); [`TcpEvent::Closed`] follows.
    pub fn close(&mut self, conn: ConnId) -> Result<(), TcpError> {
        let (_, sock) = self.live(conn)?;
        sock.close();
        Ok(())
    }

    /// Resets the connection at once.
    pub fn abort(&mut self, conn: ConnId) -> Result<(), TcpError> {
        let (_, sock) = self.live(conn)?;
        sock.abort();
        Ok(())
    }
}
