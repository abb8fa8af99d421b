//! TCP on a core with its own queue pair: the core's `ferrix_net::tcp::TcpEndpoint` (smoltcp)
//! takes the TCP frames (and a look at every ARP frame: smoltcp keeps its own neighbour cache)
//! that the core's endpoint receives, and transmits through the same queue pair. Frames are
//! lent to smoltcp and come back to the queue's pool through a small graveyard (a received
//! frame handed to smoltcp is dropped by it when done).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ferrix_drivers::{PacketBuf, QueuePair};
use ferrix_net::tcp::{FrameQueue, TcpEndpoint, TcpEvent};

/// Frames smoltcp is done with, to give back to the queue's pool after the poll. (The
/// endpoint lives in a per-core static, hence `Arc` + a lock that is never contended.)
type Grave = Arc<spin::Mutex<Vec<PacketBuf>>>;

/// A received frame lent to smoltcp; back to the graveyard when dropped.
pub(super) struct Lent {
    buf: Option<PacketBuf>,
    grave: Grave,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], PacketBuf::data)
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.grave.lock().push(b);
        }
    }
}

/// smoltcp's queue for one poll: frames waiting for TCP, and transmits into the queue pair.
struct Frames<'a> {
    rx: &'a mut VecDeque<PacketBuf>,
    grave: &'a Grave,
    queue: &'a mut dyn QueuePair,
    out: &'a mut Vec<PacketBuf>,
}

impl FrameQueue for Frames<'_> {
    type RxFrame = Lent;

    fn receive(&mut self) -> Option<Lent> {
        let buf = self.rx.pop_front()?;
        Some(Lent {
            buf: Some(buf),
            grave: self.grave.clone(),
        })
    }

    fn has_frames(&self) -> bool {
        !self.rx.is_empty()
    }

    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, fill: F) -> R {
        if let Some(mut b) = self.queue.alloc() {
            if b.set_len(len) {
                let r = fill(b.data_mut());
                self.out.push(b);
                return r;
            }
            self.queue.free(b);
        }
        // No buffer (or too long): smoltcp still needs somewhere to write; the frame is
        // dropped and TCP retransmits it.
        let mut scratch = alloc::vec![0u8; len];
        fill(&mut scratch)
    }
}

/// One core's TCP.
pub(super) struct Tcp {
    pub(super) ep: TcpEndpoint,
    /// The NIC checks TCP checksums on receive (smoltcp's own check is off).
    pub(super) rx_offloaded: bool,
    /// Frames for TCP received in this poll.
    pub(super) rx: VecDeque<PacketBuf>,
    grave: Grave,
    events: Vec<TcpEvent>,
}

/// Milliseconds since boot as smoltcp time.
pub(super) fn now() -> ferrix_net::tcp::Instant {
    ferrix_net::tcp::Instant::from_micros((crate::time::now_ns() / 1000) as i64)
}

impl Tcp {
    pub(super) fn new(
        ifc: &ferrix_net::IfConfig,
        cfg: ferrix_net::tcp::TcpConfig,
        queue: &mut dyn QueuePair,
        out: &mut Vec<PacketBuf>,
    ) -> Tcp {
        let grave = Arc::new(spin::Mutex::new(Vec::new()));
        let mut rx = VecDeque::new();
        let ep = {
            let mut frames = Frames {
                rx: &mut rx,
                grave: &grave,
                queue,
                out,
            };
            TcpEndpoint::new(ifc, cfg, &mut frames, now())
        };
        Tcp {
            ep,
            rx_offloaded: cfg.rx_checksum_offloaded,
            rx,
            grave,
            events: Vec::new(),
        }
    }

    /// Runs TCP on the frames collected this poll, hands each event to `handler` with the
    /// endpoint (to read, send, close), and sends what the handler queued.
    pub(super) fn poll(
        &mut self,
        queue: &mut dyn QueuePair,
        out: &mut Vec<PacketBuf>,
        handler: &mut dyn FnMut(&mut TcpEndpoint, TcpEvent),
    ) {
        let t = now();
        // Nothing received, nothing to send, no timer due: the common case on a core busy
        // with datagrams only.
        if self.rx.is_empty() && self.ep.quiet_until().is_some_and(|q| t < q) {
            return;
        }
        {
            let mut frames = Frames {
                rx: &mut self.rx,
                grave: &self.grave,
                queue: &mut *queue,
                out: &mut *out,
            };
            self.ep.poll(t, &mut frames, &mut self.events);
        }
        for ev in self.events.drain(..) {
            handler(&mut self.ep, ev);
        }
        self.flush(queue, out);
    }

    /// Sends what the endpoint has queued (calls made outside [`Tcp::poll`]).
    pub(super) fn flush(&mut self, queue: &mut dyn QueuePair, out: &mut Vec<PacketBuf>) {
        let t = now();
        if self.ep.quiet_until().is_some_and(|q| t < q) {
            return; // nothing was called since the last flush, no timer due, nothing freed
        }
        {
            let mut frames = Frames {
                rx: &mut self.rx,
                grave: &self.grave,
                queue: &mut *queue,
                out: &mut *out,
            };
            self.ep.flush(t, &mut frames);
        }
        for b in self.grave.lock().drain(..) {
            queue.free(b);
        }
    }
}

/// ARP frames for other cores' TCP: smoltcp learns neighbours only from ARP, and the NIC gives
/// an ARP frame to one queue, so the core that receives one copies it to the others.
static ARP_COPIES: [spin::Mutex<Vec<Vec<u8>>>; crate::percpu::MAX_CPUS] =
    [const { spin::Mutex::new(Vec::new()) }; crate::percpu::MAX_CPUS];
/// ARP copies a core may have waiting (older ones are dropped: ARP is repeated anyway).
const ARP_COPIES_MAX: usize = 64;
/// Whether a core's [`ARP_COPIES`] may hold frames (set under its lock), so a poll need not
/// take the lock to find it empty.
static ARP_COPIES_ANY: [core::sync::atomic::AtomicBool; crate::percpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicBool::new(false) }; crate::percpu::MAX_CPUS];

/// Copies an ARP frame to every other core with a queue pair of its own.
pub(super) fn share_arp(me: usize, queue_pairs: usize, frame: &[u8]) {
    for (c, slot) in ARP_COPIES.iter().enumerate().take(queue_pairs) {
        if c != me {
            let mut v = slot.lock();
            if v.len() < ARP_COPIES_MAX {
                v.push(frame.to_vec());
                ARP_COPIES_ANY[c].store(true, core::sync::atomic::Ordering::Release);
            }
        }
    }
}

impl Tcp {
    /// Takes the ARP frames other cores copied to core `me` into this poll's TCP input.
    pub(super) fn take_arp_copies(&mut self, me: usize, queue: &mut dyn QueuePair) {
        use core::sync::atomic::Ordering;
        if !ARP_COPIES_ANY[me].load(Ordering::Acquire) {
            return;
        }
        let frames = {
            let mut v = ARP_COPIES[me].lock();
            ARP_COPIES_ANY[me].store(false, Ordering::Relaxed);
            core::mem::take(&mut *v)
        };
        for f in frames {
            if let Some(mut b) = queue.alloc() {
                if b.set_len(f.len()) {
                    b.data_mut().copy_from_slice(&f);
                    self.rx.push_back(b);
                } else {
                    queue.free(b);
                }
            }
        }
    }
}

/// Whether an Ethernet/IPv4/TCP frame's TCP checksum is right (for frames the NIC did not
/// vouch for when smoltcp's own check is off).
pub(super) fn tcp_checksum_ok(frame: &[u8]) -> bool {
    let Some(ip) = frame.get(14..) else {
        return false;
    };
    let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
    let total = ip
        .get(2..4)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let (Some(src), Some(dst), Some(seg)) =
        (ip.get(12..16), ip.get(16..20), ip.get(ihl..total.max(ihl)))
    else {
        return false;
    };
    let Ok(len) = u16::try_from(seg.len()) else {
        return false;
    };
    let mut c = ferrix_net::checksum::Checksum::new();
    c.add_pseudo_header(
        core::net::Ipv4Addr::new(src[0], src[1], src[2], src[3]),
        core::net::Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]),
        6,
        len,
    );
    c.add_bytes(seg);
    c.finish() == 0
}

/// What a frame is for: (TCP, ARP).
pub(super) fn classify(frame: &[u8]) -> (bool, bool) {
    match frame.get(12..14) {
        Some([0x08, 0x06]) => (false, true),
        Some([0x08, 0x00]) => (frame.get(23) == Some(&6), false),
        _ => (false, false),
    }
}
