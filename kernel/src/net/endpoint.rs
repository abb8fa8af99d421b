//! One core's network endpoint: its protocol stack and either its own queue pair (it polls
//! the NIC and, when it serves a group of cores, steers flows to them) or, on a core without
//! a pair, the mailbox its owner fills (see `steer.rs`). Replies to UDP datagrams are built in
//! the receive buffer and sent from it (zero copy).

use super::steer::{self, MAILBOX};
use super::{ARP, Datagram, MAX_UDP_PAYLOAD, NetError, RX_BURST, info, take_queue_of};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use ferrix_drivers::{PacketBuf, QueuePair, QueueStats};
use ferrix_net::udp::UDP_CHECKSUM_OFFSET;
use ferrix_net::{ArpConfig, ArpTable, IfConfig, MacAddr, NetStack, SendError, TxQueue};

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

/// Runs one received frame through the stack and the app's handler; true if the buffer now
/// holds a reply to transmit (false: done with it).
fn process(
    stack: &mut NetStack,
    buf: &mut PacketBuf,
    now: u64,
    tx: &mut impl TxQueue,
    handler: &mut dyn FnMut(&Datagram, &mut [u8]) -> Option<usize>,
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
        Some(plen) if start + plen <= area_end && buf.set_len(off + plen) => {
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
        _ => false,
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
        t.flush(&mut **queue, &mut self.tx);
        self.flush();
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

    pub(super) fn send_udp(
        &mut self,
        src_port: u16,
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
                self.stack.send_udp(src_port, dst, payload, now, &mut tx)
            }
            Port::Steered { .. } => {
                self.stack
                    .send_udp(src_port, dst, payload, now, &mut RawTx(&mut self.raw))
            }
        };
        self.flush();
        r
    }

    pub(super) fn poll(
        &mut self,
        handler: &mut dyn FnMut(&Datagram, &mut [u8]) -> Option<usize>,
        tcp_handler: TcpHandler<'_>,
    ) -> usize {
        let rx = &mut self.rx;
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
                    if process(&mut self.stack, &mut buf, now, &mut tx, handler) {
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
                if let Some(t) = self.tcp.as_mut() {
                    t.take_arp_copies(self.core, &mut **queue);
                    t.poll(&mut **queue, &mut self.tx, tcp_handler);
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
                for mut buf in rx.drain(..) {
                    if process(
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
        n
    }
}
