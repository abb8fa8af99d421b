//! One client connection of the agent's pool: non-blocking TCP or connected UDP socket, an
//! output buffer for partial TCP writes, and the FIFO of outstanding requests (responses on a
//! connection come back in order; for UDP a lost datagram shifts attribution, so UDP runs should
//! stay far from loss). R2P2 matches replies to requests by request id, so its requests need not
//! complete in order and a lost reply ends in that request's own timeout.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Instant;

use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy};
use r2p2_linux::{StdClock, UdpTransport};

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

/// An outstanding request: when it was sent and whether its latency is sampled.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub sent: Instant,
    pub sampled: bool,
}

/// A pooled connection.
pub struct Conn {
    sock: Sock,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    pub pending: VecDeque<Pending>,
}

impl Conn {
    /// Connect to `target`.
    /// Connect to `target`; R2P2 requests time out after `r2p2_timeout_ns`.
    pub fn connect(target: &str, transport: Transport, r2p2_timeout_ns: u64) -> io::Result<Conn> {
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
        Ok(Conn {
            sock,
            out: Vec::new(),
            inbuf: Vec::with_capacity(4096),
            pending: VecDeque::new(),
        })
    }

    /// Send one encoded request now; returns the software TX timestamp (taken just before the
    /// system call).
    pub fn send(&mut self, req: &[u8], sampled: bool) -> io::Result<Instant> {
        let sent = Instant::now();
        match &mut self.sock {
            Sock::Tcp(s) => {
                if self.out.is_empty() {
                    match s.write(req) {
                        Ok(n) => self.out.extend_from_slice(&req[n..]),
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
                Ok(_) => {}
                // A full socket buffer drops the datagram: treat it like loss on the wire.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
                Err(e) => return Err(e),
            },
            Sock::R2p2(r) => {
                r.send(req, Pending { sent, sampled })?;
                return Ok(sent);
            }
        }
        self.pending.push_back(Pending { sent, sampled });
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

    /// Flush pending output and read whatever arrived; calls `done(pending, rx_time)` for each
    /// complete response. Returns how many completed.
    pub fn poll(
        &mut self,
        req: &Request,
        mut done: impl FnMut(Pending, Instant),
    ) -> io::Result<usize> {
        let mut count = 0;
        match &mut self.sock {
            Sock::Tcp(s) => {
                if !self.out.is_empty() {
                    match s.write(&self.out) {
                        Ok(n) => {
                            self.out.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                let mut buf = [0u8; 16384];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "server closed the connection",
                            ));
                        }
                        Ok(n) => {
                            let now = Instant::now();
                            self.inbuf.extend_from_slice(&buf[..n]);
                            while let Some(len) = req.response_len(&self.inbuf) {
                                self.inbuf.drain(..len);
                                if let Some(p) = self.pending.pop_front() {
                                    done(p, now);
                                    count += 1;
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            Sock::Udp(s) => {
                let mut buf = [0u8; 65536];
                loop {
                    match s.recv(&mut buf) {
                        Ok(_) => {
                            let now = Instant::now();
                            if let Some(p) = self.pending.pop_front() {
                                done(p, now);
                                count += 1;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // ICMP port unreachable from an earlier datagram: keep going.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            Sock::R2p2(r) => count = r.poll(done)?,
        }
        Ok(count)
    }
}
