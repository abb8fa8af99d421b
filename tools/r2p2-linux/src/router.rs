//! The R2P2 router as a Linux process (`r2p2-router`): the `ferrix-router` logic between two
//! UDP sockets (REQ0s on one port, FEEDBACK on another) and a raw IPv4 socket that forwards
//! each REQ0 with the **client** as its source (IP and UDP port), as the guest router does
//! by rewriting the frame's destination: servers answer clients directly and take the rest
//! of a multi-packet request straight from them (spec r2p2.md, "Exchanges").
//!
//! Forwarding needs `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)` (implies `IP_HDRINCL`: we write
//! the IPv4 header, the kernel fills its checksum and id), so root or `CAP_NET_RAW`; without
//! it the router stops with one line saying so. DROP replies go from the REQ0 socket (the
//! router's own address). The loop: non-blocking receive on both sockets (FEEDBACK first, so
//! slot counts are current when REQ0s are placed), the router's timers, and a short sleep
//! after a few empty turns. SIGINT / SIGTERM end it (through a signalfd: no handler, no
//! `unsafe`), as does `--duration`.

use crate::Error;
use ferrix_router::{Output, Router, RouterConfig, RouterStats};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, sendto, socket,
};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// IPv4 header length (no options) and UDP header length.
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// Empty turns before the loop sleeps, and how long.
const SPIN_TURNS: u32 = 64;
const IDLE_SLEEP: Duration = Duration::from_micros(50);

/// Where the router listens and how long it runs.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// REQ0s from clients.
    pub listen: SocketAddrV4,
    /// FEEDBACK (and heartbeats) from servers.
    pub feedback: SocketAddrV4,
    /// Stop after this long (None: until SIGINT / SIGTERM).
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RouterReport {
    /// The router's counters.
    pub stats: RouterStats,
    /// One line per server still listed: address, bound, outstanding, assigned, completed,
    /// expired.
    pub servers: Vec<String>,
    /// Forwarded REQ0s the raw socket refused, and DROPs the UDP socket refused.
    pub send_failures: u64,
}

/// The raw socket, or why it cannot be had.
pub fn raw_socket() -> Result<OwnedFd, Error> {
    socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Raw,
    )
    .map_err(|e| match e {
        nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => Error::Options(format!(
            "forwarding with the client as source needs a raw socket: run as root or with CAP_NET_RAW (socket(AF_INET, SOCK_RAW, IPPROTO_RAW): {e})"
        )),
        e => Error::Io(e.into()),
    })
}

/// Writes into `buf` an IPv4/UDP datagram from `src` to `dst` carrying `payload` (checksum
/// of the IPv4 header left to the kernel, UDP checksum computed); returns its length.
fn build(buf: &mut Vec<u8>, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Option<usize> {
    let total = IP_LEN + UDP_LEN + payload.len();
    let total16 = u16::try_from(total).ok()?;
    buf.clear();
    buf.resize(total, 0);
    let ip = &mut buf[..IP_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src.ip().octets());
    ip[16..20].copy_from_slice(&dst.ip().octets());
    buf[IP_LEN + UDP_LEN..].copy_from_slice(payload);
    ferrix_net::udp::write_header(
        &mut buf[IP_LEN..],
        *src.ip(),
        *dst.ip(),
        src.port(),
        dst.port(),
    )
    .then_some(total)
}

fn bind_nonblocking(addr: SocketAddrV4) -> Result<UdpSocket, Error> {
    let s = crate::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Takes one datagram from `s` if one is queued.
fn try_recv(s: &UdpSocket, buf: &mut [u8]) -> Result<Option<(SocketAddrV4, usize)>, Error> {
    match s.recv_from(buf) {
        Ok((n, SocketAddr::V4(src))) => Ok(Some((src, n))),
        Ok(_) => Ok(None),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Sends what the router produced.
struct Sender<'a> {
    raw: &'a OwnedFd,
    udp: &'a UdpSocket,
    buf: Vec<u8>,
    failures: u64,
}

impl Sender<'_> {
    fn send(&mut self, o: Output<'_>) {
        let ok = match o {
            Output::Forward {
                client,
                server,
                datagram,
            } => match build(&mut self.buf, client, server, datagram) {
                Some(n) => sendto(
                    self.raw.as_raw_fd(),
                    &self.buf[..n],
                    &SockaddrIn::from(server),
                    MsgFlags::empty(),
                )
                .is_ok(),
                None => false,
            },
            Output::Drop { client, message } => self.udp.send_to(&message, client).is_ok(),
        };
        if !ok {
            self.failures += 1;
        }
    }
}

/// Runs the router until `opts.duration` passes or SIGINT / SIGTERM arrives.
pub fn run_router(cfg: RouterConfig, opts: &RouterOptions) -> Result<RouterReport, Error> {
    let raw = raw_socket()?;
    let req = bind_nonblocking(opts.listen)?;
    let fb = bind_nonblocking(opts.feedback)?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().map_err(|e| Error::Io(e.into()))?;
    let signals =
        SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK).map_err(|e| Error::Io(e.into()))?;
    println!(
        "r2p2-router: {} on {}, FEEDBACK on {}",
        cfg.balance,
        req.local_addr()?,
        fb.local_addr()?
    );
    let start = Instant::now();
    let now_ns = || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut router = Router::new(cfg);
    let mut tx = Sender {
        raw: &raw,
        udp: &req,
        buf: Vec::with_capacity(2048),
        failures: 0,
    };
    let mut buf = vec![0u8; crate::MAX_DATAGRAM];
    let mut idle = 0u32;
    loop {
        let mut busy = false;
        // FEEDBACK first (thesis 10.5.1), a bounded number per turn so REQ0s are not starved.
        for _ in 0..64 {
            let Some((src, n)) = try_recv(&fb, &mut buf)? else {
                break;
            };
            busy = true;
            router.feedback(now_ns(), src, &buf[..n], &mut |o| tx.send(o));
        }
        for _ in 0..64 {
            let Some((src, n)) = try_recv(&req, &mut buf)? else {
                break;
            };
            busy = true;
            router.handle(now_ns(), src, &buf[..n], &mut |o| tx.send(o));
        }
        router.poll(now_ns(), &mut |o| tx.send(o));
        if signals.read_signal().ok().flatten().is_some()
            || opts.duration.is_some_and(|d| start.elapsed() >= d)
        {
            break;
        }
        if busy {
            idle = 0;
        } else {
            idle += 1;
            if idle >= SPIN_TURNS {
                std::thread::sleep(IDLE_SLEEP);
            } else {
                std::thread::yield_now();
            }
        }
    }
    let servers = router
        .servers()
        .as_slice()
        .iter()
        .map(|s| {
            format!(
                "server {} bound {} outstanding {} assigned {} completed {} expired {}",
                s.addr(),
                s.bound(),
                s.outstanding(),
                s.assigned,
                s.completed,
                s.expired
            )
        })
        .collect();
    Ok(RouterReport {
        stats: router.stats().clone(),
        servers,
        send_failures: tx.failures,
    })
}
