//! The network as apps see it.
//!
//! Files: this one is the API; `endpoint.rs` one core's queue pair + stack and its poll loop;
//! `steer.rs` software flow steering for NICs with fewer queue pairs than cores.
//!
//! At boot the kernel installs the queue pairs of the NIC it found, pair `i` for core `i`.
//! A core either drives its pair raw ([`take_queue`]) or, far more commonly, through its
//! *endpoint*: the queue pair plus that core's `ferrix_net::NetStack`, created on first use
//! from the command line (`ferrix.ip=A.B.C.D/N`, `ferrix.gw=`, `ferrix.mac=`). Every core polls
//! its own endpoint ([`poll`]); ARP and ICMP are answered inside, UDP datagrams to bound ports
//! go to the app's handler, which may answer in place (zero copy: the reply is built in the
//! receive buffer and transmitted from it) or, through [`poll_with`], forward the datagram in
//! place to another host with its sender kept as the source (an R2P2 router: the server
//! answers the client directly). [`forward_udp`] is the copying path for datagrams an app
//! held on to.

/// The TCP endpoint API (`TcpConfig`, `TcpEvent`, `ConnId`, `TcpEndpoint`) of `ferrix-net`.
pub use ferrix_net::tcp;

pub(crate) mod cost;
mod endpoint;
pub mod r2p2;
pub mod report;
mod steer;
mod tcp_glue;
pub mod zygos;

pub use report::{print_stats, stats_of};

pub use zygos::{Flow, FlowEvent, TcpService, serve_tcp};

use crate::percpu::MAX_CPUS;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicU64, Ordering};
use endpoint::Endpoint;
use ferrix_drivers::{NicInfo, QueuePair};
use ferrix_net::{ArpTable, BindError, ConfigError, IfConfig, SendError};

/// Frames taken from the ring per poll.
pub const RX_BURST: usize = 32;
/// Largest UDP payload of a reply (Ethernet MTU minus IPv4 and UDP headers).
pub const MAX_UDP_PAYLOAD: usize = 1500 - 20 - 8;

static INFO: spin::Once<NicInfo> = spin::Once::new();
static QUEUES: [spin::Mutex<Option<Box<dyn QueuePair>>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];
static ENDPOINTS: [spin::Mutex<Option<Endpoint>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];
static ARP: spin::Once<Arc<ArpTable>> = spin::Once::new();

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub struct MacFmt(pub [u8; 6]);

impl core::fmt::Display for MacFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a network call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The VM has no NIC.
    NoNic,
    /// This core has no queue pair (fewer pairs than cores) or it was taken raw.
    NoQueue,
    /// The command line does not configure the interface.
    Config(ConfigError),
    Bind(BindError),
    Send(SendError),
    /// [`join_group`] refused the address.
    Group(ferrix_net::stack::GroupError),
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::NoNic => f.write_str("the VM has no NIC"),
            NetError::NoQueue => f.write_str("this core has no NIC queue pair"),
            NetError::Config(e) => write!(f, "network configuration: {e}"),
            NetError::Bind(e) => write!(f, "bind: {e:?}"),
            NetError::Send(e) => write!(f, "send: {e:?}"),
            NetError::Group(e) => write!(f, "multicast group: {e}"),
        }
    }
}

pub(crate) fn has_nic() -> bool {
    INFO.get().is_some()
}

pub(crate) fn install(info: NicInfo, queues: Vec<Box<dyn QueuePair>>) {
    INFO.call_once(|| info);
    for (slot, q) in QUEUES.iter().zip(queues) {
        *slot.lock() = Some(q);
    }
}

/// The NIC, if the VM has one.
pub fn info() -> Option<NicInfo> {
    INFO.get().copied()
}

/// Takes this core's raw queue pair (None: no NIC, no pair for this core, or taken already).
pub fn take_queue() -> Option<Box<dyn QueuePair>> {
    take_queue_of(crate::percpu::core_id())
}

/// Takes raw queue pair `i`.
pub fn take_queue_of(i: usize) -> Option<Box<dyn QueuePair>> {
    QUEUES.get(i)?.lock().take()
}

/// A datagram handed to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    /// Payload length (the payload is the first `len` bytes of the handler's buffer).
    pub len: usize,
}

fn with_endpoint<R>(f: impl FnOnce(&mut Endpoint) -> R) -> Result<R, NetError> {
    let core = crate::percpu::core_id();
    let mut slot = ENDPOINTS.get(core).ok_or(NetError::NoQueue)?.lock();
    if slot.is_none() {
        *slot = Some(Endpoint::open(core)?);
    }
    Ok(f(slot.as_mut().ok_or(NetError::NoQueue)?))
}

/// Opens this core's endpoint now (it is otherwise opened on first use).
pub fn open() -> Result<(), NetError> {
    with_endpoint(|_| ())
}

/// This core's interface configuration.
pub fn config() -> Result<IfConfig, NetError> {
    with_endpoint(|ep| *ep.stack.config())
}

/// Delivers UDP datagrams to `port` on this core.
pub fn bind_udp(port: u16) -> Result<(), NetError> {
    with_endpoint(|ep| ep.stack.bind_udp(port))?.map_err(NetError::Bind)
}

/// Receives one burst on this core's queue: ARP and ICMP are answered, each UDP datagram to
/// a bound port is passed to `handler` with its payload at the start of a writable buffer (of
/// at most [`MAX_UDP_PAYLOAD`] bytes); returning `Some(n)` sends the first `n` bytes of that
/// buffer back to the sender. Returns the number of frames received.
pub fn poll(
    mut handler: impl FnMut(&Datagram, &mut [u8]) -> Option<usize>,
) -> Result<usize, NetError> {
    with_endpoint(|ep| ep.poll(&mut handler, &mut |_, _| {}))
}

/// Starts TCP on this core (listening on `cfg.port` unless 0), on the core's own queue pair:
/// connections hashed to this core's queue live here (their home core). See
/// `ferrix_net::tcp` for the endpoint API the handler of [`poll_tcp`] receives.
pub fn tcp_listen(cfg: ferrix_net::tcp::TcpConfig) -> Result<(), NetError> {
    with_endpoint(|ep| ep.tcp_listen(cfg))?
}

/// The outcome of starting a service on this core ([`bind_udp`], [`tcp_listen`]) as an app
/// wants it: a core without a queue pair of its own (not the first) idles for good, any
/// other error is printed as `{what}: core {core}: {error}` and the app exits 1.
pub fn or_idle(what: &str, core: usize, r: Result<(), NetError>) {
    match r {
        Ok(()) => {}
        Err(NetError::NoQueue) if core != 0 => crate::idle(),
        Err(e) => {
            crate::println!("{what}: core {core}: {e}");
            crate::exit(1)
        }
    }
}

/// [`poll`] with TCP: UDP datagrams go to `udp`, TCP events (accepted, received, sent, peer
/// closed, closed) to `tcp` with the endpoint to read, send and close through; what `tcp`
/// queues is sent before the call returns.
pub fn poll_tcp(
    mut udp: impl FnMut(&Datagram, &mut [u8]) -> Option<usize>,
    mut tcp: impl FnMut(&mut ferrix_net::tcp::TcpEndpoint, ferrix_net::tcp::TcpEvent),
) -> Result<usize, NetError> {
    with_endpoint(|ep| ep.poll(&mut udp, &mut tcp))
}

/// Runs `f` on this core's TCP endpoint outside a poll (after [`tcp_listen`], with port 0 for
/// a client that does not listen): an app's active opens (`TcpEndpoint::connect`; the
/// `Connected` event then comes through [`poll_tcp`]) and calls that need no event. What `f`
/// queues is sent before the call returns. `NoQueue` if TCP is not started on this core.
pub fn with_tcp<R>(f: impl FnOnce(&mut ferrix_net::tcp::TcpEndpoint) -> R) -> Result<R, NetError> {
    with_endpoint(|ep| ep.with_tcp(f))?.ok_or(NetError::NoQueue)
}

/// What the handler of [`poll_with`] does with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Done with it (nothing sent).
    Consume,
    /// Send the first `n` bytes of the buffer back to the sender, from the port it came to
    /// (built in the receive buffer: zero copy).
    Reply(usize),
    /// Send the datagram, unchanged, on to this address with its sender kept as the source
    /// IP and port: only the Ethernet addresses, the IPv4 destination and the UDP destination
    /// port are rewritten, in the receive buffer (zero copy). If the next hop's MAC is not in
    /// the ARP cache yet, a copy waits for the ARP reply (one per next hop; another in that
    /// time is dropped). Every outcome is counted ([`forward_stats`]); edits the handler made
    /// to the buffer are sent too.
    Forward(SocketAddrV4),
}

/// Forwarding outcomes of [`Action::Forward`] and [`forward_udp`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Sent from the receive buffer.
    pub in_place: u64,
    /// Copied and parked until ARP resolved the next hop.
    pub parked: u64,
    /// Not sent: no route, ARP already busy for that hop, no transmit buffer, not a
    /// forwardable frame. (Each also counts in the stack's drop reasons where it applies.)
    pub failed: u64,
    /// Sent by copy ([`forward_udp`]).
    pub copied: u64,
}

/// Per-core forwarding counters (one writer each: no sharing on the hot path).
pub(crate) struct ForwardCounters {
    pub(crate) in_place: AtomicU64,
    pub(crate) parked: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) copied: AtomicU64,
}

pub(crate) static FORWARD: [ForwardCounters; MAX_CPUS] = [const {
    ForwardCounters {
        in_place: AtomicU64::new(0),
        parked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        copied: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// The forwarding counters summed over all cores.
pub fn forward_stats() -> ForwardStats {
    let mut s = ForwardStats::default();
    for c in &FORWARD {
        s.in_place += c.in_place.load(Ordering::Relaxed);
        s.parked += c.parked.load(Ordering::Relaxed);
        s.failed += c.failed.load(Ordering::Relaxed);
        s.copied += c.copied.load(Ordering::Relaxed);
    }
    s
}

/// [`poll`] whose handler decides per datagram ([`Action`]): consume, reply in place, or
/// forward in place to another host. With `first_port`, the UDP frames of each received
/// burst addressed to that port are handled before the rest (in arrival order within each
/// class): an R2P2 router names its FEEDBACK port so that slot counts are current when the
/// REQ0s of the same burst are placed.
pub fn poll_with(
    first_port: Option<u16>,
    mut handler: impl FnMut(&Datagram, &mut [u8]) -> Action,
) -> Result<usize, NetError> {
    with_endpoint(|ep| ep.poll_with(first_port, &mut handler, &mut |_, _| {}))
}

/// Makes this core's in-place UDP replies go to the ARP cache's MAC of the peer (when known)
/// rather than the request frame's source MAC: for servers behind an R2P2 router, whose
/// forwarded requests carry the router's MAC and the client's IP. Costs an ARP cache lookup
/// per reply.
pub fn set_reply_via_arp(on: bool) -> Result<(), NetError> {
    with_endpoint(|ep| ep.stack.set_reply_via_arp(on))
}

/// Joins an IPv4 multicast group on this core's stack: datagrams to it reach this core's
/// [`poll`] handlers like unicast ones, and IGMPv2 reports keep snooping switches forwarding
/// it (one is sent now). Call it on every core that polls: each core's stack has its own
/// membership, and the NIC may steer the group's frames to any queue.
pub fn join_group(group: core::net::Ipv4Addr) -> Result<(), NetError> {
    with_endpoint(|ep| ep.join_group(group))?.map_err(NetError::Group)
}

/// Sends a UDP datagram from this core.
pub fn send_udp(src_port: u16, dst: SocketAddrV4, payload: &[u8]) -> Result<(), NetError> {
    with_endpoint(|ep| {
        let src = SocketAddrV4::new(ep.stack.config().ip, src_port);
        ep.send_udp_from(src, dst, payload)
    })?
    .map_err(NetError::Send)
}

/// Sends `payload` to `dst` naming `src` (any address, typically a client's) as its source:
/// the copying twin of [`Action::Forward`], for datagrams the app held (an R2P2 router's
/// central queue). ARP-resolved like [`send_udp`]; counted in [`forward_stats`].
pub fn forward_udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Result<(), NetError> {
    let core = crate::percpu::core_id();
    let r = with_endpoint(|ep| ep.send_udp_from(src, dst, payload))?.map_err(NetError::Send);
    if let Some(c) = FORWARD.get(core) {
        match r {
            Ok(()) => c.copied.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
    r
}
