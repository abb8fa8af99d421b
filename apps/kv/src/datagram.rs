//! The datagram frontends, on each core's own poll (`TcpService::on_udp`, run by `serve_tcp`
//! in the kernel's loop):
//! - memcached over UDP on `udp-port` (8-byte frame header, ASCII or binary commands, replies
//!   split into datagrams of at most 1400 bytes: `ferrix_kv::memcache::udp`);
//! - R2P2 on `r2p2-port`: one RESP command per request message, its RESP reply as the reply
//!   message (`ferrix_kv::r2p2`). A write sent with the read-only policy
//!   (REPLICATED_ROUTE_NO_SE) is refused with an error reply, since a router or HovercRaft
//!   would run it on one replica only.
//!
//! One-datagram replies are built in the receive buffer and sent back in place; longer
//! replies are queued on the core's [`GuestTransport`] and sent from `after_poll`, when the
//! endpoint is free. Each core has its own R2P2 server (reassembly of multi-packet requests,
//! ACKs, FEEDBACK to `router=` when set); the store is the shared `Sharded` one.

use crate::Setup;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrix::net::Datagram;
use ferrix::net::r2p2::{GuestClock, GuestTransport};
use ferrix_kv::memcache::udp::{self, UdpConfig};
use ferrix_kv::memcache::udp_get;
use ferrix_kv::resp::reply;
use ferrix_net::r2p2::header::HEADER_LEN;
use ferrix_net::r2p2::{Policy, Server, ServerConfig, Transport};

/// Cores with datagram state (the kernel's limit).
const MAX_CORES: usize = 64;

/// The datagram ports and the R2P2 server settings.
pub struct DatagramSetup {
    /// memcached UDP (0: off).
    pub udp_port: u16,
    /// R2P2 (0: off).
    pub r2p2_port: u16,
    pub r2p2: ServerConfig,
    /// Heartbeat period to the router (ns).
    pub heartbeat_ns: u64,
}

/// One core's datagram state.
struct PerCore {
    server: Server<GuestTransport, GuestClock>,
    next_heartbeat: u64,
    /// The memcached UDP codec's buffers.
    udp: udp::Scratch,
}

static CORES: [spin::Mutex<Option<PerCore>>; MAX_CORES] =
    [const { spin::Mutex::new(None) }; MAX_CORES];

/// Per core: something beyond the in-place GET path ran there (R2P2, a memcached reply of
/// several datagrams), or a router is configured, so `after_poll` has timers and queues to
/// look at; until then it returns without taking the core's lock.
static USED: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// The core's state, marked used.
fn used_core() -> Option<spin::MutexGuard<'static, Option<PerCore>>> {
    let core = ferrix::core_id();
    USED.get(core)?.store(true, Ordering::Relaxed);
    Some(CORES.get(core)?.lock())
}

/// Counters over all cores (`stats` at exit).
pub static UDP_REQUESTS: AtomicU64 = AtomicU64::new(0);
pub static R2P2_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Writes refused because they came with the read-only policy.
pub static R2P2_RO_REFUSED: AtomicU64 = AtomicU64::new(0);
/// R2P2 requests that were not exactly one RESP command.
pub static R2P2_BAD: AtomicU64 = AtomicU64::new(0);

/// Binds this core's datagram ports and creates its state; `Err` is a one-line reason.
pub fn open(core: usize, d: &DatagramSetup) -> Result<(), alloc::string::String> {
    use alloc::format;
    // The state first: a core without its own queue pair still gets datagrams steered to it.
    let slot = CORES
        .get(core)
        .ok_or_else(|| format!("core {core}: too many cores"))?;
    *slot.lock() = Some(PerCore {
        server: Server::new(GuestTransport::default(), GuestClock, d.r2p2.clone()),
        next_heartbeat: 0,
        udp: udp::Scratch::default(),
    });
    if d.r2p2.router.is_some()
        && let Some(u) = USED.get(core)
    {
        u.store(true, Ordering::Relaxed); // heartbeats from the start
    }
    for (what, port) in [("udp-port", d.udp_port), ("r2p2-port", d.r2p2_port)] {
        if port != 0 {
            ferrix::net::bind_udp(port).map_err(|e| format!("{what}={port}: {e}"))?;
        }
    }
    if d.r2p2.router.is_some() {
        // Requests forwarded by a router carry its MAC: reply to the client's.
        ferrix::net::set_reply_via_arp(true).map_err(|e| format!("router=: {e}"))?;
    }
    Ok(())
}

/// One datagram to a bound port (the kernel's `on_udp`).
pub fn on_udp(s: &Setup, d: &Datagram, buf: &mut [u8], now_ns: u64) -> Option<usize> {
    let len = d.len.min(buf.len());
    let port = d.dst.port();
    let now = ferrix_kv::Clock::new(now_ns, s.unix_at_boot);
    let mut backend = &s.store;
    if port == s.datagrams.udp_port {
        UDP_REQUESTS.fetch_add(1, Ordering::Relaxed);
        let cfg = UdpConfig {
            max_reply: s.item_max + 4096,
            ..UdpConfig::default()
        };
        // Single-key GETs are answered in place, without the core's codec state.
        if let Some(n) = udp_get::get_in_place(buf, len, &cfg, &mut backend, now) {
            return Some(n);
        }
        let mut slot = used_core()?;
        let pc = slot.as_mut()?;
        let PerCore { server, udp, .. } = pc;
        let t = server.transport_mut();
        t.set_port(port);
        // Every datagram but the last goes out through the transport (after the poll); the
        // last goes back in place of the request, which the codec is done with by then.
        let sent = udp::handle_datagram_in(udp, buf.get(..len)?, &cfg, &mut backend, now, |dg| {
            if !udp::is_last(dg) {
                let _ = t.send(d.src, &[dg]);
            }
        });
        if sent == 0 {
            return None;
        }
        let last = udp.last_datagram();
        let n = last.len().min(buf.len());
        buf[..n].copy_from_slice(&last[..n]);
        return Some(n);
    }
    if port != s.datagrams.r2p2_port {
        return None;
    }
    let mut slot = used_core()?;
    let pc = slot.as_mut()?;
    pc.server.transport_mut().set_port(port);
    let req = pc.server.handle_datagram(d.src, buf.get(..len)?)?;
    R2P2_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let meta = req.meta;
    let mut out = alloc::vec::Vec::new();
    let body: &[u8] = &req.payload;
    if meta.policy == Policy::ReplicatedRouteNoSe && !ferrix_kv::r2p2::is_read_only(body) {
        R2P2_RO_REFUSED.fetch_add(1, Ordering::Relaxed);
        reply::error(
            &mut out,
            b"ERR write command sent with the read-only policy (REPLICATED_ROUTE_NO_SE)",
        );
    } else if ferrix_kv::r2p2::handle_request(body, &mut out, &mut backend, now).is_err() {
        R2P2_BAD.fetch_add(1, Ordering::Relaxed);
    }
    drop(req);
    if let Some(dst) = buf.get_mut(HEADER_LEN..HEADER_LEN + out.len()) {
        dst.copy_from_slice(&out);
        if let Some(n) = pc.server.response_in_place(&meta, buf, out.len()) {
            return Some(n);
        }
    }
    let _ = pc.server.send_response(&meta, &out);
    None
}

/// After each poll (endpoint free): sends what was queued, runs R2P2's timers, and sends
/// heartbeats to the router.
pub fn after_poll(s: &Setup) {
    let core = ferrix::core_id();
    let Some(slot) = CORES.get(core) else { return };
    if !USED.get(core).is_some_and(|u| u.load(Ordering::Relaxed)) {
        return;
    }
    let mut slot = slot.lock();
    let Some(pc) = slot.as_mut() else { return };
    pc.server.poll_timers();
    if s.datagrams.r2p2.router.is_some() {
        let now = ferrix::time::now_ns();
        if now >= pc.next_heartbeat {
            pc.server.transport_mut().set_port(s.datagrams.r2p2_port);
            pc.server.heartbeat();
            pc.next_heartbeat = now.saturating_add(s.datagrams.heartbeat_ns);
        }
    }
    pc.server.transport_mut().flush();
}

/// Summed R2P2 counters of every core: (send failures, malformed packets).
pub fn r2p2_totals() -> (u64, u64) {
    let mut t = (0, 0);
    for slot in &CORES {
        if let Some(pc) = slot.lock().as_mut() {
            let st = pc.server.stats();
            t.1 += st.bad_header + st.unknown_type + st.unknown_policy + st.inconsistent;
            t.0 += pc.server.transport_mut().failed;
        }
    }
    t
}
