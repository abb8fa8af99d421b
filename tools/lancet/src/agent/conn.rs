//! One client connection of the agent's pool: non-blocking TCP or connected UDP socket, an
//! output buffer for partial TCP writes, and the FIFO of outstanding requests (responses on a
//! connection come back in order; for UDP a lost datagram shifts attribution, so UDP runs should
//! stay far from loss).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Instant;

use crate::workload::{Request, Transport};

enum Sock {
    Tcp(TcpStream),
    Udp(UdpSocket),
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
    pub fn connect(target: &str, transport: Transport) -> io::Result<Conn> {
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
        }
        self.pending.push_back(Pending { sent, sampled });
        Ok(sent)
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
        }
        Ok(count)
    }
}
