//! The smoltcp [`Device`] adapter over a [`FrameQueue`].

use alloc::vec::Vec;
use core::net::Ipv4Addr;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::crab::{BLOCK, Crab, insert_option};
use super::slo::SloEdge;

/// A queue of Ethernet frames: what a core's NIC queue pair (or a test's in-memory wire)
/// offers the TCP endpoint.
pub trait FrameQueue {
    /// A received frame; dropping it gives its buffer back to the queue.
    type RxFrame: AsRef<[u8]>;

    /// The next received frame, if any.
    fn receive(&mut self) -> Option<Self::RxFrame>;

    /// Whether [`receive`](Self::receive) may have a frame: false lets an idle `poll` return
    /// at once. The default, true, is always correct.
    fn has_frames(&self) -> bool {
        true
    }

    /// Whether [`transmit`](Self::transmit) has room for one more frame now.
    fn can_transmit(&self) -> bool {
        true
    }

    /// Sends one frame of `len` bytes, filled in place by `fill`.
    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, fill: F) -> R;
}

/// A received frame as the queue gave it, or a copy the endpoint rewrote (CRAB).
pub(crate) enum RxBuf<F> {
    Queue(F),
    Owned(Vec<u8>),
}

impl<F: AsRef<[u8]>> AsRef<[u8]> for RxBuf<F> {
    fn as_ref(&self) -> &[u8] {
        match self {
            RxBuf::Queue(f) => f.as_ref(),
            RxBuf::Owned(v) => v,
        }
    }
}

/// smoltcp's view of a [`FrameQueue`] for one poll.
pub(crate) struct QueueDevice<'a, Q: FrameQueue> {
    pub(crate) queue: &'a mut Q,
    /// The one frame smoltcp may receive through this device (the endpoint takes frames off
    /// the queue itself, to bring a parked connection back before smoltcp sees its segment).
    pub(crate) pending: Option<RxBuf<Q::RxFrame>>,
    /// Connection redirection: outgoing frames get the option or a new destination.
    pub(crate) crab: &'a mut Crab,
    /// SLO flow control: outgoing segments get the server's window.
    pub(crate) slo: &'a mut SloEdge,
    /// Where a frame that may get the option is built first.
    pub(crate) scratch: &'a mut Vec<u8>,
    /// Largest Ethernet frame, header included.
    pub(crate) frame_mtu: usize,
    /// The NIC validated (or will leave partial, for local senders) TCP checksums on receive:
    /// smoltcp must not verify them again ([`TcpConfig::rx_checksum_offloaded`]).
    ///
    /// [`TcpConfig::rx_checksum_offloaded`]: super::TcpConfig::rx_checksum_offloaded
    pub(crate) rx_l4_checksum_offloaded: bool,
    /// Peers (address, port) that have a half-open connection: their retransmitted SYNs are
    /// dropped here, else smoltcp would hand them to another listening socket (it gives a
    /// segment to the first socket that accepts it) and open a second half-open connection.
    pub(crate) syn_guard: &'a [(Ipv4Addr, u16)],
    /// Drop every SYN (no listener armed: the pool is full). The peer retries later, where
    /// smoltcp would answer with a reset.
    pub(crate) drop_syns: bool,
    /// SYNs dropped because of `syn_guard`.
    pub(crate) dup_syns: u64,
    /// SYNs dropped because of `drop_syns`.
    pub(crate) full_syns: u64,
}

/// `(source address, source port)` of a segment with SYN set and ACK clear, if `frame` is one.
fn pure_syn(frame: &[u8]) -> Option<(Ipv4Addr, u16)> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != 6 || ip.len() < ihl + 20 {
        return None;
    }
    let tcp = &ip[ihl..];
    let flags = tcp[13];
    if flags & 0x02 == 0 || flags & 0x10 != 0 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    Some((src, u16::from_be_bytes([tcp[0], tcp[1]])))
}

impl<Q: FrameQueue> Device for QueueDevice<'_, Q> {
    type RxToken<'b>
        = RxToken<RxBuf<Q::RxFrame>>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b, Q>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.pending.take()?;
        if (self.drop_syns || !self.syn_guard.is_empty())
            && let Some(peer) = pure_syn(frame.as_ref())
        {
            if self.drop_syns {
                self.full_syns += 1;
                return None;
            }
            if self.syn_guard.contains(&peer) {
                self.dup_syns += 1;
                return None;
            }
        }
        Some((
            RxToken(frame),
            TxToken {
                queue: self.queue,
                crab: self.crab,
                slo: self.slo,
                scratch: self.scratch,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        self.queue.can_transmit().then_some(TxToken {
            queue: self.queue,
            crab: self.crab,
            slo: self.slo,
            scratch: self.scratch,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.frame_mtu;
        caps.max_burst_size = None;
        if self.rx_l4_checksum_offloaded {
            caps.checksum.tcp = smoltcp::phy::Checksum::Tx;
        }
        caps
    }
}

pub(crate) struct RxToken<F>(F);

impl<F: AsRef<[u8]>> phy::RxToken for RxToken<F> {
    fn consume<R, G>(self, f: G) -> R
    where
        G: FnOnce(&[u8]) -> R,
    {
        f(self.0.as_ref())
    }
}

pub(crate) struct TxToken<'a, Q> {
    queue: &'a mut Q,
    crab: &'a mut Crab,
    slo: &'a mut SloEdge,
    scratch: &'a mut Vec<u8>,
}

impl<Q: FrameQueue> phy::TxToken for TxToken<'_, Q> {
    fn consume<R, G>(self, len: usize, f: G) -> R
    where
        G: FnOnce(&mut [u8]) -> R,
    {
        let TxToken {
            queue,
            crab,
            slo,
            scratch,
        } = self;
        if !crab.enabled() && !slo.enabled() {
            return queue.transmit(len, f);
        }
        if !crab.may_insert() {
            return queue.transmit(len, |b| {
                let r = f(b);
                slo.tx(b);
                crab.rewrite_tx(b);
                r
            });
        }
        // The frame may need the option (a SYN of ours, a SYN-ACK to a redirected SYN): build
        // it aside, then send it with or without the option's 8 bytes.
        scratch.clear();
        scratch.resize(len, 0);
        let r = f(scratch);
        match crab.tx_insert(scratch) {
            Some((seg, vip)) => queue.transmit(len + BLOCK, |b| {
                if !insert_option(scratch, &seg, vip, b) {
                    b.fill(0); // cannot happen: sizes checked by tx_insert
                }
                slo.tx(b);
            }),
            None => queue.transmit(len, |b| {
                b.copy_from_slice(scratch);
                slo.tx(b);
                crab.rewrite_tx(b);
            }),
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::pure_syn;
    use core::net::Ipv4Addr;

    fn frame(flags: u8) -> [u8; 54] {
        let mut f = [0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&50000u16.to_be_bytes());
        f[34 + 13] = flags;
        f
    }

    #[test]
    fn recognises_pure_syns_only() {
        let peer = Some((Ipv4Addr::new(10, 0, 0, 2), 50000));
        assert_eq!(pure_syn(&frame(0x02)), peer);
        assert_eq!(pure_syn(&frame(0x12)), None); // SYN-ACK
        assert_eq!(pure_syn(&frame(0x10)), None); // ACK
        let mut udp = frame(0x02);
        udp[14 + 9] = 17;
        assert_eq!(pure_syn(&udp), None);
        let mut arp = frame(0x02);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(pure_syn(&arp), None);
    }

    #[test]
    fn never_reads_past_the_frame() {
        let f = frame(0x02);
        for len in 0..f.len() {
            assert_eq!(pure_syn(&f[..len]), None, "len {len}");
        }
        for ihl in 0..16u8 {
            let mut g = frame(0x02);
            g[14] = 0x40 | ihl;
            let _ = pure_syn(&g);
        }
    }
}
