//! One core's network endpoint: its protocol stack and either its own queue pair (it polls
//! the NIC and, when it serves a group of cores, steers flows to them) or, on a core without
//! a pair, the mailbox its owner fills (see `steer.rs`). Replies to UDP datagrams are built in
//! the receive buffer and sent from it (zero copy).

use super::steer::{self, MAILBOX};
use super::{
    ARP, Action, Datagram, FORWARD, MAX_UDP_PAYLOAD, NetError, RX_BURST, info, take_queue_of,
};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::sync::atomic::Ordering;
use ferrix_drivers::{PacketBuf, QueuePair, QueueStats};
use ferrix_net::udp::UDP_CHECKSUM_OFFSET;
use ferrix_net::{ArpConfig, ArpTable, Forwarded, IfConfig, MacAddr, NetStack, SendError, TxQueue};

/// How the endpoint reaches the wire.
enum Port {
    /// Its own queue pair; `group` are the cores it feeds (itself first).
    Queue {
        queue: Box<dyn QueuePair>,
        group: Vec<usize>,
    },
    /// No pair of its own: frames come from, and go back to, core `owner`.
    Steered { owner: usize },
}

pub(super) struct Endpoint {
    core: usize,
    port: Port,
    pub(super) stack: NetStack,
    rx: Vec<PacketBuf>,
    /// Scratch for reordering a burst (`poll_with`'s `first_port`), kept to avoid allocating.
    later: Vec<PacketBuf>,
    /// Frames to transmit (own queue) or to hand back to the owner (steered).
    tx: Vec<PacketBuf>,
    /// Steered only: frames the stack built, and buffers done with, for the owner.
    raw: Vec<Vec<u8>>,
    done: Vec<PacketBuf>,
    /// TCP, once the app listens (cores with their own queue pair only).
    tcp: Option<super::tcp_glue::Tcp>,
}

/// The app's TCP event handler.
pub(super) type TcpHandler<'a> =
    &'a mut dyn FnMut(&mut ferrix_net::tcp::TcpEndpoint, ferrix_net::tcp::TcpEvent);

/// The stack's transmit path on a core with a queue: a transmit allocates a buffer from the
/// queue's pool, the stack fills it, and it joins the burst sent at the end of the poll.
struct QueueTx<'a> {
    queue: &'a mut dyn QueuePair,
    out: &'a mut Vec<PacketBuf>,
}

impl TxQueue for QueueTx<'_> {
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

/// The stack's transmit path on a steered core: frames are built as bytes and the owner copies
/// them into its buffers (this carries only ARP, ICMP and `send_udp`, not echo replies).
struct RawTx<'a>(&'a mut Vec<Vec<u8>>);

impl TxQueue for RawTx<'_> {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let mut v = alloc::vec![0u8; len];
        fill(&mut v);
        self.0.push(v);
        true
    }
}

/// Where the UDP checksum computation starts in a frame we build (Ethernet + IPv4 without
/// options): the NIC completes it when transmit checksum offload is on.
const UDP_CHECKSUM_START: u16 = 14 + 20;

/// The app's UDP handler: what to do with each datagram (see [`Action`]).
pub(super) type UdpHandler<'a> = &'a mut dyn FnMut(&Datagram, &mut [u8]) -> Action;

/// Runs one received frame through the stack and the app's handler; true if the buffer now
/// holds a frame to transmit (a reply, or the datagram forwarded in place; false: done with
/// it).
fn process(
    core: usize,
    stack: &mut NetStack,
    buf: &mut PacketBuf,
    now: u64,
    tx: &mut impl TxQueue,
    handler: UdpHandler<'_>,
) -> bool {
    let got = stack
        .receive_checked(buf.data(), buf.l4_checksum_ok(), now, tx)
        .map(|d| {
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
        return false;
    };
    let start = buf.start() + off;
    let area_end = (start + MAX_UDP_PAYLOAD).min(ferrix_drivers::BUF_SIZE);
    match handler(&dgram, &mut buf.slot_mut()[start..area_end]) {
        Action::Reply(plen) if start + plen <= area_end && buf.set_len(off + plen) => {
            match stack.udp_reply_in_place(buf.data_mut(), plen) {
                Ok(len) if buf.set_len(len) => {
                    if stack.tx_checksum_offload() {
                        buf.request_tx_checksum(UDP_CHECKSUM_START, UDP_CHECKSUM_OFFSET as u16);
                    }
                    true
                }
                _ => false,
            }
        }
        Action::Forward(to) => forward(core, stack, buf, to, tx),
        _ => false,
    }
}

/// Sends the datagram in `buf` on to `to` from its buffer, its sender kept as the source
/// (`NetStack::forward_in_place`); counted in [`FORWARD`]: in place, parked for ARP (a copy),
/// or failed (no route, ARP busy for that hop, not forwardable).
fn forward(
    core: usize,
    stack: &mut NetStack,
    buf: &mut PacketBuf,
    to: SocketAddrV4,
    tx: &mut impl TxQueue,
) -> bool {
    let count = |which: fn(&super::ForwardCounters) -> &core::sync::atomic::AtomicU64| {
        if let Some(c) = FORWARD.get(core) {
            which(c).fetch_add(1, Ordering::Relaxed);
        }
    };
    let l4_ok = buf.l4_checksum_ok();
    let now = crate::time::now_ns();
    match stack.forward_in_place(buf.data_mut(), to, l4_ok, now, tx) {
        Ok(Forwarded::InPlace { len, offload }) if buf.set_len(len) => {
            if offload {
                buf.request_tx_checksum(UDP_CHECKSUM_START, UDP_CHECKSUM_OFFSET as u16);
            }
            count(|c| &c.in_place);
            true
        }
        Ok(Forwarded::Parked) => {
            count(|c| &c.parked);
            false
        }
        Ok(Forwarded::InPlace { .. }) | Err(_) => {
            count(|c| &c.failed);
            false
        }
    }
}

impl Endpoint {
    pub(super) fn open(core: usize) -> Result<Endpoint, NetError> {
        let info = info().ok_or(NetError::NoNic)?;
        let cfg = IfConfig::from_cmdline(
            crate::mem::kernel::cmdline().split_ascii_whitespace(),
            MacAddr(info.mac),
        )
        .map_err(NetError::Config)?;
        let cpus = crate::sdk::cpus();
        let port = match take_queue_of(core) {
            Some(queue) => {
                let group = steer::group(queue.index(), info.queue_pairs, cpus);
                Port::Queue { queue, group }
            }
            None if core >= info.queue_pairs && core < cpus => Port::Steered {
                owner: steer::owner_of(core, info.queue_pairs),
            },
            None => return Err(NetError::NoQueue),
        };
        let arp = ARP
            .call_once(|| Arc::new(ArpTable::new(ArpConfig::default())))
            .clone();
        let mut stack = NetStack::new(cfg, arp);
        stack.set_tx_checksum_offload(info.offloads.tx_checksum);
        let mut ep = Endpoint {
            core,
            port,
            stack,
            rx: Vec::with_capacity(RX_BURST),
            later: Vec::with_capacity(RX_BURST),
            tx: Vec::new(),
            raw: Vec::new(),
            done: Vec::new(),
            tcp: None,
        };
        if let Port::Queue { queue, .. } = &mut ep.port
            && queue.index() == 0
        {
            let mut tx = QueueTx {
                queue: &mut **queue,
                out: &mut ep.tx,
            };
            ep.stack.announce(&mut tx);
            ep.flush();
        }
        Ok(ep)
    }

    /// Starts TCP on this core, listening as `cfg` says. Needs the core's own queue pair.
    pub(super) fn tcp_listen(&mut self, cfg: ferrix_net::tcp::TcpConfig) -> Result<(), NetError> {
        let Port::Queue { queue, .. } = &mut self.port else {
            return Err(NetError::NoQueue);
        };
        let rx_offloaded = super::info().is_some_and(|i| i.offloads.rx_checksum);
        let cfg = ferrix_net::tcp::TcpConfig {
            seed: cfg.seed ^ (self.core as u64).wrapping_mul(0x9e37_79b9),
            rx_checksum_offloaded: rx_offloaded,
            ..cfg
        };
        self.tcp = Some(super::tcp_glue::Tcp::new(
            self.stack.config(),
            cfg,
            &mut **queue,
            &mut self.tx,
        ));
        self.flush();
        Ok(())
    }

    /// The queue pair this endpoint uses (its owner's when steered).
    pub(super) fn queue_index(&self) -> usize {
        match &self.port {
            Port::Queue { queue, .. } => queue.index(),
            Port::Steered { owner } => *owner,
        }
    }

    /// Whether frames wait in its own queue pair's receive ring (false when steered).
    pub(super) fn rx_pending(&self) -> bool {
        match &self.port {
            Port::Queue { queue, .. } => queue.rx_pending(),
            Port::Steered { .. } => false,
        }
    }

    /// Runs `f` on this core's TCP endpoint (None if TCP is not started here), then sends what
    /// it queued.
    pub(super) fn with_tcp<R>(
        &mut self,
        f: impl FnOnce(&mut ferrix_net::tcp::TcpEndpoint) -> R,
    ) -> Option<R> {
        let Port::Queue { queue, .. } = &mut self.port else {
            return None;
        };
        let t = self.tcp.as_mut()?;
        let r = f(&mut t.ep);
        // Only what `f` queued: timers are the next poll's business.
        if t.ep.egress_pending() {
            t.flush(&mut **queue, &mut self.tx);
            self.flush();
        }
        Some(r)
    }

    /// The counters of its own queue pair (zero when steered).
    pub(super) fn queue_stats(&self) -> QueueStats {
        match &self.port {
            Port::Queue { queue, .. } => queue.stats(),
            Port::Steered { .. } => QueueStats::default(),
        }
    }

    /// Sends what is pending: own queue: the TX burst (what does not fit the ring is dropped,
    /// counted by the driver); steered: everything goes back to the owner's mailbox.
    fn flush(&mut self) {
        match &mut self.port {
            Port::Queue { queue, .. } => {
                if !self.tx.is_empty() {
                    queue.tx_burst(&mut self.tx);
                    // What did not fit the ring (counted by the driver) goes back to the pool.
                    if !self.tx.is_empty() {
                        for b in self.tx.drain(..) {
                            queue.free(b);
                        }
                    }
                }
            }
            Port::Steered { owner } => {
                if !(self.tx.is_empty() && self.raw.is_empty() && self.done.is_empty()) {
                    let mut m = MAILBOX[*owner].lock();
                    m.tx.append(&mut self.tx);
                    m.raw.append(&mut self.raw);
                    m.free.append(&mut self.done);
                }
            }
        }
    }

    /// Joins `group` on this core's stack (the IGMP report goes out now).
    pub(super) fn join_group(
        &mut self,
        group: core::net::Ipv4Addr,
    ) -> Result<(), ferrix_net::stack::GroupError> {
        let r = match &mut self.port {
            Port::Queue { queue, .. } => {
                let mut tx = QueueTx {
                    queue: &mut **queue,
                    out: &mut self.tx,
                };
                self.stack.join_group(group, &mut tx)
            }
            Port::Steered { .. } => self.stack.join_group(group, &mut RawTx(&mut self.raw)),
        };
        self.flush();
        r
    }

    /// Sends `payload` from `src` (None: this interface's address and `src_port`) to `dst`.
    pub(super) fn send_udp_from(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let now = crate::time::now_ns();
        let r = match &mut self.port {
            Port::Queue { queue, .. } => {
                let mut tx = QueueTx {
                    queue: &mut **queue,
                    out: &mut self.tx,
                };
                self.stack.send_udp_from(src, dst, payload, now, &mut tx)
            }
            Port::Steered { .. } => {
                self.stack
                    .send_udp_from(src, dst, payload, now, &mut RawTx(&mut self.raw))
            }
        };
        self.flush();
        r
    }

    /// [`Self::poll_with`] for handlers that reply (`Some(n)`) or consume (`None`).
    pub(super) fn poll(
        &mut self,
        handler: &mut dyn FnMut(&Datagram, &mut [u8]) -> Option<usize>,
        tcp_handler: TcpHandler<'_>,
    ) -> usize {
        self.poll_with(
            None,
            &mut |d, b| handler(d, b).map_or(Action::Consume, Action::Reply),
            tcp_handler,
        )
    }

    /// One poll: a burst from the queue (or the mailbox when steered) through the stack and
    /// `handler`. With `first_port`, the burst's UDP frames to that port are handled before
    /// the others (an R2P2 router takes FEEDBACK before REQ0s: slot counts are current when
    /// the REQ0s of the same burst are placed); otherwise, and within each class, in order.
    pub(super) fn poll_with(
        &mut self,
        first_port: Option<u16>,
        handler: UdpHandler<'_>,
        tcp_handler: TcpHandler<'_>,
    ) -> usize {
        // `ferrix.netcost` times the stages of each poll: a copy of the poll of its own, so
        // the usual one pays a single test of the flag.
        if super::cost::on() {
            self.poll_timed(first_port, handler, tcp_handler)
        } else {
            self.poll_stages::<false>(first_port, handler, tcp_handler)
        }
    }

    /// The timed poll, out of line (the untimed one is the hot path).
    #[inline(never)]
    #[cold]
    fn poll_timed(
        &mut self,
        first_port: Option<u16>,
        handler: UdpHandler<'_>,
        tcp_handler: TcpHandler<'_>,
    ) -> usize {
        self.poll_stages::<true>(first_port, handler, tcp_handler)
    }

    /// [`Endpoint::poll_with`], timing its stages when `TIMED` (`cost.rs`); inlined, so the
    /// untimed poll costs what it did before the meter.
    #[inline(always)]
    fn poll_stages<const TIMED: bool>(
        &mut self,
        first_port: Option<u16>,
        handler: UdpHandler<'_>,
        tcp_handler: TcpHandler<'_>,
    ) -> usize {
        let core = self.core;
        let rx = &mut self.rx;
        let mut laps = [0u64; 5];
        if TIMED {
            laps[0] = crate::time::now_ns();
        }
        let n = match &mut self.port {
            Port::Queue { queue, group } => {
                // Work handed back by the cores this queue feeds.
                if group.len() > 1 {
                    let mut m = MAILBOX[self.core].lock();
                    for b in m.free.drain(..) {
                        queue.free(b);
                    }
                    self.tx.append(&mut m.tx);
                    for frame in m.raw.drain(..) {
                        let mut tx = QueueTx {
                            queue: &mut **queue,
                            out: &mut self.tx,
                        };
                        tx.transmit(frame.len(), &mut |b| b.copy_from_slice(&frame));
                    }
                }
                let n = queue.rx_burst(rx, RX_BURST);
                if TIMED {
                    laps[1] = crate::time::now_ns();
                }
                if let Some(p) = first_port {
                    first_by_port(rx, &mut self.later, p);
                }
                for buf in rx.drain(..) {
                    let (is_tcp, is_arp) = super::tcp_glue::classify(buf.data());
                    if is_tcp && let Some(t) = self.tcp.as_mut() {
                        // With receive checksum offload smoltcp does not verify TCP checksums:
                        // check the frames the NIC did not vouch for here.
                        if t.rx_offloaded
                            && !buf.l4_checksum_ok()
                            && !super::tcp_glue::tcp_checksum_ok(buf.data())
                        {
                            queue.free(buf);
                            continue;
                        }
                        t.rx.push_back(buf); // TCP flows stay on the queue's core (their home)
                        continue;
                    }
                    let target = if group.len() > 1 && !is_tcp {
                        steer::pick(group, steer::flow_hash(buf.data()))
                    } else {
                        self.core
                    };
                    let mut buf = if target == self.core {
                        buf
                    } else {
                        match steer::hand_over(target, buf) {
                            Ok(()) => continue,
                            Err(buf) => {
                                queue.free(buf);
                                continue;
                            }
                        }
                    };
                    let mut tx = QueueTx {
                        queue: &mut **queue,
                        out: &mut self.tx,
                    };
                    // The stack reads the clock for ARP only (cache ageing).
                    let now = if is_arp { crate::time::now_ns() } else { 0 };
                    if process(core, &mut self.stack, &mut buf, now, &mut tx, handler) {
                        self.tx.push(buf);
                    } else if is_arp && self.tcp.is_some() {
                        // smoltcp keeps its own neighbour cache: it sees every ARP frame too,
                        // and so do the other cores' endpoints (copies).
                        let group_pairs = super::info().map_or(0, |i| i.queue_pairs);
                        super::tcp_glue::share_arp(self.core, group_pairs, buf.data());
                        if let Some(t) = self.tcp.as_mut() {
                            t.rx.push_back(buf);
                        }
                    } else {
                        queue.free(buf);
                    }
                }
                if TIMED {
                    laps[2] = crate::time::now_ns();
                }
                if let Some(t) = self.tcp.as_mut() {
                    t.take_arp_copies(self.core, &mut **queue);
                    t.poll(&mut **queue, &mut self.tx, tcp_handler);
                }
                if TIMED {
                    laps[3] = crate::time::now_ns();
                }
                n
            }
            Port::Steered { .. } => {
                let now = crate::time::now_ns();
                {
                    let mut m = MAILBOX[self.core].lock();
                    let k = m.rx.len().min(RX_BURST);
                    rx.extend(m.rx.drain(..k));
                }
                let n = rx.len();
                if let Some(p) = first_port {
                    first_by_port(rx, &mut self.later, p);
                }
                for mut buf in rx.drain(..) {
                    if process(
                        core,
                        &mut self.stack,
                        &mut buf,
                        now,
                        &mut RawTx(&mut self.raw),
                        handler,
                    ) {
                        self.tx.push(buf);
                    } else {
                        self.done.push(buf);
                    }
                }
                n
            }
        };
        self.flush();
        if TIMED && laps[3] != 0 {
            laps[4] = crate::time::now_ns();
            super::cost::record(core, n, &laps);
        }
        n
    }
}

/// The UDP destination port of an Ethernet/IPv4 (no options)/UDP frame, without checking
/// anything else (the stack does that); None for anything else.
fn udp_dst_port(frame: &[u8]) -> Option<u16> {
    let h = frame.first_chunk::<38>()?;
    (h[12..14] == [0x08, 0x00] && h[14] == 0x45 && h[23] == 17)
        .then(|| u16::from_be_bytes([h[36], h[37]]))
}

/// Reorders `rx` so that frames to UDP port `port` come first, each class in arrival order
/// (`later` is scratch, left empty).
fn first_by_port(rx: &mut Vec<PacketBuf>, later: &mut Vec<PacketBuf>, port: u16) {
    if !rx.iter().any(|b| udp_dst_port(b.data()) == Some(port)) {
        return;
    }
    let mut i = 0;
    while i < rx.len() {
        if udp_dst_port(rx[i].data()) == Some(port) {
            i += 1;
        } else {
            later.push(rx.remove(i));
        }
    }
    rx.append(later);
}
