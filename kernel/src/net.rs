//! The network as apps see it.
//!
//! At boot the kernel installs the queue pairs of the NIC it found, pair `i` for core `i`.
//! A core either drives its pair raw ([`take_queue`]) or, far more commonly, through its
//! *endpoint*: the queue pair plus that core's `ferrix_net::NetStack`, created on first use
//! from the command line (`ferrix.ip=A.B.C.D/N`, `ferrix.gw=`, `ferrix.mac=`). Every core polls
//! its own endpoint ([`poll`]); ARP and ICMP are answered inside, UDP datagrams to bound ports
//! go to the app's handler, which may answer in place (zero copy: the reply is built in the
//! receive buffer and transmitted from it).

use crate::percpu::MAX_CPUS;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use ferrix_drivers::{NicInfo, PacketBuf, QueuePair, QueueStats};
use ferrix_net::{
    ArpConfig, ArpTable, BindError, ConfigError, IfConfig, MacAddr, NetStack, SendError, Stats,
    TxQueue,
};

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
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::NoNic => f.write_str("the VM has no NIC"),
            NetError::NoQueue => f.write_str("this core has no NIC queue pair"),
            NetError::Config(e) => write!(f, "network configuration: {e}"),
            NetError::Bind(e) => write!(f, "bind: {e:?}"),
            NetError::Send(e) => write!(f, "send: {e:?}"),
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

/// One core's queue pair and protocol stack.
struct Endpoint {
    queue: Box<dyn QueuePair>,
    stack: NetStack,
    rx: Vec<PacketBuf>,
    tx: Vec<PacketBuf>,
}

/// The stack's view of the queue pair: a transmit allocates a buffer, the stack fills it, and
/// it joins the burst sent at the end of the poll.
struct Tx<'a> {
    queue: &'a mut dyn QueuePair,
    out: &'a mut Vec<PacketBuf>,
}

impl TxQueue for Tx<'_> {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let Some(mut b) = self.queue.alloc() else {
            return false;
        };
        if !b.set_len(len) {
            self.queue.free(b);
            return false;
        }
        fill(b.data_mut());
        self.out.push(b);
        true
    }
}

/// A datagram handed to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    /// Payload length (the payload is the first `len` bytes of the handler's buffer).
    pub len: usize,
}

impl Endpoint {
    fn open(core: usize) -> Result<Endpoint, NetError> {
        let info = info().ok_or(NetError::NoNic)?;
        let cfg = IfConfig::from_cmdline(
            crate::mem::kernel::cmdline().split_ascii_whitespace(),
            MacAddr(info.mac),
        )
        .map_err(NetError::Config)?;
        let queue = take_queue_of(core).ok_or(NetError::NoQueue)?;
        let arp = ARP
            .call_once(|| Arc::new(ArpTable::new(ArpConfig::default())))
            .clone();
        let mut ep = Endpoint {
            queue,
            stack: NetStack::new(cfg, arp),
            rx: Vec::with_capacity(RX_BURST),
            tx: Vec::new(),
        };
        if ep.queue.index() == 0 {
            let mut tx = Tx {
                queue: &mut *ep.queue,
                out: &mut ep.tx,
            };
            ep.stack.announce(&mut tx);
            ep.flush();
        }
        Ok(ep)
    }

    fn flush(&mut self) {
        if !self.tx.is_empty() {
            self.queue.tx_burst(&mut self.tx);
            // What did not fit the ring is dropped (counted by the driver as tx_ring_full).
            for b in self.tx.drain(..) {
                self.queue.free(b);
            }
        }
    }

    fn poll(&mut self, handler: &mut dyn FnMut(&Datagram, &mut [u8]) -> Option<usize>) -> usize {
        let now = crate::time::now_ns();
        let n = self.queue.rx_burst(&mut self.rx, RX_BURST);
        let mut rx = core::mem::take(&mut self.rx);
        for mut buf in rx.drain(..) {
            let mut tx = Tx {
                queue: &mut *self.queue,
                out: &mut self.tx,
            };
            let got = self.stack.receive(buf.data(), now, &mut tx).map(|d| {
                (
                    Datagram {
                        src: d.src,
                        dst: d.dst,
                        len: d.payload.len(),
                    },
                    d.payload_offset,
                )
            });
            let Some((dgram, off)) = got else {
                self.queue.free(buf);
                continue;
            };
            let start = buf.start() + off;
            let area_end = (start + MAX_UDP_PAYLOAD).min(ferrix_drivers::BUF_SIZE);
            let reply = handler(&dgram, &mut buf.slot_mut()[start..area_end]);
            match reply {
                Some(plen) if start + plen <= area_end && buf.set_len(off + plen) => {
                    match self.stack.udp_reply_in_place(buf.data_mut(), plen) {
                        Ok(len) if buf.set_len(len) => self.tx.push(buf),
                        _ => self.queue.free(buf),
                    }
                }
                _ => self.queue.free(buf),
            }
        }
        self.rx = rx;
        self.flush();
        n
    }
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
    with_endpoint(|ep| ep.poll(&mut handler))
}

/// Sends a UDP datagram from this core.
pub fn send_udp(src_port: u16, dst: SocketAddrV4, payload: &[u8]) -> Result<(), NetError> {
    with_endpoint(|ep| {
        let now = crate::time::now_ns();
        let mut tx = Tx {
            queue: &mut *ep.queue,
            out: &mut ep.tx,
        };
        let r = ep.stack.send_udp(src_port, dst, payload, now, &mut tx);
        ep.flush();
        r
    })?
    .map_err(NetError::Send)
}

/// How long [`stats_of`] waits for a core that is in the middle of a poll.
const STATS_WAIT_NS: u64 = 50_000_000;

/// Statistics of core `core`'s endpoint: its queue's and its stack's. None if the core has no
/// endpoint, or it stayed busy (e.g. this very core, inside a poll) for [`STATS_WAIT_NS`].
pub fn stats_of(core: usize) -> Option<(usize, QueueStats, Stats)> {
    let slot = ENDPOINTS.get(core)?;
    let deadline = crate::time::now_ns() + STATS_WAIT_NS;
    loop {
        if let Some(g) = slot.try_lock() {
            let ep = g.as_ref()?;
            return Some((ep.queue.index(), ep.queue.stats(), ep.stack.stats().clone()));
        }
        if crate::time::now_ns() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
}

/// Prints every core's statistics (`ferrix run --stats`): one `ferrix-stats:` line per core
/// with its counters, then one per non-zero drop reason.
pub fn print_stats() {
    for core in 0..crate::sdk::cpus() {
        let Some((q, qs, st)) = stats_of(core) else {
            continue;
        };
        crate::println!(
            "ferrix-stats: core {core} queue {q}: rx {} frames {} bytes, tx {} frames {} bytes, drops {}, driver rx_dropped {} tx_ring_full {}",
            st.rx_packets,
            st.rx_bytes,
            st.tx_packets,
            st.tx_bytes,
            st.total_drops(),
            qs.rx_dropped,
            qs.tx_ring_full
        );
        for (reason, n) in st.drop_counts() {
            if n > 0 {
                crate::println!("ferrix-stats: core {core} drop {} {n}", reason.name());
            }
        }
    }
}
