//! One client connection of the agent's pool: non-blocking TCP or connected UDP socket, an
//! output buffer for partial TCP writes, and the FIFO of outstanding requests (responses on a
//! connection come back in order; for UDP a lost datagram shifts attribution, so UDP runs should
//! stay far from loss). R2P2 matches replies to requests by request id, so its requests need not
//! complete in order and a lost reply ends in that request's own timeout.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy};
use r2p2_linux::{StdClock, UdpTransport};

use super::options::StampKind;
use super::sockopt::{self, ErrQueue};
use super::stamps::{self, KStamp, NoKernel, RxTracker, TxTracker};
use crate::workload::{Request, Transport};

enum Sock {
    Tcp(TcpStream),
    Udp(UdpSocket),
    R2p2(Box<R2p2Sock>),
}

/// An R2P2 client on its own UDP socket: the protocol logic of `ferrix_net::r2p2::Client`
/// driven over Linux by `r2p2-linux`'s transport and clock.
struct R2p2Sock {
    socket: UdpSocket,
    client: Client<UdpTransport, StdClock>,
    server: SocketAddrV4,
    timeout_ns: u64,
    /// Outstanding requests by the context number given to the client.
    inflight: HashMap<u64, Pending>,
    next_ctx: u64,
    buf: Vec<u8>,
    /// Requests that ended without a reply (timeout, DROP, send failure).
    failed: u64,
}

impl R2p2Sock {
    fn connect(target: &str, timeout_ns: u64) -> io::Result<R2p2Sock> {
        let server = target
            .to_socket_addrs()?
            .find_map(|a| match a {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => None,
            })
            .ok_or_else(|| io::Error::other(format!("{target} has no IPv4 address")))?;
        let local = if server.ip().is_loopback() {
            SocketAddrV4::new([127, 0, 0, 1].into(), 0)
        } else {
            SocketAddrV4::new([0, 0, 0, 0].into(), 0)
        };
        let socket = r2p2_linux::bind(local).map_err(io::Error::other)?;
        socket.set_nonblocking(true)?;
        let transport = UdpTransport::new(&socket).map_err(io::Error::other)?;
        let client = Client::new(transport, StdClock::default(), ClientConfig::default());
        Ok(R2p2Sock {
            socket,
            client,
            server,
            timeout_ns,
            inflight: HashMap::new(),
            next_ctx: 0,
            buf: vec![0u8; r2p2_linux::MAX_DATAGRAM],
            failed: 0,
        })
    }

    fn send(&mut self, req: &[u8], p: Pending) -> io::Result<()> {
        let ctx = self.next_ctx;
        self.next_ctx += 1;
        self.client
            .send_request(self.server, req, Policy::LbRoute, self.timeout_ns, ctx)
            .map_err(|e| io::Error::other(format!("R2P2 request: {e:?}")))?;
        self.inflight.insert(ctx, p);
        Ok(())
    }

    fn poll(&mut self, mut done: impl FnMut(Pending, Instant)) -> io::Result<usize> {
        let mut count = 0;
        loop {
            let got = r2p2_linux::recv(&self.socket, &mut self.buf).map_err(io::Error::other)?;
            let now = Instant::now();
            match got {
                Some((src, n)) => self.client.handle_datagram(src, &self.buf[..n]),
                None => self.client.poll_timers(),
            }
            while let Some(c) = self.client.next_completion() {
                let Some(p) = self.inflight.remove(&c.ctx) else {
                    continue;
                };
                match c.outcome {
                    Outcome::Success(_) => {
                        done(p, now);
                        count += 1;
                    }
                    Outcome::Timeout | Outcome::Dropped | Outcome::SendFailed => self.failed += 1,
                }
            }
            if got.is_none() {
                return Ok(count);
            }
        }
    }
}

/// How a connection measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnOptions {
    /// Ask for kernel (`SO_TIMESTAMPING`) stamps.
    pub kernel_stamps: bool,
    /// Set `SO_BUSY_POLL` to this many µs (0 = leave the socket's default).
    pub busy_poll_us: u32,
}

/// An outstanding request: when it was sent, whether its latency is sampled, and (kernel
/// stamps) the token of its stamp record.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub sent: Instant,
    pub sampled: bool,
    token: Option<u64>,
}

/// One finished latency sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User-space send time (orders samples).
    pub sent: Instant,
    pub latency_us: f64,
    /// Which stamps timed it.
    pub kind: StampKind,
    /// Kernel stamps were wanted but could not be used for this sample.
    pub fallback: Option<NoKernel>,
}

/// How long a completed sample waits for its TX stamp (a NIC may report it after the reply
/// arrived) before it falls back to user-space stamps.
pub const TX_STAMP_GRACE: Duration = Duration::from_millis(20);

/// Samples after which a connection that never got a kernel TX stamp turns kernel stamps off.
/// (Missing RX stamps do not count: the kernel stamps received packets only while some socket
/// asks for it, and switches that on and off asynchronously; see [`sockopt::rx_stamp_keeper`].)
pub const KERNEL_PROBATION: u64 = 32;

/// Sampled requests whose stamps are tracked at most (older ones were never answered).
const MAX_RECORDS: usize = 4096;

/// A sampled request's stamps, from send to finalisation.
#[derive(Debug)]
struct Rec {
    token: u64,
    sent: Instant,
    /// The `OPT_ID` id (64-bit offset) of the send call that carried its last byte.
    key: Option<u64>,
    tx: KStamp,
    /// User-space receive time and the kernel RX stamp, once the response is complete.
    rx: Option<(Instant, Option<KStamp>)>,
}

/// Kernel-timestamp state of a TCP or UDP connection (see [`super::stamps`]).
#[derive(Debug)]
struct Kernel {
    tx: TxTracker<u64>,
    rx: RxTracker,
    /// TCP: bytes of complete responses so far.
    consumed: u64,
    recs: VecDeque<Rec>,
    next_token: u64,
    cmsg: Vec<u8>,
    /// Something was sent since the error queue was last found empty.
    sent_since_drain: bool,
    finalized: u64,
    kernel_used: u64,
    /// TX stamps that matched a sampled request.
    tx_seen: u64,
    /// Ids are no longer certain (a UDP send failed): match nothing more, and turn kernel
    /// stamps off at the next poll, for this reason.
    poisoned: Option<String>,
}

impl Kernel {
    fn new() -> Kernel {
        Kernel {
            tx: TxTracker::default(),
            rx: RxTracker::default(),
            consumed: 0,
            recs: VecDeque::new(),
            next_token: 0,
            cmsg: sockopt::cmsg_buffer(),
            sent_since_drain: false,
            finalized: 0,
            kernel_used: 0,
            tx_seen: 0,
            poisoned: None,
        }
    }

    /// Stop matching stamps at once; the connection turns them off at its next poll.
    fn poison(&mut self, why: String) {
        for r in &mut self.recs {
            r.key = None;
            r.tx = KStamp::default();
        }
        self.poisoned.get_or_insert(why);
    }

    /// A request of `len` stream units is appended; returns its token when sampled.
    fn push(&mut self, len: u64, sampled: bool, sent: Instant) -> Option<u64> {
        let token = sampled.then(|| {
            let t = self.next_token;
            self.next_token += 1;
            if self.recs.len() >= MAX_RECORDS {
                self.recs.pop_front();
            }
            self.recs.push_back(Rec {
                token: t,
                sent,
                key: None,
                tx: KStamp::default(),
                rx: None,
            });
            t
        });
        self.tx.push(len, token);
        token
    }

    /// A send call took `n` units.
    fn wrote(&mut self, n: u64) {
        if n == 0 || self.poisoned.is_some() {
            return;
        }
        self.sent_since_drain = true;
        for (token, key) in self.tx.wrote(n) {
            if let Some(r) = self.recs.iter_mut().find(|r| r.token == token) {
                r.key = Some(key);
            }
        }
    }

    fn responded(&mut self, token: u64, at: Instant, rx: Option<KStamp>) -> bool {
        match self.recs.iter_mut().find(|r| r.token == token) {
            Some(r) => {
                r.rx = Some((at, rx));
                true
            }
            None => false,
        }
    }

    /// Read the error queue dry, merging TX stamps into the records they belong to.
    fn drain<F: AsRawFd>(&mut self, fd: &F) -> io::Result<()> {
        let awaiting = self.recs.iter().any(|r| r.key.is_some() && r.tx.is_empty());
        if !(self.sent_since_drain || awaiting) {
            return Ok(());
        }
        loop {
            match sockopt::read_errqueue(fd, &mut self.cmsg)? {
                ErrQueue::Empty => break,
                ErrQueue::Other => {}
                ErrQueue::Tx(id, s) => {
                    let Some(off) = self.tx.unwrap(id).filter(|_| self.poisoned.is_none()) else {
                        continue;
                    };
                    for r in self.recs.iter_mut().filter(|r| r.key == Some(off)) {
                        r.tx.merge(s);
                        self.tx_seen += 1;
                    }
                }
            }
        }
        self.sent_since_drain = false;
        Ok(())
    }

    /// Emit the samples whose stamps are complete (or waited long enough).
    fn finalize(&mut self, now: Instant, force: bool, done: &mut impl FnMut(Sample)) {
        let mut i = 0;
        while i < self.recs.len() {
            let r = &self.recs[i];
            let Some((rx_at, rx)) = r.rx else {
                i += 1;
                continue;
            };
            let user = rx_at.duration_since(r.sent);
            let res = stamps::pick(r.tx, rx, user.as_nanos() as f64);
            let best = match rx {
                Some(s) if s.hw.is_some() => StampKind::Hardware,
                _ => StampKind::KernelSoftware,
            };
            let ready = force
                || matches!(res, Ok((_, k)) if k == best)
                || res == Err(NoKernel::MissingRx)
                || now.duration_since(rx_at) > TX_STAMP_GRACE;
            if !ready {
                i += 1;
                continue;
            }
            let sample = match res {
                Ok((latency_us, kind)) => {
                    self.kernel_used += 1;
                    Sample {
                        sent: r.sent,
                        latency_us,
                        kind,
                        fallback: None,
                    }
                }
                Err(e) => Sample {
                    sent: r.sent,
                    latency_us: user.as_secs_f64() * 1e6,
                    kind: StampKind::Software,
                    fallback: Some(e),
                },
            };
            self.finalized += 1;
            self.recs.remove(i);
            done(sample);
        }
    }
}

/// A pooled connection.
pub struct Conn {
    sock: Sock,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    pub pending: VecDeque<Pending>,
    kernel: Option<Kernel>,
    /// Why this connection uses user-space stamps although kernel ones were asked for.
    fallbacks: Vec<String>,
    /// Outcome of `SO_BUSY_POLL` (µs read back), if it was asked for.
    busy_poll: Option<Result<u32, Errno>>,
}

impl Conn {
    /// Connect to `target`; R2P2 requests time out after `r2p2_timeout_ns`.
    pub fn connect(
        target: &str,
        transport: Transport,
        r2p2_timeout_ns: u64,
        opts: ConnOptions,
    ) -> io::Result<Conn> {
        let sock = match transport {
            Transport::Tcp => {
                let s = TcpStream::connect(target)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                Sock::Tcp(s)
            }
            Transport::Udp => {
                let s = UdpSocket::bind("127.0.0.1:0").or_else(|_| UdpSocket::bind("0.0.0.0:0"))?;
                s.connect(target)?;
                s.set_nonblocking(true)?;
                Sock::Udp(s)
            }
            Transport::R2p2 => Sock::R2p2(Box::new(R2p2Sock::connect(target, r2p2_timeout_ns)?)),
        };
        let mut c = Conn {
            sock,
            out: Vec::new(),
            inbuf: Vec::with_capacity(4096),
            pending: VecDeque::new(),
            kernel: None,
            fallbacks: Vec::new(),
            busy_poll: None,
        };
        if opts.busy_poll_us > 0 {
            c.busy_poll = Some(match &c.sock {
                Sock::Tcp(s) => sockopt::set_busy_poll(s, opts.busy_poll_us),
                Sock::Udp(s) => sockopt::set_busy_poll(s, opts.busy_poll_us),
                Sock::R2p2(r) => sockopt::set_busy_poll(&r.socket, opts.busy_poll_us),
            });
        }
        if opts.kernel_stamps {
            // Before anything is written: TCP ids then count from our first byte.
            let r = match &c.sock {
                Sock::Tcp(s) => sockopt::enable_timestamps(s),
                Sock::Udp(s) => sockopt::enable_timestamps(s),
                Sock::R2p2(_) => {
                    c.fallbacks.push(
                        "R2P2 transport: its socket is driven by r2p2-linux and not timestamped"
                            .into(),
                    );
                    return Ok(c);
                }
            };
            match r {
                Ok(()) => c.kernel = Some(Kernel::new()),
                Err(e) => c
                    .fallbacks
                    .push(format!("setsockopt(SO_TIMESTAMPING) failed: {e}")),
            }
        }
        Ok(c)
    }

    /// Stop using kernel stamps on this connection (samples in flight fall back).
    fn drop_kernel(&mut self, why: String, done: &mut impl FnMut(Sample)) {
        if let Some(mut k) = self.kernel.take() {
            for r in &mut k.recs {
                r.tx = KStamp::default();
            }
            k.finalize(Instant::now(), true, done);
            let _ = match &self.sock {
                Sock::Tcp(s) => sockopt::disable_timestamps(s),
                Sock::Udp(s) => sockopt::disable_timestamps(s),
                Sock::R2p2(_) => Ok(()),
            };
            self.fallbacks.push(why);
        }
    }

    /// Why this connection does not use kernel stamps (empty if it does, or was not asked).
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Outcome of `SO_BUSY_POLL`, if it was asked for: the value read back, or the error.
    pub fn busy_poll(&self) -> Option<Result<u32, Errno>> {
        self.busy_poll
    }

    /// Whether kernel stamps are in use on this connection.
    pub fn kernel_stamps(&self) -> bool {
        self.kernel.is_some()
    }

    /// Send one encoded request now; returns the software TX timestamp (taken just before the
    /// system call).
    pub fn send(&mut self, req: &[u8], sampled: bool) -> io::Result<Instant> {
        let sent = Instant::now();
        let mut token = None;
        match &mut self.sock {
            Sock::Tcp(s) => {
                if let Some(k) = &mut self.kernel {
                    token = k.push(req.len() as u64, sampled, sent);
                }
                if self.out.is_empty() {
                    match s.write(req) {
                        Ok(n) => {
                            if let Some(k) = &mut self.kernel {
                                k.wrote(n as u64);
                            }
                            self.out.extend_from_slice(&req[n..]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            self.out.extend_from_slice(req)
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    self.out.extend_from_slice(req);
                }
            }
            Sock::Udp(s) => match s.send(req) {
                Ok(_) => {
                    if let Some(k) = &mut self.kernel {
                        token = k.push(1, sampled, sent);
                        k.wrote(1);
                    }
                }
                // A full socket buffer drops the datagram: treat it like loss on the wire. Whether
                // the failed call used up a timestamp id depends on the kernel version, so ids
                // are no longer certain: stop using kernel stamps here rather than risk
                // attributing a neighbour's.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(k) = &mut self.kernel {
                        k.poison(
                            "a UDP send failed (socket buffer full): timestamp ids uncertain, \
                             kernel stamps off on this connection"
                                .to_owned(),
                        );
                    }
                    return Ok(sent);
                }
                Err(e) => return Err(e),
            },
            Sock::R2p2(r) => {
                r.send(
                    req,
                    Pending {
                        sent,
                        sampled,
                        token: None,
                    },
                )?;
                return Ok(sent);
            }
        }
        self.pending.push_back(Pending {
            sent,
            sampled,
            token,
        });
        Ok(sent)
    }

    /// Requests sent and not yet answered (or timed out, for R2P2).
    pub fn outstanding(&self) -> usize {
        match &self.sock {
            Sock::R2p2(r) => r.inflight.len(),
            _ => self.pending.len(),
        }
    }

    /// R2P2 requests that ended without a reply (timeout, DROP, send failure); 0 for others.
    pub fn failed(&self) -> u64 {
        match &self.sock {
            Sock::R2p2(r) => r.failed,
            _ => 0,
        }
    }

    /// A response to `p` completed at `at` (kernel RX stamp `rx`).
    fn completed(
        kernel: &mut Option<Kernel>,
        p: Pending,
        at: Instant,
        rx: Option<KStamp>,
        done: &mut impl FnMut(Sample),
    ) {
        if !p.sampled {
            return;
        }
        if let (Some(k), Some(t)) = (kernel.as_mut(), p.token)
            && k.responded(t, at, rx)
        {
            return;
        }
        done(Sample {
            sent: p.sent,
            latency_us: at.duration_since(p.sent).as_secs_f64() * 1e6,
            kind: StampKind::Software,
            fallback: None,
        });
    }

    /// Flush pending output and read whatever arrived; calls `done` for each finished latency
    /// sample (with kernel stamps possibly a few polls after its response). Returns how many
    /// responses completed.
    pub fn poll(&mut self, req: &Request, mut done: impl FnMut(Sample)) -> io::Result<usize> {
        let mut count = 0;
        match &mut self.sock {
            Sock::Tcp(s) => {
                if !self.out.is_empty() {
                    match s.write(&self.out) {
                        Ok(n) => {
                            if let Some(k) = &mut self.kernel {
                                k.wrote(n as u64);
                            }
                            self.out.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                let mut buf = [0u8; 16384];
                loop {
                    let got = match &mut self.kernel {
                        Some(k) => {
                            sockopt::recv_stamped(s, &mut buf, &mut k.cmsg)?.map(|(n, st)| {
                                k.rx.on_recv(n as u64, st);
                                n
                            })
                        }
                        None => match s.read(&mut buf) {
                            Ok(n) => Some(n),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                            Err(e) => return Err(e),
                        },
                    };
                    let Some(n) = got else { break };
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "server closed the connection",
                        ));
                    }
                    let now = Instant::now();
                    self.inbuf.extend_from_slice(&buf[..n]);
                    while let Some(len) = req.response_len(&self.inbuf) {
                        self.inbuf.drain(..len);
                        let rx = self.kernel.as_mut().and_then(|k| {
                            k.consumed += len as u64;
                            k.rx.complete(k.consumed)
                        });
                        if let Some(p) = self.pending.pop_front() {
                            Self::completed(&mut self.kernel, p, now, rx, &mut done);
                            count += 1;
                        }
                    }
                }
                if let Some(k) = &mut self.kernel {
                    k.drain(s)?;
                }
            }
            Sock::Udp(s) => {
                let mut buf = [0u8; 65536];
                loop {
                    let got = match &mut self.kernel {
                        Some(k) => sockopt::recv_stamped(s, &mut buf, &mut k.cmsg)
                            .map(|g| g.map(|(_, st)| Some(st).filter(|st| !st.is_empty()))),
                        None => match s.recv(&mut buf) {
                            Ok(_) => Ok(Some(None)),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                            Err(e) => Err(e),
                        },
                    };
                    match got {
                        Ok(Some(rx)) => {
                            let now = Instant::now();
                            if let Some(p) = self.pending.pop_front() {
                                Self::completed(&mut self.kernel, p, now, rx, &mut done);
                                count += 1;
                            }
                        }
                        Ok(None) => break,
                        // ICMP port unreachable from an earlier datagram: keep going.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                        Err(e) => return Err(e),
                    }
                }
                if let Some(k) = &mut self.kernel {
                    k.drain(s)?;
                }
            }
            Sock::R2p2(r) => {
                count = r.poll(|p, at| Self::completed(&mut None, p, at, None, &mut done))?
            }
        }
        if let Some(k) = &mut self.kernel {
            k.finalize(Instant::now(), false, &mut done);
            if let Some(why) = k.poisoned.take() {
                self.drop_kernel(why, &mut done);
            } else if k.finalized >= KERNEL_PROBATION && k.tx_seen == 0 {
                let why = format!(
                    "no kernel TX stamp for the first {KERNEL_PROBATION} samples: kernel stamps \
                     off on this connection"
                );
                self.drop_kernel(why, &mut done);
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(k: &mut Kernel, now: Instant, force: bool) -> Vec<Sample> {
        let mut out = Vec::new();
        k.finalize(now, force, &mut |s| out.push(s));
        out
    }

    #[test]
    fn samples_wait_for_their_tx_stamp_then_fall_back() {
        let t0 = Instant::now();
        let mut k = Kernel::new();
        // Two sampled 10-byte requests written in one call: both carry id 19.
        let a = k.push(10, true, t0).unwrap();
        let b = k.push(10, true, t0).unwrap();
        k.wrote(20);
        assert!(k.recs.iter().all(|r| r.key == Some(19)));
        let rx_at = t0 + Duration::from_micros(50);
        assert!(k.responded(a, rx_at, Some(KStamp::sw(30_000))));
        assert!(k.responded(b, rx_at, Some(KStamp::sw(40_000))));
        // No TX stamp yet: nothing is final within the grace period.
        assert!(collect(&mut k, rx_at, false).is_empty());
        // The stamp arrives: both samples are kernel-timed.
        for r in k.recs.iter_mut().filter(|r| r.key == Some(19)) {
            r.tx.merge(KStamp::sw(10_000));
        }
        let s = collect(&mut k, rx_at, false);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].latency_us, s[0].kind),
            (20.0, StampKind::KernelSoftware)
        );
        assert_eq!(
            (s[1].latency_us, s[1].kind),
            (30.0, StampKind::KernelSoftware)
        );
        // A third sample whose stamp never comes falls back after the grace period.
        let c = k.push(10, true, t0).unwrap();
        k.wrote(10);
        assert!(k.responded(c, rx_at, Some(KStamp::sw(30_000))));
        let late = rx_at + TX_STAMP_GRACE + Duration::from_millis(1);
        let s = collect(&mut k, late, false);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, StampKind::Software);
        assert_eq!(s[0].fallback, Some(NoKernel::MissingTx));
        assert!((s[0].latency_us - 50.0).abs() < 1e-9);
    }

    #[test]
    fn missing_rx_stamp_falls_back_at_once_and_poison_stops_matching() {
        let t0 = Instant::now();
        let mut k = Kernel::new();
        let a = k.push(1, true, t0).unwrap();
        k.wrote(1);
        assert!(k.responded(a, t0 + Duration::from_micros(5), None));
        let s = collect(&mut k, t0, false);
        assert_eq!(s[0].fallback, Some(NoKernel::MissingRx));
        // After a failed UDP send ids are uncertain: no key is assigned any more.
        let b = k.push(1, true, t0).unwrap();
        k.poison("test".into());
        k.wrote(1);
        assert!(k.recs.iter().all(|r| r.key.is_none()));
        assert!(k.responded(b, t0, Some(KStamp::sw(1))));
        let s = collect(&mut k, t0, true);
        assert_eq!(s[0].fallback, Some(NoKernel::MissingTx));
    }
}
