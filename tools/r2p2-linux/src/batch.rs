//! Batched datagram I/O on one UDP socket: [`BatchReceiver`] takes up to N datagrams per
//! `recvmmsg(2)` into buffers it keeps, [`BatchTransport`] queues what the protocol sends and
//! [`flush`](BatchTransport::flush)es the queue with one `sendmmsg(2)` per N datagrams.
//!
//! Nothing is lost silently:
//! - receive: a datagram from a non-IPv4 sender or one larger than a slot is skipped and
//!   counted ([`RecvStats::not_ipv4`], [`RecvStats::truncated`]); the datagrams the kernel
//!   dropped because the socket's receive buffer was full are counted from `SO_RXQ_OVFL`
//!   ([`RecvStats::kernel_drops`]);
//! - send: a partial `sendmmsg` leaves the unsent tail queued, in order; `EAGAIN` / `ENOBUFS`
//!   (a full send buffer) and `EINTR` leave it queued for the next flush (the retry); any other
//!   error drops just the datagram it names and counts it ([`SendStats::failed`]); when the
//!   queue is full (`queue_limit`, the socket refusing everything) [`Transport::send`] fails,
//!   which the protocol sees and counts (`tx_errors`; a client request completes as
//!   `SendFailed`). [`fold_send_failures`] moves the failures found at flush time, which the
//!   protocol had already counted as sent, to its `tx_errors`.

use crate::Error;
use ferrix_net::r2p2::{R2p2Stats, SendFailed, Transport};
use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, SockaddrStorage, recvmmsg, sendmmsg,
    sendto, setsockopt, sockopt,
};
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Default datagrams per `recvmmsg` / `sendmmsg`.
pub const DEFAULT_BATCH: usize = 32;
/// Most datagrams per call: the kernel's `UIO_MAXIOV`, which caps `vlen`.
pub const MAX_BATCH: usize = 1024;
/// Bytes of one receive buffer. The largest R2P2 packet is a 255-byte header (`header_size`
/// is a `u8`) and 1464 bytes of payload; anything longer is not R2P2 and counted as truncated.
pub const SLOT: usize = 2048;
/// Default most datagrams queued for sending (see [`BatchTransport::set_queue_limit`]).
pub const DEFAULT_QUEUE_LIMIT: usize = 4096;

/// Checks a batch size given on a command line or in options.
pub fn check_batch(batch: usize) -> Result<usize, String> {
    if (1..=MAX_BATCH).contains(&batch) {
        Ok(batch)
    } else {
        Err(format!("batch size must be 1..={MAX_BATCH}, not {batch}"))
    }
}

/// Counters of a [`BatchReceiver`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecvStats {
    /// `recvmmsg` calls.
    pub calls: u64,
    /// Calls that returned datagrams.
    pub calls_with_data: u64,
    /// Datagrams handed out.
    pub datagrams: u64,
    /// Most datagrams one call returned.
    pub largest_batch: u64,
    /// Skipped: the sender was not IPv4.
    pub not_ipv4: u64,
    /// Skipped: longer than [`SLOT`].
    pub truncated: u64,
    /// Datagrams the kernel dropped at this socket (receive buffer full), as `SO_RXQ_OVFL`
    /// reports them with the next datagram queued after the drops.
    pub kernel_drops: u64,
}

/// Receives datagrams in batches of up to `batch` per `recvmmsg` into buffers it keeps.
///
/// Holds `nix`'s preallocated message headers, which contain raw pointers: the receiver is
/// not `Send`; make it on the thread that polls.
pub struct BatchReceiver {
    socket: UdpSocket,
    batch: usize,
    /// `batch` slots of [`SLOT`] bytes.
    bufs: Vec<u8>,
    headers: MultiHeaders<SockaddrStorage>,
    /// Whether the kernel wrote into `headers` (see [`Self::recv`]).
    headers_used: bool,
    /// The datagrams of the last call: source, slot, length.
    got: Vec<(SocketAddrV4, usize, usize)>,
    /// The last `SO_RXQ_OVFL` count (the kernel's running total for this socket).
    drops_seen: u32,
    stats: RecvStats,
}

impl BatchReceiver {
    /// Receives on (a clone of) `socket`, `batch` datagrams at most per call (1..=1024); turns
    /// on `SO_RXQ_OVFL` to count the kernel's drops.
    pub fn new(socket: &UdpSocket, batch: usize) -> Result<Self, Error> {
        let batch = check_batch(batch).map_err(Error::Options)?;
        let socket = socket.try_clone()?;
        setsockopt(&socket, sockopt::RxqOvfl, &1).map_err(std::io::Error::from)?;
        Ok(BatchReceiver {
            socket,
            batch,
            bufs: vec![0; batch * SLOT],
            headers: new_headers(batch),
            headers_used: false,
            got: Vec::with_capacity(batch),
            drops_seen: 0,
            stats: RecvStats::default(),
        })
    }

    /// Datagrams per call at most.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One `recvmmsg`: with `wait`, blocks (on a blocking socket, up to its read timeout)
    /// until one datagram is there and then takes what is queued (`MSG_WAITFORONE`); without,
    /// takes what is queued (`MSG_DONTWAIT`). Returns the number of datagrams now held (see
    /// [`Self::get`]), 0 when there were none (or only skipped ones). The datagrams of the
    /// previous call are gone.
    pub fn recv(&mut self, wait: bool) -> Result<usize, Error> {
        self.got.clear();
        self.stats.calls += 1;
        if self.headers_used {
            // The kernel shrank each filled header's address and control lengths to what
            // that datagram used, and nix does not restore them: fresh headers (only after a
            // call that received something, so idle polls allocate nothing for them).
            self.headers = new_headers(self.batch);
            self.headers_used = false;
        }
        let flags = if wait {
            MsgFlags::MSG_WAITFORONE
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        // Borrows the buffers for this call (nix ties them to the results): one small
        // allocation per call.
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .chunks_mut(SLOT)
            .map(|s| [IoSliceMut::new(s)])
            .collect();
        let fd = self.socket.as_raw_fd();
        let results = match recvmmsg(fd, &mut self.headers, iovs.iter_mut(), flags, None) {
            Ok(r) => r,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(0),
            Err(e) => return Err(std::io::Error::from(e).into()),
        };
        let mut n = 0u64;
        for (slot, m) in results.enumerate() {
            n += 1;
            if let Ok(cmsgs) = m.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::RxqOvfl(total) = c {
                        self.stats.kernel_drops += u64::from(total.wrapping_sub(self.drops_seen));
                        self.drops_seen = total;
                    }
                }
            }
            if m.flags.contains(MsgFlags::MSG_TRUNC) {
                self.stats.truncated += 1;
                continue;
            }
            match m.address.as_ref().and_then(SockaddrStorage::as_sockaddr_in) {
                Some(a) => self.got.push((SocketAddrV4::from(*a), slot, m.bytes)),
                None => self.stats.not_ipv4 += 1,
            }
        }
        if n > 0 {
            self.headers_used = true;
            self.stats.calls_with_data += 1;
            self.stats.largest_batch = self.stats.largest_batch.max(n);
        }
        self.stats.datagrams += self.got.len() as u64;
        Ok(self.got.len())
    }

    /// Datagrams held from the last call.
    pub fn len(&self) -> usize {
        self.got.len()
    }

    /// Whether the last call left no datagram.
    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// Datagram `i` of the last call (in arrival order): source and bytes.
    pub fn get(&self, i: usize) -> Option<(SocketAddrV4, &[u8])> {
        let &(src, slot, len) = self.got.get(i)?;
        Some((src, &self.bufs[slot * SLOT..slot * SLOT + len]))
    }

    /// The datagrams of the last call, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddrV4, &[u8])> + '_ {
        (0..self.got.len()).filter_map(|i| self.get(i))
    }

    /// Counters.
    pub fn stats(&self) -> &RecvStats {
        &self.stats
    }
}

/// Receive headers for `batch` datagrams, each with room for an IPv4 or IPv6 address and
/// one `SO_RXQ_OVFL` count.
fn new_headers(batch: usize) -> MultiHeaders<SockaddrStorage> {
    MultiHeaders::preallocate(batch, Some(nix::cmsg_space!(u32)))
}

/// Where a flush goes: one `sendmmsg` on a socket, or a fake in tests.
pub trait SendBatch {
    /// Sends a prefix of `batch` (each datagram to its address) in one call: how many went,
    /// or the error of the first one when none did.
    fn send_batch(&mut self, batch: &[(SocketAddrV4, &[u8])]) -> Result<usize, Errno>;
}

/// [`SendBatch`] on a UDP socket: `sendmmsg` with `MSG_DONTWAIT` (a batch of one datagram:
/// `sendto`, the same for the kernel minus the vector bookkeeping).
pub struct SocketSender {
    socket: UdpSocket,
    addrs: Vec<Option<SockaddrIn>>,
}

impl SocketSender {
    /// Sends from (a clone of) `socket`.
    pub fn new(socket: &UdpSocket) -> Result<Self, Error> {
        Ok(SocketSender {
            socket: socket.try_clone()?,
            addrs: Vec::new(),
        })
    }
}

impl SendBatch for SocketSender {
    fn send_batch(&mut self, batch: &[(SocketAddrV4, &[u8])]) -> Result<usize, Errno> {
        if let [(dst, bytes)] = batch {
            let fd = self.socket.as_raw_fd();
            return sendto(fd, bytes, &SockaddrIn::from(*dst), MsgFlags::MSG_DONTWAIT).map(|_| 1);
        }
        self.addrs.clear();
        self.addrs
            .extend(batch.iter().map(|&(a, _)| Some(SockaddrIn::from(a))));
        let iovs: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|&(_, b)| [IoSlice::new(b)]).collect();
        // The headers hold raw pointers (not `Send`): made per call, so that the transport
        // (inside a protocol endpoint) stays `Send`. Flushes happen only with data to send.
        let mut headers = MultiHeaders::<SockaddrIn>::preallocate(batch.len(), None);
        let sent = sendmmsg(
            self.socket.as_raw_fd(),
            &mut headers,
            &iovs,
            &self.addrs,
            [],
            MsgFlags::MSG_DONTWAIT,
        )?;
        Ok(sent.count())
    }
}

/// Counters of a [`BatchTransport`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Datagrams queued by the protocol.
    pub queued: u64,
    /// `sendmmsg` calls.
    pub calls: u64,
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Flushes stopped by `EAGAIN` / `ENOBUFS` (send buffer full) with datagrams left queued
    /// for the next flush.
    pub would_block: u64,
    /// Calls interrupted (`EINTR`) and repeated.
    pub interrupted: u64,
    /// Datagrams dropped by an error of their own (e.g. `EINVAL` for port 0, `EMSGSIZE`), or
    /// left unsent by [`BatchTransport::drain`]; the protocol had counted them as sent.
    pub failed: u64,
    /// Datagrams refused at once because the queue was full: the protocol saw `SendFailed`.
    pub rejected: u64,
    /// The last error of a failed datagram.
    pub last_error: Option<Errno>,
}

/// A [`Transport`] that queues datagrams and sends them with `sendmmsg`: on
/// [`flush`](Self::flush) (once per loop turn), and as soon as `batch` of them wait.
pub struct BatchTransport<S = SocketSender> {
    sink: S,
    batch: usize,
    queue_limit: usize,
    /// The queued datagrams' bytes, back to back.
    bytes: Vec<u8>,
    /// Each queued datagram: destination and end offset in `bytes`.
    queue: Vec<(SocketAddrV4, usize)>,
    stats: SendStats,
}

impl BatchTransport<SocketSender> {
    /// Sends from (a clone of) `socket`, up to `batch` datagrams per `sendmmsg` (1..=1024).
    pub fn new(socket: &UdpSocket, batch: usize) -> Result<Self, Error> {
        let batch = check_batch(batch).map_err(Error::Options)?;
        Ok(Self::with_sink(SocketSender::new(socket)?, batch))
    }
}

impl<S: SendBatch> BatchTransport<S> {
    /// Sends through `sink`, up to `batch` datagrams per call (at least 1).
    pub fn with_sink(sink: S, batch: usize) -> Self {
        BatchTransport {
            sink,
            batch: batch.max(1),
            queue_limit: DEFAULT_QUEUE_LIMIT,
            bytes: Vec::new(),
            queue: Vec::new(),
            stats: SendStats::default(),
        }
    }

    /// Refuse datagrams (`SendFailed`) while `limit` wait unsent (at least `batch`).
    pub fn set_queue_limit(&mut self, limit: usize) {
        self.queue_limit = limit.max(self.batch);
    }

    /// Datagrams waiting to be sent.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Counters.
    pub fn stats(&self) -> &SendStats {
        &self.stats
    }

    /// The sink (tests look at what a fake received).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Sends what is queued, in order, `batch` datagrams per call, until the queue is empty
    /// or the socket would block (the rest stays queued for the next flush). Returns the
    /// datagrams still queued.
    pub fn flush(&mut self) -> usize {
        let mut done = 0; // datagrams sent or failed, from the front
        let mut items: Vec<(SocketAddrV4, &[u8])> = Vec::new();
        while done < self.queue.len() {
            let end = (done + self.batch).min(self.queue.len());
            items.clear();
            let mut start_byte = if done == 0 { 0 } else { self.queue[done - 1].1 };
            for &(dst, stop) in &self.queue[done..end] {
                items.push((dst, &self.bytes[start_byte..stop]));
                start_byte = stop;
            }
            self.stats.calls += 1;
            match self.sink.send_batch(&items) {
                Ok(k) if k > 0 => {
                    let k = k.min(items.len());
                    self.stats.sent += k as u64;
                    done += k;
                }
                Ok(_) | Err(Errno::EAGAIN | Errno::ENOBUFS) => {
                    self.stats.would_block += 1;
                    break;
                }
                Err(Errno::EINTR) => self.stats.interrupted += 1,
                Err(e) => {
                    // The first datagram of the call is the one that failed.
                    self.stats.failed += 1;
                    self.stats.last_error = Some(e);
                    done += 1;
                }
            }
        }
        self.remove_front(done);
        self.queue.len()
    }

    /// Flushes until nothing is queued, retrying a socket that would block up to `tries`
    /// times (yielding in between); what is still queued then is dropped and counted as
    /// failed. For the end of a run.
    pub fn drain(&mut self, tries: u32) {
        for _ in 0..tries {
            if self.flush() == 0 {
                return;
            }
            std::thread::yield_now();
        }
        if self.flush() > 0 {
            self.stats.failed += self.queue.len() as u64;
            self.remove_front(self.queue.len());
        }
    }

    fn remove_front(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if n >= self.queue.len() {
            self.queue.clear();
            self.bytes.clear();
            return;
        }
        let off = self.queue[n - 1].1;
        self.queue.drain(..n);
        self.bytes.drain(..off);
        for e in &mut self.queue {
            e.1 -= off;
        }
    }
}

impl<S: SendBatch> Transport for BatchTransport<S> {
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
        if self.queue.len() >= self.queue_limit && self.flush() >= self.queue_limit {
            self.stats.rejected += 1;
            return Err(SendFailed);
        }
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        self.queue.push((dst, self.bytes.len()));
        self.stats.queued += 1;
        if self.queue.len() >= self.batch {
            self.flush();
        }
        Ok(())
    }
}

/// Moves the datagrams that failed at flush time (which the protocol counted as sent) from
/// `stats.tx_packets` to `stats.tx_errors`. Datagrams refused at once were counted as
/// errors by the protocol already.
pub fn fold_send_failures(stats: &mut R2p2Stats, tx: &SendStats) {
    stats.tx_packets = stats.tx_packets.saturating_sub(tx.failed);
    stats.tx_errors += tx.failed;
}

/// All the batching counters of one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Receive side.
    pub rx: RecvStats,
    /// Send side.
    pub tx: SendStats,
}

impl std::fmt::Display for IoStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rx {} datagrams in {} recvmmsg calls ({} with data, largest {}; kernel drops {}, not IPv4 {}, truncated {}); tx {} datagrams in {} sendmmsg calls (would block {}, failed {}, refused {})",
            self.rx.datagrams,
            self.rx.calls,
            self.rx.calls_with_data,
            self.rx.largest_batch,
            self.rx.kernel_drops,
            self.rx.not_ipv4,
            self.rx.truncated,
            self.tx.sent,
            self.tx.calls,
            self.tx.would_block,
            self.tx.failed,
            self.tx.rejected,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy};
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::time::Duration;

    fn bind() -> (UdpSocket, SocketAddrV4) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let SocketAddr::V4(a) = s.local_addr().unwrap() else {
            unreachable!()
        };
        (s, a)
    }

    /// Waits until a datagram sent to `sync` after others arrives: on loopback, the kernel
    /// has then queued the datagrams sent before it.
    fn barrier(from: &UdpSocket) {
        let (sync, addr) = bind();
        from.send_to(b"sync", addr).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(sync.recv(&mut b).unwrap(), 4);
    }

    /// Receives until `n` datagrams came (or a generous number of empty polls passed).
    fn recv_n(rx: &mut BatchReceiver, n: usize) -> Vec<(SocketAddrV4, Vec<u8>)> {
        let mut got = Vec::new();
        for _ in 0..1_000_000 {
            if got.len() >= n {
                break;
            }
            if rx.recv(false).unwrap() == 0 {
                std::thread::yield_now();
            }
            got.extend(rx.iter().map(|(a, d)| (a, d.to_vec())));
        }
        got
    }

    #[test]
    fn recv_takes_a_whole_batch_in_one_call() {
        let (rs, raddr) = bind();
        let (tx, taddr) = bind();
        let mut rx = BatchReceiver::new(&rs, 32).unwrap();
        assert_eq!(rx.recv(false).unwrap(), 0, "nothing queued yet");
        for i in 0..32u8 {
            tx.send_to(&vec![i; usize::from(i) + 1], raddr).unwrap();
        }
        barrier(&tx);
        assert_eq!(rx.recv(false).unwrap(), 32);
        for (i, (src, d)) in rx.iter().enumerate() {
            assert_eq!(src, taddr);
            assert_eq!(d, &vec![i as u8; i + 1][..]);
        }
        assert_eq!(rx.get(32), None);
        let st = rx.stats().clone();
        assert_eq!((st.calls, st.calls_with_data, st.largest_batch), (2, 1, 32));
        assert_eq!((st.datagrams, st.kernel_drops, st.truncated), (32, 0, 0));
        // The buffers are reused: the next call replaces the datagrams.
        tx.send_to(b"again", raddr).unwrap();
        barrier(&tx);
        assert_eq!(rx.recv(false).unwrap(), 1);
        assert_eq!(rx.get(0), Some((taddr, &b"again"[..])));
    }

    #[test]
    fn oversized_and_non_ipv4_datagrams_are_skipped_and_counted() {
        let (rs, raddr) = bind();
        let (tx, _) = bind();
        let mut rx = BatchReceiver::new(&rs, 4).unwrap();
        tx.send_to(&[1; SLOT + 1], raddr).unwrap();
        tx.send_to(&[2; SLOT], raddr).unwrap();
        barrier(&tx);
        let got = recv_n(&mut rx, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), SLOT);
        assert_eq!(rx.stats().truncated, 1);
        // An IPv6 socket's senders are not IPv4.
        let Ok(v6) = UdpSocket::bind("[::1]:0") else {
            eprintln!("skipping the IPv6 half: no ::1");
            return;
        };
        let mut rx6 = BatchReceiver::new(&v6, 4).unwrap();
        let t6 = UdpSocket::bind("[::1]:0").unwrap();
        t6.send_to(b"v6", v6.local_addr().unwrap()).unwrap();
        for _ in 0..1_000_000 {
            if rx6.recv(false).unwrap() > 0 || rx6.stats().not_ipv4 > 0 {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!((rx6.len(), rx6.stats().not_ipv4), (0, 1));
    }

    #[test]
    fn flush_sends_the_queue_in_order_with_one_sendmmsg() {
        let (rs, raddr) = bind();
        let (ts, taddr) = bind();
        let mut rx = BatchReceiver::new(&rs, 64).unwrap();
        let mut tx = BatchTransport::new(&ts, 64).unwrap();
        for i in 0..50u32 {
            tx.send(raddr, &[b"hd", &i.to_be_bytes()]).unwrap();
        }
        assert_eq!((tx.pending(), tx.stats().calls), (50, 0));
        barrier(&ts);
        assert_eq!(rx.recv(false).unwrap(), 0, "queued, not sent");
        assert_eq!(tx.flush(), 0);
        assert_eq!((tx.stats().calls, tx.stats().sent), (1, 50));
        let got = recv_n(&mut rx, 50);
        assert_eq!(got.len(), 50);
        for (i, (src, d)) in got.iter().enumerate() {
            assert_eq!(*src, taddr);
            assert_eq!(d[..2], *b"hd");
            assert_eq!(d[2..], (i as u32).to_be_bytes());
        }
        // A full batch goes at once: 50 datagrams in batches of 8 are 6 calls while queued
        // and one for the 2 left.
        let mut tx = BatchTransport::new(&ts, 8).unwrap();
        for i in 0..50u32 {
            tx.send(raddr, &[&i.to_be_bytes()]).unwrap();
        }
        assert_eq!((tx.stats().calls, tx.pending()), (6, 2));
        assert_eq!(tx.flush(), 0);
        assert_eq!((tx.stats().calls, tx.stats().sent), (7, 50));
        let got = recv_n(&mut rx, 50);
        let order: Vec<u32> = got
            .iter()
            .map(|(_, d)| u32::from_be_bytes(d[..4].try_into().unwrap()))
            .collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_datagram_the_kernel_refuses_is_counted_and_the_rest_go() {
        let (rs, raddr) = bind();
        let (ts, _) = bind();
        let mut rx = BatchReceiver::new(&rs, 8).unwrap();
        let mut tx = BatchTransport::new(&ts, 8).unwrap();
        let port0 = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
        for (i, dst) in [raddr, raddr, port0, raddr, raddr].into_iter().enumerate() {
            tx.send(dst, &[&[i as u8]]).unwrap();
        }
        assert_eq!(tx.flush(), 0);
        let st = tx.stats().clone();
        // sendmmsg sends 2 and stops at port 0 (EINVAL); that datagram is dropped and
        // counted, the next call sends the last 2.
        assert_eq!((st.sent, st.failed, st.calls), (4, 1, 3));
        assert_eq!(st.last_error, Some(Errno::EINVAL));
        let got: Vec<u8> = recv_n(&mut rx, 4).iter().map(|(_, d)| d[0]).collect();
        assert_eq!(got, [0, 1, 3, 4]);
        let mut stats = R2p2Stats {
            tx_packets: 5,
            ..R2p2Stats::default()
        };
        fold_send_failures(&mut stats, &st);
        assert_eq!((stats.tx_packets, stats.tx_errors), (4, 1));
    }

    /// A sink that answers each call from a script (then takes everything) and keeps what
    /// it took.
    #[derive(Default)]
    struct Fake {
        script: VecDeque<Result<usize, Errno>>,
        took: Vec<(SocketAddrV4, Vec<u8>)>,
        calls: Vec<usize>,
    }

    impl SendBatch for Fake {
        fn send_batch(&mut self, batch: &[(SocketAddrV4, &[u8])]) -> Result<usize, Errno> {
            self.calls.push(batch.len());
            let k = match self.script.pop_front() {
                Some(Ok(k)) => k.min(batch.len()),
                Some(Err(e)) => return Err(e),
                None => batch.len(),
            };
            self.took
                .extend(batch[..k].iter().map(|&(a, d)| (a, d.to_vec())));
            Ok(k)
        }
    }

    fn dst() -> SocketAddrV4 {
        SocketAddrV4::new([10, 0, 0, 1].into(), 8000)
    }

    #[test]
    fn partial_sends_and_a_full_send_buffer_lose_nothing() {
        let mut fake = Fake::default();
        fake.script.extend([
            Ok(3),
            Err(Errno::EAGAIN),
            Err(Errno::EINTR),
            Ok(2),
            Err(Errno::ENOBUFS),
            Err(Errno::EMSGSIZE),
        ]);
        let mut tx = BatchTransport::with_sink(fake, 16);
        for i in 0..10u8 {
            tx.send(dst(), &[&[i], &[i; 3]]).unwrap();
        }
        // 3 sent, then the socket would block: 7 stay queued, in order.
        assert_eq!(tx.flush(), 7);
        assert_eq!((tx.stats().sent, tx.stats().would_block), (3, 1));
        // EINTR is repeated at once; 2 more; then ENOBUFS: 5 wait.
        assert_eq!(tx.flush(), 5);
        assert_eq!((tx.stats().interrupted, tx.stats().sent), (1, 5));
        // The next datagram is too large for the kernel: dropped and counted; the rest go.
        assert_eq!(tx.flush(), 0);
        let st = tx.stats().clone();
        assert_eq!((st.sent, st.failed, st.queued), (9, 1, 10));
        assert_eq!(st.last_error, Some(Errno::EMSGSIZE));
        let firsts: Vec<u8> = tx.sink().took.iter().map(|(_, d)| d[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 3, 4, 6, 7, 8, 9]);
        assert!(
            tx.sink()
                .took
                .iter()
                .all(|(a, d)| *a == dst() && d.len() == 4)
        );
        // Each call starts at the first datagram not yet sent.
        assert_eq!(tx.sink().calls, [10, 7, 7, 7, 5, 5, 4]);
    }

    #[test]
    fn a_full_queue_fails_the_send_which_the_protocol_sees() {
        let mut fake = Fake::default();
        fake.script.extend((0..100).map(|_| Err(Errno::EAGAIN)));
        let mut tx = BatchTransport::with_sink(fake, 4);
        tx.set_queue_limit(8);
        for i in 0..8u8 {
            tx.send(dst(), &[&[i]]).unwrap();
        }
        assert_eq!(tx.send(dst(), &[&[8]]), Err(SendFailed));
        assert_eq!((tx.pending(), tx.stats().rejected), (8, 1));
        // A client on it: its request completes as SendFailed, counted as a tx error.
        let mut client = Client::new(tx, crate::StdClock::default(), ClientConfig::default());
        client
            .send_request(dst(), b"hello", Policy::LbRoute, 1_000_000, 7)
            .unwrap();
        let c = client.next_completion().unwrap();
        assert_eq!((c.ctx, c.outcome), (7, Outcome::SendFailed));
        assert_eq!(client.stats().tx_errors, 1);
        // Once the socket takes datagrams again, the queued ones go, in order.
        client.transport_mut().sink.script.clear();
        client.transport_mut().drain(10);
        let tx = client.transport_mut();
        assert_eq!(
            (tx.pending(), tx.stats().sent, tx.stats().failed),
            (0, 8, 0)
        );
        let firsts: Vec<u8> = tx.sink().took.iter().map(|(_, d)| d[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn drain_counts_what_never_went() {
        let mut fake = Fake::default();
        fake.script.extend((0..100).map(|_| Err(Errno::EAGAIN)));
        let mut tx = BatchTransport::with_sink(fake, 4);
        tx.send(dst(), &[b"x"]).unwrap();
        tx.drain(3);
        assert_eq!((tx.pending(), tx.stats().failed), (0, 1));
    }

    #[test]
    fn kernel_drops_of_a_full_receive_buffer_are_counted() {
        let (rs, raddr) = bind();
        let (ts, _) = bind();
        setsockopt(&rs, sockopt::RcvBuf, &1).unwrap(); // the kernel's minimum
        let mut rx = BatchReceiver::new(&rs, 32).unwrap();
        let mut tx = BatchTransport::new(&ts, 32).unwrap();
        let n = 200;
        for i in 0..n {
            tx.send(raddr, &[&[1; 500], &(i as u32).to_be_bytes()])
                .unwrap();
        }
        assert_eq!(tx.flush(), 0);
        assert_eq!(tx.stats().sent, n);
        barrier(&ts);
        let mut got = 0u64;
        while rx.recv(false).unwrap() > 0 {
            got += rx.len() as u64;
        }
        assert!(got < n, "a minimal buffer took all {n} datagrams");
        // The kernel reports its drop count with the next datagram it queues.
        ts.send_to(b"marker", raddr).unwrap();
        let mut marker = false;
        for _ in 0..1_000_000 {
            if marker {
                break;
            }
            if rx.recv(false).unwrap() == 0 {
                std::thread::yield_now();
            }
            got += rx.len() as u64;
            marker = rx.iter().any(|(_, d)| d == b"marker");
        }
        assert!(marker);
        let drops = rx.stats().kernel_drops;
        assert!(drops > 0);
        assert_eq!(got + drops, n + 1, "received {got}, dropped {drops}");
    }

    #[test]
    fn batch_sizes_are_checked() {
        let (s, _) = bind();
        assert!(BatchReceiver::new(&s, 0).is_err());
        assert!(BatchTransport::new(&s, MAX_BATCH + 1).is_err());
        assert_eq!(check_batch(1), Ok(1));
        assert_eq!(check_batch(MAX_BATCH), Ok(MAX_BATCH));
    }
}
