//! One client connection of the agent's pool: non-blocking TCP or connected UDP socket, an
//! output buffer for partial TCP writes, and the FIFO of outstanding requests (responses on a
//! connection come back in order; for UDP a lost datagram shifts attribution, so UDP runs should
//! stay far from loss). R2P2 matches replies to requests by request id, so its requests need not
//! complete in order and a lost reply ends in that request's own timeout.
//!
//! With kernel timestamps, a TCP or UDP connection also follows its stream for
//! [`super::stamps`]: sampled requests are recorded with the `OPT_ID` id of the send call that
//! carried their last byte, TX stamps are read from the error queue on every poll after a send,
//! responses take the RX stamp of the receive that completed them, and a sample is emitted once
//! its stamps are complete (or after [`TX_STAMP_GRACE`], in user-space time).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Instant;

use nix::errno::Errno;

use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy};
use r2p2_linux::{StdClock, UdpTransport};

use super::kernel_ts::Kernel;
pub use super::kernel_ts::{KERNEL_PROBATION, Sample, TX_STAMP_GRACE};
use super::options::StampKind;
use super::sockopt;
use super::stamps::KStamp;
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

/// A pooled connection.
pub struct Conn {
    sock: Sock,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    /// Receive scratch buffer, allocated once: zeroing a fresh 16-64 KiB array on every poll
    /// was a fifth of the load loop's time (perf, issue 13) and delayed sends.
    rbuf: Vec<u8>,
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
            rbuf: vec![0u8; 65536],
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
            k.abandon(done);
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
                let buf = &mut self.rbuf[..16384];
                loop {
                    let got = match &mut self.kernel {
                        Some(k) => sockopt::recv_stamped(s, buf, &mut k.cmsg)?.map(|(n, st)| {
                            k.rx.on_recv(n as u64, st);
                            n
                        }),
                        None => match s.read(buf) {
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
                let buf = &mut self.rbuf[..];
                loop {
                    let got = match &mut self.kernel {
                        Some(k) => sockopt::recv_stamped(s, buf, &mut k.cmsg)
                            .map(|g| g.map(|(_, st)| Some(st).filter(|st| !st.is_empty()))),
                        None => match s.recv(buf) {
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
