//! One connection: its codec, the input not consumed yet, the output not sent yet, driven by
//! `serve_tcp`'s events on whatever core runs the flow.
//!
//! Input: every event moves what `Flow::data` holds into the connection's own buffer (so a
//! command larger than the kernel's 16 KiB inbox still completes), up to a cap of one item
//! plus one command line; past the cap the bytes stay in the kernel (TCP's window then closes).
//! Output: the codec's replies go out through `Flow::send`; while some are left unsent (the
//! flow's send backlog is full) no more commands are fed, and `FlowEvent::Sent` resumes. When
//! the codec says close (quit, fatal protocol error), the connection closes once its output is
//! queued.

use crate::Setup;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use ferrix::net::{Flow, FlowEvent, TcpService};
use ferrix_kv::memcache::Memcache;
use ferrix_kv::resp::Resp;
use ferrix_kv::sniff::{Protocol, sniff};
use ferrix_kv::{Clock, Codec, Limits, Progress};

/// How a connection's protocol is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoChoice {
    /// By its first bytes (`ferrix_kv::sniff`): `*` RESP, 0x80 memcached binary, a memcached
    /// command word memcached ASCII, anything else a Redis inline command.
    Auto,
    Resp,
    Memcache,
}

enum Proto {
    Undecided,
    Resp(Resp),
    Memcache(Memcache),
}

/// A connection's state between events.
struct Conn {
    proto: Proto,
    input: Vec<u8>,
    out: Vec<u8>,
    /// Bytes of `out` already queued with `Flow::send`.
    sent: usize,
    /// Close once `out` is queued.
    closing: bool,
    /// The peer sent FIN: serve what is buffered, then close.
    peer_closed: bool,
    /// What this connection's input buffer counts in [`INPUT_HELD`] (its capacity).
    held: usize,
    /// What its output buffer counts in [`OUTPUT_HELD`] (its capacity).
    out_held: usize,
}

/// Bytes all connections' output buffers hold (their capacities), against the same budget
/// as input: replies waiting for a client that does not read them. A connection whose new
/// replies would pass it (beyond [`INPUT_FREE`]) gets the protocol's out-of-memory error and
/// is closed (counted in [`BUDGET_CLOSES`]).
static OUTPUT_HELD: AtomicUsize = AtomicUsize::new(0);

/// Bytes all connections' input buffers hold (their capacities), against
/// `Setup::conn_budget`: a connection whose partial command cannot grow within the budget
/// is closed with an error (counted in [`BUDGET_CLOSES`]) instead of running the heap dry.
static INPUT_HELD: AtomicUsize = AtomicUsize::new(0);
/// Connections closed because the input budget was spent.
pub static BUDGET_CLOSES: AtomicU64 = AtomicU64::new(0);
/// Input a connection may always hold, whatever the budget says (a command line or a small
/// item never waits on other connections).
const INPUT_FREE: usize = 16 * 1024;
/// An idle connection's input buffer is given back once it grew past this.
const INPUT_KEEP: usize = 64 * 1024;

impl Conn {
    /// Brings [`INPUT_HELD`] up to date with the input buffer's capacity.
    fn account(&mut self) {
        resync(&mut self.held, self.input.capacity(), &INPUT_HELD);
    }
}

impl Conn {
    /// Brings [`OUTPUT_HELD`] up to date with the output buffer's capacity.
    fn account_out(&mut self) {
        resync(&mut self.out_held, self.out.capacity(), &OUTPUT_HELD);
    }

    /// The protocol's out-of-memory error, then close.
    fn refuse(&mut self) {
        BUDGET_CLOSES.fetch_add(1, Ordering::Relaxed);
        self.out = Vec::new();
        self.sent = 0;
        self.out.extend_from_slice(match self.proto {
            Proto::Resp(_) => &b"-ERR out of memory for connection buffers\r\n"[..],
            _ => b"SERVER_ERROR out of memory for connection buffers\r\n",
        });
        self.account_out();
        self.input.clear();
        self.closing = true;
    }
}

/// Moves `total` by the change from `*held` to `now`, and records `now`.
fn resync(held: &mut usize, now: usize, total: &AtomicUsize) {
    if now >= *held {
        total.fetch_add(now - *held, Ordering::Relaxed);
    } else {
        total.fetch_sub(*held - now, Ordering::Relaxed);
    }
    *held = now;
}

impl Drop for Conn {
    fn drop(&mut self) {
        INPUT_HELD.fetch_sub(self.held, Ordering::Relaxed);
        OUTPUT_HELD.fetch_sub(self.out_held, Ordering::Relaxed);
    }
}

/// Every open connection's state, by flow id (unique among open connections of the VM).
static CONNS: spin::Mutex<BTreeMap<u32, Conn>> = spin::Mutex::new(BTreeMap::new());

/// When the last event ran (guest ns; 0: none yet), for `idle-exit-ms`.
static LAST_EVENT_NS: AtomicU64 = AtomicU64::new(0);

/// The store's clock now: guest time since boot plus `unix-time`.
pub fn clock(s: &Setup) -> Clock {
    Clock::new(ferrix::time::now_ns(), s.unix_at_boot)
}

/// The `TcpService` of the app.
pub struct Kv {
    pub setup: &'static Setup,
}

impl Kv {
    fn limits(&self) -> Limits {
        Limits {
            // Two of the largest items, whatever `item-max` says.
            max_reply: self.setup.item_max.saturating_mul(2) + 64 * 1024,
            ..Limits::default()
        }
    }

    /// The most unconsumed input a connection holds.
    fn input_cap(&self) -> usize {
        self.setup.item_max + self.limits().max_line + 1024
    }

    fn feed(&self, c: &mut Conn) -> Progress {
        if matches!(c.proto, Proto::Undecided) {
            let sniffed = match self.setup.proto {
                ProtoChoice::Resp => Some(Protocol::Resp),
                ProtoChoice::Memcache => Some(Protocol::Memcache),
                ProtoChoice::Auto => sniff(&c.input),
            };
            c.proto = match sniffed {
                None => return Progress::default(), // wait for the first word
                Some(Protocol::Resp) => Proto::Resp(Resp::new(self.limits())),
                Some(Protocol::Memcache) => Proto::Memcache(Memcache::new(self.limits())),
            };
        }
        let mut backend = &self.setup.store;
        let now = clock(self.setup);
        match &mut c.proto {
            Proto::Resp(r) => r.feed(&c.input, &mut c.out, &mut backend, now),
            Proto::Memcache(m) => m.feed(&c.input, &mut c.out, &mut backend, now),
            Proto::Undecided => Progress::default(),
        }
    }

    /// Moves received bytes in, runs commands, sends replies, until it must wait for input or
    /// for send room.
    fn pump(&self, c: &mut Conn, flow: &mut Flow<'_>) {
        loop {
            // Take what the kernel holds, up to the cap and within the budget.
            let room = self.input_cap().saturating_sub(c.input.len());
            let mut take = flow.data().len().min(room);
            let grow = (c.input.len() + take).saturating_sub(c.input.capacity().max(INPUT_FREE));
            if grow > 0 && INPUT_HELD.load(Ordering::Relaxed) + grow > self.setup.conn_budget {
                take = c
                    .input
                    .capacity()
                    .max(INPUT_FREE)
                    .saturating_sub(c.input.len());
                take = take.min(flow.data().len());
            }
            if take > 0 {
                c.input.extend_from_slice(&flow.data()[..take]);
                flow.consume(take);
                c.account();
            }
            // Send what is pending; wait for `Sent` if the backlog is full.
            if c.sent < c.out.len() {
                c.sent += flow.send(&c.out[c.sent..]);
                if c.sent < c.out.len() {
                    return;
                }
            }
            c.out.clear();
            c.sent = 0;
            if c.closing {
                return flow.close();
            }
            if c.input.is_empty() {
                break;
            }
            let p = self.feed(c);
            let consumed = p.consumed.min(c.input.len());
            c.input.drain(..consumed);
            c.account_out();
            if c.out.len() > INPUT_FREE
                && OUTPUT_HELD.load(Ordering::Relaxed) > self.setup.conn_budget
            {
                c.refuse();
                continue;
            }
            if p.close {
                c.closing = true;
                continue;
            }
            if consumed == 0 && c.out.is_empty() {
                // An incomplete command: more input is needed. If the buffer is full and the
                // codec still cannot make progress, the command can never complete.
                if c.input.len() >= self.input_cap() {
                    c.closing = true;
                    continue;
                }
                // Stuck below the cap: the budget stopped the input growing, and nothing
                // else will free it for this command. Say so in the connection's protocol.
                if !flow.data().is_empty() && c.input.len() >= c.input.capacity().max(INPUT_FREE) {
                    c.refuse();
                    continue;
                }
                if flow.data().is_empty() {
                    break;
                }
            }
        }
        if c.input.is_empty() && c.input.capacity() > INPUT_KEEP {
            c.input = Vec::new();
            c.account();
        }
        // Idle output buffers keep at most what any connection may hold outside the budget.
        if c.out.is_empty() && c.out.capacity() > INPUT_FREE {
            c.out = Vec::new();
            c.account_out();
        }
        if c.peer_closed && c.out.is_empty() {
            flow.close();
        }
    }
}

/// The scheduler's counters summed over cores (`busy-stats`). The loop turn running this
/// event is not in them yet (a turn's time is added when it ends).
fn print_busy() {
    let (mut events, mut busy, mut app) = (0, 0, 0);
    for s in (0..ferrix::cpus()).filter_map(ferrix::net::zygos::stats) {
        events += s.events.load(Ordering::Relaxed);
        busy += s.busy_ns.load(Ordering::Relaxed);
        app += s.app_ns.load(Ordering::Relaxed);
    }
    ferrix::println!("kv: busy: events {events} busy_ns {busy} app_ns {app}");
}

impl TcpService for Kv {
    fn on_event(&self, flow: &mut Flow<'_>, event: FlowEvent) {
        LAST_EVENT_NS.store(ferrix::time::now_ns().max(1), Ordering::Relaxed);
        let id = flow.id();
        let taken = CONNS.lock().remove(&id);
        let mut c = match (event, taken) {
            (FlowEvent::Closed, _) => return, // state dropped (outside the lock)
            (_, Some(c)) => c,
            (_, None) => Conn {
                proto: Proto::Undecided,
                input: Vec::new(),
                out: Vec::new(),
                sent: 0,
                closing: false,
                peer_closed: false,
                held: 0,
                out_held: 0,
            },
        };
        if event == FlowEvent::PeerClosed {
            c.peer_closed = true;
            if self.setup.busy_stats {
                print_busy();
            }
        }
        self.pump(&mut c, flow);
        CONNS.lock().insert(id, c);
    }

    fn on_udp(&self, d: &ferrix::net::Datagram, buf: &mut [u8]) -> Option<usize> {
        let now_ns = ferrix::time::now_ns();
        LAST_EVENT_NS.store(now_ns.max(1), Ordering::Relaxed);
        crate::datagram::on_udp(self.setup, d, buf, now_ns)
    }

    fn after_poll(&self) {
        crate::datagram::after_poll(self.setup);
    }

    fn on_idle(&self, now_ns: u64) {
        let last = LAST_EVENT_NS.load(Ordering::Relaxed);
        if let Some(idle) = self.setup.idle_exit_ns
            && last != 0
            && now_ns.saturating_sub(last) > idle
        {
            ferrix::net::zygos::stop();
        }
    }
}
