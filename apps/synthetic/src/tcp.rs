//! The TCP mode of the synthetic server (thesis 3.2 microbenchmark framing): each request is 8
//! bytes naming a service time in ns (little-endian); the server spins that long and answers
//! with the request echoed, padded with zeros to `reply-size` bytes (default 8). Requests may
//! be pipelined. A request with the top bit set (`WAIT`) names a time to *wait* instead: the
//! server arms a timer (`Flow::set_timer`) and answers when it fires, without occupying a core
//! (a stand-in for a request blocked on a back end); later requests of the connection wait
//! behind it, requests of other connections do not.
//!
//! Served through `ferrix::net::serve_tcp`, so the boot policy (`ferrix.sched=zygos`,
//! `zygos-noipi` or `partitioned`) decides which core runs a connection's requests: its home
//! core, or an idle core that steals it. Replies of one connection stay in order whatever core
//! runs them. Replies larger than the flow's send backlog go out in pieces, resumed on
//! `FlowEvent::Sent`. At exit it prints how many requests each core ran.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrix::net::{Flow, FlowEvent, TcpService};

/// Request size, and the smallest reply.
pub const MSG: usize = 8;
/// Top bit of a request: wait (timer) instead of spinning.
pub const WAIT: u64 = 1 << 63;

/// The connection's word (`Flow::user`): the head request is waiting for its timer...
const WAITING: u64 = 1 << 63;
/// ... or was served and its reply is going out; the low 32 bits count reply bytes sent.
const REPLYING: u64 = 1 << 62;
const SENT_MASK: u64 = 0xffff_ffff;

/// TCP requests run, per core.
static RAN: [AtomicU64; super::MAX_CORES] = [const { AtomicU64::new(0) }; super::MAX_CORES];

/// Zeros for reply padding.
static ZEROS: [u8; 4096] = [0; 4096];

/// The service: spin (or wait) for the named time, echo the request, padded.
pub struct Synthetic {
    pub max_service_ns: u64,
    pub exit_after: Option<u64>,
    /// Stop serving once no request has been run for this long (after the first one).
    pub idle_exit_ns: Option<u64>,
    /// Reply size (at least [`MSG`]).
    pub reply_size: usize,
}

/// When the last request finished (guest ns; 0: none yet).
static LAST_RUN_NS: AtomicU64 = AtomicU64::new(0);

impl Synthetic {
    /// Serves the connection's requests in order until one must wait (timer, send room) or
    /// none is complete.
    fn serve(&self, flow: &mut Flow<'_>) {
        loop {
            let Some(head) = flow.data().get(..MSG) else {
                return;
            };
            let req = u64::from_le_bytes(head.try_into().unwrap_or([0; MSG]));
            let state = *flow.user();
            if state & WAITING != 0 {
                return; // its timer has not fired yet
            }
            if state & REPLYING == 0 {
                let ns = (req & !WAIT).min(self.max_service_ns);
                if req & WAIT != 0 {
                    flow.set_timer(ns);
                    *flow.user() = WAITING;
                    return;
                }
                super::spin(ns);
                *flow.user() = REPLYING;
            }
            if !self.send_reply(flow, req) {
                return; // resumed on FlowEvent::Sent
            }
            flow.consume(MSG);
            *flow.user() = 0;
            self.count();
        }
    }

    /// Sends what is left of the reply to `req`; true when all of it is queued.
    fn send_reply(&self, flow: &mut Flow<'_>, req: u64) -> bool {
        let total = self.reply_size.max(MSG);
        let mut sent = (*flow.user() & SENT_MASK) as usize;
        let echo = req.to_le_bytes();
        while sent < total {
            let piece = if sent < MSG {
                &echo[sent..]
            } else {
                &ZEROS[..(total - sent).min(ZEROS.len())]
            };
            let n = flow.send(piece);
            sent += n;
            if n < piece.len() {
                break;
            }
        }
        *flow.user() = REPLYING | sent as u64;
        sent == total
    }

    fn count(&self) {
        let core = ferrix::core_id().min(super::MAX_CORES - 1);
        RAN[core].fetch_add(1, Ordering::Relaxed);
        LAST_RUN_NS.store(ferrix::time::now_ns(), Ordering::Relaxed);
        let total = super::REPLIED.fetch_add(1, Ordering::Relaxed) + 1;
        if self.exit_after.is_some_and(|n| total >= n) {
            // Every core leaves serve_tcp once the last replies are out; see `finish`.
            ferrix::net::zygos::stop();
        }
    }
}

impl TcpService for Synthetic {
    fn on_event(&self, flow: &mut Flow<'_>, event: FlowEvent) {
        match event {
            FlowEvent::Received | FlowEvent::Sent => {}
            FlowEvent::Timer => {
                if *flow.user() & WAITING != 0 {
                    *flow.user() = REPLYING;
                }
            }
            FlowEvent::PeerClosed => return flow.close(),
            FlowEvent::Accepted | FlowEvent::Closed => return,
        }
        self.serve(flow);
    }

    fn on_idle(&self, now_ns: u64) {
        let last = LAST_RUN_NS.load(Ordering::Relaxed);
        if let Some(idle) = self.idle_exit_ns
            && last != 0
            && now_ns.saturating_sub(last) > idle
        {
            ferrix::net::zygos::stop();
        }
    }
}

/// Cores that returned from `serve_tcp`.
static DONE: AtomicU64 = AtomicU64::new(0);

/// After `serve_tcp` returned: the last core to get here prints the summary (the VM exits
/// when every core's entry has returned).
pub fn finish() {
    if DONE.fetch_add(1, Ordering::AcqRel) + 1 < ferrix::cpus() as u64 {
        return;
    }
    let mut per_core = alloc::string::String::new();
    for (c, n) in RAN.iter().take(ferrix::cpus()).enumerate() {
        let _ = write!(per_core, " core {c} {}", n.load(Ordering::Relaxed));
    }
    ferrix::println!(
        "synthetic: {} replies",
        super::REPLIED.load(Ordering::Relaxed)
    );
    ferrix::println!("synthetic: tcp requests run:{per_core}");
}
