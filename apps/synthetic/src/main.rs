//! synthetic: the thesis's synthetic microbenchmark server (3.2). Each request's payload names a
//! service time (`ferrix_net::r2p2::synthetic`: first 8 bytes, ns, little-endian); the server
//! spins for it and replies with `reply-size` bytes. It speaks R2P2 and plain UDP.
//!
//! Ports (as in the reference multi-queue deployments): R2P2 on `port` + core id (default
//! 8000 + core) and on the shared `shared-port` (default 8100) that RSS spreads over the cores;
//! plain UDP the same way on `udp-port` + core (default 7000 + core) and `udp-shared-port`
//! (default 7100). The NIC layer has no steering by destination port (Flow Director), so every
//! core binds every port and serves whatever RSS hands it.
//!
//! Other arguments: `reply-size=N` (default: echo the request), `router=A.B.C.D:P` (send R2P2
//! FEEDBACK there after each reply, and a heartbeat, a FEEDBACK naming no request, at start
//! and every `heartbeat-ms=N`, default 100, from each core's own R2P2 port `port` + core: the
//! address the router sends that core's REQ0s to; the shared port is not announced, RSS would
//! spread a router's REQ0s over the cores behind its back; replies then go to the ARP
//! cache's MAC of the client, the requests carrying the router's), `jbsq-n=N` (the bound
//! announced in FEEDBACK, default 1),
//! `sack=1` (the SACK extension: recover lost packets of multi-packet messages),
//! `rto-us=N` (its retransmission timeout, default 1000), `gc-rtos=N` (idle RTOs before a
//! partial request or a kept reply is dropped, default 200),
//! `tcp-port=N` (serve the TCP framing of the thesis microbenchmark instead: 8-byte requests
//! naming a service time, 8-byte replies, pipelined; cores share the connections as the boot
//! policy `ferrix.sched=zygos|zygos-noipi|partitioned` says, see [`tcp`]; no UDP or R2P2 then),
//! `tcp-max-conns=N` (TCP connections per core, default 512; each holds its socket buffers),
//! `tcp-buf=N` (each TCP socket's receive and send buffer, bytes, default 4096),
//! `exit-after=N` (exit 0 after N replies in total), `idle-exit-ms=N` (TCP mode: exit 0 once no
//! request has run for N ms, after the first one), `max-service-ns=N` (cap on the
//! service time a request may ask for, default 10 ms, so that a payload that is not a
//! synthetic request cannot stall a core). Needs `ferrix.ip=` (and `ferrix.gw=`).
//!
//! At exit (`exit-after`) it prints the R2P2 requests each core served, and the guest
//! nanoseconds per R2P2 request spent in the polls that received frames (and the sends after
//! them): under QEMU's
//! `-icount shift=0` (`--profile microvm-icount`) a guest nanosecond is one instruction, so
//! with echo requests (service time 0) this is the instructions per R2P2 echo at the server
//! of driver + stack + R2P2 (`ferrix bench r2p2`).
//!
//! Client mode: `client=A.B.C.D:P count=N size=S` ([`client`]) sends R2P2 echo requests to a
//! server instead of serving.
#![no_std]
#![no_main]

extern crate alloc;

mod client;
mod tcp;

use core::fmt::Write;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrix::net::r2p2::{GuestClock, GuestTransport};
use ferrix::println;
use ferrix_net::r2p2::header::HEADER_LEN;
use ferrix_net::r2p2::message::MAX_PAYLOAD;
use ferrix_net::r2p2::{Payload, Server, ServerConfig, synthetic};

/// Replies sent, all cores.
static REPLIED: AtomicU64 = AtomicU64::new(0);
/// R2P2 requests served, per core (cores past the end count in the last slot).
static SERVED: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
const MAX_CORES: usize = 64;
/// Guest nanoseconds spent in polls (and the sends after them) that served R2P2 requests,
/// and those requests, all cores.
static BUSY_NS: AtomicU64 = AtomicU64::new(0);
static BUSY_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Set by the core that ends the VM.
static EXITING: AtomicBool = AtomicBool::new(false);

pub(crate) fn arg<T: core::str::FromStr>(name: &str) -> Option<T> {
    ferrix::args().find_map(|a| a.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The ports this app serves.
struct Ports {
    r2p2: u16,
    r2p2_shared: u16,
    udp: u16,
    udp_shared: u16,
    cores: u16,
}

impl Ports {
    fn is_r2p2(&self, p: u16) -> bool {
        p == self.r2p2_shared || (self.r2p2..self.r2p2.saturating_add(self.cores)).contains(&p)
    }

    fn all(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.cores)
            .flat_map(|c| [self.r2p2 + c, self.udp + c])
            .chain([self.r2p2_shared, self.udp_shared])
    }
}

fn spin(ns: u64) {
    // Zero-time requests (the echo benchmarks) read no clock.
    if ns == 0 {
        return;
    }
    let end = ferrix::time::now_ns().saturating_add(ns);
    while ferrix::time::now_ns() < end {
        core::hint::spin_loop();
    }
}

fn main(core: usize) {
    if let Some(server) = arg::<SocketAddrV4>("client") {
        if core == 0 {
            client::run(server);
        }
        ferrix::idle();
    }
    let cores = u16::try_from(ferrix::cpus()).unwrap_or(u16::MAX);
    let ports = Ports {
        r2p2: arg("port").unwrap_or(8000),
        r2p2_shared: arg("shared-port").unwrap_or(8100),
        udp: arg("udp-port").unwrap_or(7000),
        udp_shared: arg("udp-shared-port").unwrap_or(7100),
        cores,
    };
    let reply_size: Option<usize> = arg("reply-size");
    let exit_after: Option<u64> = arg("exit-after");
    let max_service: u64 = arg("max-service-ns").unwrap_or(10_000_000);
    // TCP mode (`tcp-port=N`): every core serves TCP under the boot policy, nothing else.
    if let Some(port) = arg::<u16>("tcp-port") {
        return serve_tcp(core, port, exit_after, max_service);
    }
    for p in ports.all() {
        ferrix::net::or_idle(
            &alloc::format!("synthetic: port {p}"),
            core,
            ferrix::net::bind_udp(p),
        );
    }
    if core == 0
        && let Ok(cfg) = ferrix::net::config()
    {
        println!(
            "synthetic: serving {} R2P2 on {}+core and {}, UDP on {}+core and {}",
            cfg.ip, ports.r2p2, ports.r2p2_shared, ports.udp, ports.udp_shared
        );
    }
    // Behind a router, requests arrive with the router's MAC: reply to the client's.
    if arg::<SocketAddrV4>("router").is_some()
        && let Err(e) = ferrix::net::set_reply_via_arp(true)
    {
        println!("synthetic: core {core}: {e}");
        ferrix::exit(1);
    }
    let cfg = ServerConfig {
        router: arg::<SocketAddrV4>("router"),
        jbsq_n: arg("jbsq-n").unwrap_or(1),
        sack: arg::<u8>("sack").is_some_and(|v| v != 0),
        rto_ns: arg::<u64>("rto-us").unwrap_or(1000) * 1000,
        // Round trips through QEMU take milliseconds: keep partial requests and kept replies
        // for 200 RTOs by default.
        gc_rtos: arg("gc-rtos").unwrap_or(200),
        ..ServerConfig::default()
    };
    let heartbeat_ns = arg::<u64>("heartbeat-ms")
        .unwrap_or(100)
        .max(1)
        .saturating_mul(1_000_000);
    let own_port = ports
        .r2p2
        .saturating_add(u16::try_from(core).unwrap_or(u16::MAX));
    let mut next_heartbeat = 0;
    let mut server = Server::new(GuestTransport::default(), GuestClock, cfg);
    let mut reply = alloc::vec::Vec::new();
    let served = &SERVED[core.min(MAX_CORES - 1)];
    loop {
        let t0 = ferrix::time::now_ns();
        let before = server.served();
        let polled = ferrix::net::poll(|d, buf| {
            let port = d.dst.port();
            let len = d.len.min(buf.len());
            if !ports.is_r2p2(port) {
                spin(
                    synthetic::service_time_ns(buf.get(..len).unwrap_or_default()).min(max_service),
                );
                REPLIED.fetch_add(1, Ordering::Relaxed);
                let n = reply_size.unwrap_or(len).min(buf.len());
                if let Some(pad) = buf.get_mut(len.min(n)..n) {
                    pad.fill(0);
                }
                return Some(n);
            }
            server.transport_mut().set_port(port);
            let datagram = buf.get(..len).unwrap_or_default();
            let req = server.handle_datagram(d.src, datagram)?;
            spin(synthetic::service_time_ns(&req.payload).min(max_service));
            let meta = req.meta;
            // Where the reply's payload comes from: a borrowed request lies at the end of the
            // datagram (after header_size bytes), a reassembled one is owned.
            let (n, borrowed_at) = match (&req.payload, reply_size) {
                (_, Some(n)) => (n, None),
                (Payload::Borrowed(b), None) => (b.len(), Some(len - b.len())),
                (Payload::Owned(v), None) => (v.len(), None),
            };
            reply.clear();
            if let (Payload::Owned(v), None) = (&req.payload, reply_size) {
                reply.extend_from_slice(v);
            }
            drop(req);
            REPLIED.fetch_add(1, Ordering::Relaxed);
            // Zero copy for one-packet replies: build it in the receive buffer.
            if n <= MAX_PAYLOAD && HEADER_LEN + n <= buf.len() {
                let body = &mut buf[HEADER_LEN..HEADER_LEN + n];
                match borrowed_at {
                    Some(at) if at != HEADER_LEN => buf.copy_within(at..at + n, HEADER_LEN),
                    Some(_) => {}
                    None if reply_size.is_some() => body.fill(0),
                    None => body.copy_from_slice(&reply),
                }
                return server.response_in_place(&meta, buf, n);
            }
            if reply.len() != n {
                reply.clear();
                match borrowed_at {
                    Some(at) => reply.extend_from_slice(buf.get(at..at + n).unwrap_or_default()),
                    None => reply.resize(n, 0),
                }
            }
            let _ = server.send_response(&meta, &reply);
            None
        });
        let frames = match polled {
            Ok(n) => n,
            Err(e) => {
                println!("synthetic: core {core}: {e}");
                ferrix::exit(1);
            }
        };
        server.transport_mut().flush();
        // Every poll that received frames counts (also those with packets of a request not
        // complete yet): with only R2P2 traffic, the ratio is the cost per request.
        if frames > 0 {
            let requests = server.served() - before;
            BUSY_NS.fetch_add(ferrix::time::now_ns() - t0, Ordering::Relaxed);
            BUSY_REQUESTS.fetch_add(requests, Ordering::Relaxed);
            served.fetch_add(requests, Ordering::Relaxed);
        }
        server.poll_timers();
        let now = ferrix::time::now_ns();
        if now >= next_heartbeat {
            server.transport_mut().set_port(own_port);
            if server.heartbeat() {
                server.transport_mut().flush();
            }
            next_heartbeat = now.saturating_add(heartbeat_ns);
        }
        if exit_after.is_some_and(|n| REPLIED.load(Ordering::Relaxed) >= n)
            && !EXITING.swap(true, Ordering::AcqRel)
        {
            let failed = server.transport_mut().failed;
            let s = server.stats();
            println!(
                "synthetic: {} replies; core {core}: r2p2 rx {} tx {} acks {} malformed {} send failures {}",
                REPLIED.load(Ordering::Relaxed),
                s.rx_packets,
                s.tx_packets,
                s.acks_sent,
                s.bad_header + s.unknown_type + s.unknown_policy + s.inconsistent,
                failed
            );
            let mut per_core = alloc::string::String::new();
            for (c, n) in SERVED
                .iter()
                .take(ferrix::cpus().min(MAX_CORES))
                .enumerate()
            {
                let _ = write!(per_core, " core {c} {}", n.load(Ordering::Relaxed));
            }
            println!("synthetic: r2p2 requests served:{per_core}");
            let requests = BUSY_REQUESTS.load(Ordering::Relaxed);
            println!(
                "synthetic: {} ns per R2P2 request in poll over {requests} requests",
                BUSY_NS.load(Ordering::Relaxed) / requests.max(1)
            );
            ferrix::exit(0);
        }
    }
}

fn serve_tcp(core: usize, port: u16, exit_after: Option<u64>, max_service_ns: u64) {
    let service = tcp::Synthetic {
        max_service_ns,
        exit_after,
        reply_size: arg("reply-size")
            .unwrap_or(tcp::MSG)
            .clamp(tcp::MSG, 1 << 30),
        idle_exit_ns: arg::<u64>("idle-exit-ms").map(|ms| ms.saturating_mul(1_000_000)),
    };
    let cfg = ferrix::net::tcp::TcpConfig {
        port,
        listeners: 8,
        max_conns: arg("tcp-max-conns").unwrap_or(512),
        rx_buf: arg::<usize>("tcp-buf").unwrap_or(4096).clamp(256, 1 << 20),
        tx_buf: arg::<usize>("tcp-buf").unwrap_or(4096).clamp(256, 1 << 20),
        ..Default::default()
    };
    if core == 0
        && let Ok(c) = ferrix::net::config()
    {
        println!(
            "synthetic: serving TCP on {}:{port}, policy {}",
            c.ip,
            ferrix::net::zygos::boot_policy()
        );
    }
    if let Err(e) = ferrix::net::serve_tcp(cfg, &service) {
        println!("synthetic: core {core}: TCP: {e}");
        ferrix::exit(1);
    }
    tcp::finish();
}

ferrix::entry!(main);
