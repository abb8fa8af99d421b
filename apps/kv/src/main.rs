//! kv: the key-value store of issue 12 served over TCP on every core through
//! `ferrix::net::serve_tcp` (ZygOS: a connection's events run on its home core or on an idle
//! core that steals it). The store and the protocols are the host-tested `ferrix-kv` crate.
//!
//! One listening port, both protocols: `serve_tcp` takes one `TcpConfig` with one port, so a
//! connection's protocol is told by its first bytes (`ferrix_kv::sniff`): `*` is Redis RESP
//! (multibulk, what `redis-cli` and `redis-benchmark` send), 0x80 memcached binary, a first
//! word that is a (lowercase) memcached command memcached ASCII, anything else a Redis inline
//! command (`PING` typed at telnet). `proto=resp` serves RESP only, for lowercase inline
//! commands memcached also has (`get k`).
//! Forward two host ports to the one guest port to give each client its usual port:
//! `--net user:tcp:6379:6379,tcp:11211:6379`.
//!
//! Arguments (a bad value prints one line and exits 1):
//! - `port=N` listening port (default 6379). `redis-port=N` / `memcached-port=N` are accepted
//!   only when they name that same port (there is one listener).
//! - `proto=auto|resp|memcache` (default `auto`: sniff the first bytes as above).
//! - `mem-mb=N` memory limit for items (keys + values + 96 B each; default 64, lowered to what
//!   the kernel heap can hold, which is a quarter of guest RAM, at most 64 MiB: asking for more
//!   than that explicitly is an error).
//! - `item-max=N` largest item in bytes (default 1 MiB, as memcached's `-I`).
//! - `unix-time=N` the Unix time (seconds) at boot, for memcached's absolute exptimes and
//!   `stats time`; default 0 (the guest has no wall clock), so relative expiry always works and
//!   absolute exptimes count from 1970.
//! - `max-conns=N` TCP connections per core (default 128).
//! - `idle-exit-ms=N` exit 0 once no connection event or datagram has come for N ms, after
//!   the first one (tests and demos; default: serve forever).
//! - `udp-port=N` memcached over UDP on port N (default 0: off, as memcached since 1.5.6,
//!   because a spoofed UDP request can make a server flood a victim).
//! - `r2p2-port=N` R2P2 (one RESP command per message) on port N (default 8000; 0: off);
//!   `router=IP:PORT` sends FEEDBACK and heartbeats (`heartbeat-ms=N`, default 100) to an
//!   R2P2 router, `jbsq-n=N` the bound it announces (default 1). See `datagram.rs`.
//! - `busy-stats` print the scheduler's counters summed over cores (`kv: busy: events E
//!   busy_ns B app_ns A`) whenever a client half-closes its connection: `ferrix bench kv`
//!   reads them between phases under `-icount`, where a guest ns is one instruction.
//!
//! Ownership across cores: the store is one `Sharded` (shards >= cores), every command locks
//! one shard for its own work only (see `ferrix_kv::sharded`). A connection's state (its codec,
//! unconsumed input, unsent output) lives in one table keyed by flow id; ZygOS runs one event
//! of a connection at a time, so the event takes the state out of the table, works on it
//! without holding the table's lock, and puts it back.
#![no_std]
#![no_main]

extern crate alloc;

mod conn;
mod datagram;

use ferrix::println;
use ferrix_kv::store::{DEFAULT_ITEM_SIZE_MAX, ITEM_OVERHEAD};
use ferrix_kv::{Sharded, StoreConfig};

/// What the app runs with, parsed once (on whichever core gets there first).
pub struct Setup {
    pub port: u16,
    pub proto: conn::ProtoChoice,
    pub store: Sharded,
    pub unix_at_boot: u64,
    pub item_max: usize,
    pub max_conns: usize,
    pub idle_exit_ns: Option<u64>,
    pub datagrams: datagram::DatagramSetup,
    /// The most bytes all connections' input buffers may hold together.
    pub conn_budget: usize,
    pub busy_stats: bool,
}

static SETUP: spin::Once<Setup> = spin::Once::new();

/// The accept backlog: redis-benchmark opens its 50 connections at once, and a SYN that finds
/// no listener is refused.
const LISTENERS: usize = 64;
/// Each TCP socket's buffers.
const RX_BUF: usize = 8192;
const TX_BUF: usize = 8192;

/// Prints one line and exits 1.
fn bad(msg: core::fmt::Arguments<'_>) -> ! {
    println!("kv: {msg}");
    ferrix::exit(1);
}

/// The value of `name=` parsed, `None` when absent; a value that does not parse exits 1.
fn arg<T: core::str::FromStr>(name: &str) -> Option<T> {
    let v = ferrix::args().find_map(|a| a.strip_prefix(name)?.strip_prefix('='))?;
    match v.parse() {
        Ok(x) => Some(x),
        Err(_) => bad(format_args!("bad value {name}={v}")),
    }
}

fn setup() -> Setup {
    let port: u16 = arg("port").unwrap_or(6379);
    for (name, v) in [
        ("redis-port", arg::<u16>("redis-port")),
        ("memcached-port", arg::<u16>("memcached-port")),
    ] {
        if let Some(v) = v
            && v != port
        {
            bad(format_args!(
                "{name}={v}: one listening port only (serve_tcp takes one); both protocols are served on port={port}, told apart by the first byte"
            ));
        }
    }
    if port == 0 {
        bad(format_args!("bad value port=0"));
    }
    let proto = match ferrix::args().find_map(|a| a.strip_prefix("proto=")) {
        None | Some("auto") => conn::ProtoChoice::Auto,
        Some("resp") => conn::ProtoChoice::Resp,
        Some("memcache") => conn::ProtoChoice::Memcache,
        Some(v) => bad(format_args!("bad value proto={v} (auto, resp or memcache)")),
    };
    let max_conns: usize = arg("max-conns").unwrap_or(128);
    if !(1..=4096).contains(&max_conns) {
        bad(format_args!("bad value max-conns={max_conns} (1..=4096)"));
    }
    // What the heap can give items: half of what is free once each core's TCP socket pool
    // (allocated by serve_tcp, after this) is taken out; connection state and the table's own
    // overhead take the other half.
    let (_, free) = ferrix::mem::kernel::heap_usage();
    let pools = ferrix::cpus() * (max_conns + LISTENERS) * (RX_BUF + TX_BUF);
    let budget_mb = free.saturating_sub(pools) / 2 / (1 << 20);
    // Connections' input buffers get half of the other half (the rest: codecs, output,
    // the connection table, the allocator's own waste).
    let conn_budget = free.saturating_sub(pools) / 4;
    let mem_mb: usize = match arg::<usize>("mem-mb") {
        Some(m) if m == 0 || m > budget_mb => bad(format_args!(
            "bad value mem-mb={m}: the kernel heap has room for 1..={budget_mb} MiB of items (give the VM more --mem)"
        )),
        Some(m) => m,
        None => 64.min(budget_mb).max(1),
    };
    let mem_limit = mem_mb << 20;
    let shards = (ferrix::cpus() * 4).max(8);
    let item_max: usize = arg("item-max").unwrap_or(DEFAULT_ITEM_SIZE_MAX);
    if item_max < 2 * ITEM_OVERHEAD || item_max > mem_limit / shards {
        bad(format_args!(
            "bad value item-max={item_max}: between {} and {} (the memory limit over {shards} shards)",
            2 * ITEM_OVERHEAD,
            mem_limit / shards
        ));
    }
    let unix_at_boot: u64 = arg("unix-time").unwrap_or(0);
    let udp_port: u16 = arg("udp-port").unwrap_or(0);
    let r2p2_port: u16 = arg("r2p2-port").unwrap_or(8000);
    if udp_port != 0 && udp_port == r2p2_port {
        bad(format_args!(
            "udp-port={udp_port} and r2p2-port={r2p2_port}: one UDP port each"
        ));
    }
    let router: Option<core::net::SocketAddrV4> = arg("router");
    if router.is_some() && r2p2_port == 0 {
        bad(format_args!("router= needs R2P2 (r2p2-port is 0)"));
    }
    let datagrams = datagram::DatagramSetup {
        udp_port,
        r2p2_port,
        r2p2: ferrix_net::r2p2::ServerConfig {
            router,
            jbsq_n: arg("jbsq-n").unwrap_or(1),
            // Round trips through QEMU take milliseconds: keep partial requests for 200 RTOs.
            gc_rtos: 200,
            ..Default::default()
        },
        heartbeat_ns: arg::<u64>("heartbeat-ms")
            .unwrap_or(100)
            .max(1)
            .saturating_mul(1_000_000),
    };
    let store = Sharded::new(
        shards,
        StoreConfig {
            mem_limit,
            item_size_max: item_max,
            ..StoreConfig::default()
        },
    );
    println!(
        "kv: port {port} ({}), {mem_mb} MiB in {shards} shards, item-max {item_max}, {} cores",
        match proto {
            conn::ProtoChoice::Auto => "redis and memcached",
            conn::ProtoChoice::Resp => "redis",
            conn::ProtoChoice::Memcache => "memcached",
        },
        ferrix::cpus()
    );
    match (udp_port, r2p2_port) {
        (0, 0) => {}
        (0, r) => println!("kv: r2p2 on udp port {r}"),
        (u, 0) => println!("kv: memcached udp on port {u}"),
        (u, r) => println!("kv: memcached udp on port {u}, r2p2 on udp port {r}"),
    }
    Setup {
        port,
        proto,
        store,
        unix_at_boot,
        item_max,
        max_conns,
        idle_exit_ns: arg::<u64>("idle-exit-ms").map(|ms| ms.saturating_mul(1_000_000)),
        datagrams,
        conn_budget,
        busy_stats: ferrix::args().any(|a| a == "busy-stats"),
    }
}

fn main(core: usize) {
    let s = SETUP.call_once(setup);
    let cfg = ferrix::net::tcp::TcpConfig {
        port: s.port,
        listeners: LISTENERS,
        max_conns: s.max_conns,
        rx_buf: RX_BUF,
        tx_buf: TX_BUF,
        seed: 0x5eed ^ core as u64,
        ..Default::default()
    };
    if let Err(e) = datagram::open(core, &s.datagrams) {
        // No NIC or no address is the same on every core (serve_tcp reports it below).
        if ferrix::net::config().is_ok() {
            println!("kv: core {core}: {e}");
            ferrix::exit(1);
        }
    }
    let service = conn::Kv { setup: s };
    if core == 0 {
        println!(
            "kv: listening on port {}, policy {}",
            s.port,
            ferrix::net::zygos::boot_policy()
        );
    }
    if let Err(e) = ferrix::net::serve_tcp(cfg, &service) {
        // The same for every core (no NIC, no address): one line, from core 0.
        if core == 0 {
            println!("kv: TCP: {e}");
            ferrix::exit(1);
        }
        ferrix::idle();
    }
    finish();
}

/// Cores that returned from `serve_tcp` (after `idle-exit-ms`).
static DONE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The last core out prints a summary; the VM exits 0 when every core's entry has returned.
fn finish() {
    use core::sync::atomic::Ordering;
    if DONE.fetch_add(1, Ordering::AcqRel) + 1 == ferrix::cpus() {
        let (items, bytes) = SETUP.get().map_or((0, 0), |s| {
            let mut b = &s.store;
            let (_, items, bytes) = ferrix_kv::Backend::totals(&mut b);
            (items, bytes)
        });
        println!(
            "kv: idle, exiting: {items} items, {bytes} bytes; connections closed for want of buffer memory {}",
            conn::BUDGET_CLOSES.load(Ordering::Relaxed)
        );
        let (send_failed, malformed) = datagram::r2p2_totals();
        println!(
            "kv: datagrams: memcached udp {} r2p2 {} (read-only refused {} bad {} malformed packets {malformed} send failures {send_failed}); deferred drops {}",
            datagram::UDP_REQUESTS.load(Ordering::Relaxed),
            datagram::R2P2_REQUESTS.load(Ordering::Relaxed),
            datagram::R2P2_RO_REFUSED.load(Ordering::Relaxed),
            datagram::R2P2_BAD.load(Ordering::Relaxed),
            ferrix::net::zygos::deferred_udp_drops(),
        );
    }
}

ferrix::entry!(main);
