//! router: the R2P2 router (thesis chapters 10 and 11) as a ferrix guest. Clients send REQ0s
//! to `port` (default 8000); servers join by sending FEEDBACK (a heartbeat at first) to
//! `feedback-port` (default 9000) from the address REQ0s are to reach; the router balances
//! REQ0s over them with the boot policy and forwards each *in place*: the received frame is
//! rewritten to the server (destination MAC, IP and port only) and sent from its receive
//! buffer, the client staying the source, so the server replies to the client directly and
//! receives the rest of a multi-packet request straight from it. The decisions are the
//! `ferrix-router` crate's (`apps/router/logic`); this file is the guest around them.
//!
//! One [`Router`] for all cores, behind a spin lock: JBSQ(n) needs one view of every server's
//! free slots (per-core routers would each hand out n slots per server, so a server could get
//! n × cores outstanding requests), and so do the central queue, SVEN's per-class latency
//! measurements and membership. The critical section is a few hundred instructions per
//! datagram (a REQ0's pick or a FEEDBACK's bookkeeping); the I/O is done outside it.
//!
//! Each poll takes a burst; FEEDBACK frames of the burst are handled before its REQ0s
//! (`ferrix::net::poll_with`'s first port), so slots freed in the burst are seen by the REQ0s
//! that follow. DROP (the router's refusals) goes back from the router's port, built in place.
//! REQ0s released from the central queue, and DROPs for those that time out there, are sent
//! by copy after the poll. `Router::poll` (timers: slot, queue and server timeouts, SVEN's
//! control loop) runs every 100 µs on each core.
//!
//! Arguments: `policy=jbsq:N|rand|rr|jsq|pl2` (default jbsq:1), `port=`, `feedback-port=`,
//! `queue-cap=`, `queue-timeout-ms=`, `slot-timeout-ms=`, `server-timeout-ms=`, `max-servers=`,
//! `master=IP:PORT`, `servers=NET/PREFIX` (only these may join), `seed=`, `sven-slo-us=N`
//! (enables SVEN with that SLO) with `sven-period-ms=`, `sven-step=`, `sven-percentile=`,
//! `sven-no-drop=MASK`, `group=IP:PORT` with `group-max=N` (HovercRaft flow control:
//! REPLICATED_ROUTE(_NO_SE) REQ0s go to that group while fewer than N are unanswered, DROP
//! beyond; the replicas' FEEDBACK completes them), `exit-after=N` (REQ0s), `idle-exit-ms=N` (no REQ0 for that long, after the first). At
//! exit it prints one line per server, the counters, SVEN's state, the forwarding counters
//! and the guest ns per REQ0 spent in the polls that received frames (instructions under
//! `--profile microvm-icount`); with `--stats` also the server table every second.
#![no_std]
#![no_main]

extern crate alloc;

mod args;
mod report;

use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrix::net::Action;
use ferrix::println;
use ferrix_router::wire::DROP_LEN;
use ferrix_router::{Output, Router, Verdict};

/// How often each core runs the router's timers.
const TIMER_NS: u64 = 100_000;
/// How often `--stats` prints the server table.
const STATS_NS: u64 = 1_000_000_000;

static SETTINGS: spin::Once<Result<args::Settings, alloc::string::String>> = spin::Once::new();
static ROUTER: spin::Once<spin::Mutex<Router>> = spin::Once::new();

/// REQ0s handled (all cores), and the guest ns spent in polls that received frames.
pub(crate) static REQ0S: AtomicU64 = AtomicU64::new(0);
pub(crate) static BUSY_NS: AtomicU64 = AtomicU64::new(0);
pub(crate) static BUSY_REQ0S: AtomicU64 = AtomicU64::new(0);
/// Datagrams the router wanted sent that the stack refused (ARP pending, no route, ...).
pub(crate) static SEND_FAILED: AtomicU64 = AtomicU64::new(0);
/// When the last REQ0 came (ns), 0 before the first (FEEDBACK and heartbeats do not count).
static LAST_RX_NS: AtomicU64 = AtomicU64::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// An [`Output`] kept until the poll that produced it returns (the poll holds the endpoint).
enum Pending {
    Forward {
        client: SocketAddrV4,
        server: SocketAddrV4,
        datagram: Vec<u8>,
    },
    Drop {
        client: SocketAddrV4,
        message: [u8; DROP_LEN],
    },
}

impl Pending {
    fn of(o: Output<'_>) -> Pending {
        match o {
            Output::Forward {
                client,
                server,
                datagram,
            } => Pending::Forward {
                client,
                server,
                datagram: datagram.to_vec(),
            },
            Output::Drop { client, message } => Pending::Drop { client, message },
        }
    }
}

/// Sends what the router produced outside a poll.
fn send(out: &mut Vec<Pending>, port: u16) {
    for p in out.drain(..) {
        let r = match p {
            Pending::Forward {
                client,
                server,
                datagram,
            } => ferrix::net::forward_udp(client, server, &datagram),
            Pending::Drop { client, message } => ferrix::net::send_udp(port, client, &message),
        };
        if r.is_err() {
            SEND_FAILED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main(core: usize) {
    let settings = SETTINGS.call_once(|| args::parse(ferrix::args(), ferrix::cmdline()));
    let s = match settings {
        Ok(s) => s,
        Err(e) => {
            if core == 0 {
                println!("router: {e}");
                ferrix::exit(1);
            }
            ferrix::idle();
        }
    };
    let router = ROUTER.call_once(|| spin::Mutex::new(Router::new(s.router.clone())));
    for p in [s.port, s.feedback_port] {
        ferrix::net::or_idle(
            &alloc::format!("router: port {p}"),
            core,
            ferrix::net::bind_udp(p),
        );
    }
    if core == 0
        && let Ok(cfg) = ferrix::net::config()
    {
        println!(
            "router: routing R2P2 REQ0s on {}:{} (FEEDBACK on {}), policy {}, {} cores",
            cfg.ip,
            s.port,
            s.feedback_port,
            s.router.balance,
            ferrix::cpus()
        );
    }
    let (port, fb_port) = (s.port, s.feedback_port);
    let mut out: Vec<Pending> = Vec::new();
    let mut next_timer = 0u64;
    let mut next_stats = ferrix::time::now_ns().saturating_add(STATS_NS);
    loop {
        let t0 = ferrix::time::now_ns();
        let mut req0s = 0u64;
        let polled = ferrix::net::poll_with(Some(fb_port), |d, buf| {
            let len = d.len.min(buf.len());
            let dgram = buf.get(..len).unwrap_or_default();
            let to = d.dst.port();
            if to == fb_port {
                router
                    .lock()
                    .feedback(t0, d.src, dgram, &mut |o| out.push(Pending::of(o)));
                return Action::Consume;
            }
            if to != port {
                return Action::Consume;
            }
            let v = router.lock().request(t0, d.src, dgram);
            if v != Verdict::Ignored {
                req0s += 1;
            }
            match v {
                Verdict::Forward(server) => Action::Forward(server),
                Verdict::Refused(_, message) => match buf.get_mut(..DROP_LEN) {
                    Some(b) => {
                        b.copy_from_slice(&message);
                        Action::Reply(DROP_LEN)
                    }
                    None => {
                        out.push(Pending::Drop {
                            client: d.src,
                            message,
                        });
                        Action::Consume
                    }
                },
                Verdict::Queued | Verdict::Ignored => Action::Consume,
            }
        });
        let frames = match polled {
            Ok(n) => n,
            Err(e) => {
                println!("router: core {core}: {e}");
                ferrix::exit(1);
            }
        };
        send(&mut out, port);
        if frames > 0 {
            let now = ferrix::time::now_ns();
            BUSY_NS.fetch_add(now - t0, Ordering::Relaxed);
            BUSY_REQ0S.fetch_add(req0s, Ordering::Relaxed);
            if req0s > 0 {
                LAST_RX_NS.store(now, Ordering::Relaxed);
            }
        }
        let total = REQ0S.fetch_add(req0s, Ordering::Relaxed) + req0s;
        let now = ferrix::time::now_ns();
        if now >= next_timer {
            router.lock().poll(now, &mut |o| out.push(Pending::of(o)));
            send(&mut out, port);
            next_timer = now.saturating_add(TIMER_NS);
        }
        if core == 0 && s.periodic_stats && now >= next_stats {
            report::servers(&router.lock());
            next_stats = now.saturating_add(STATS_NS);
        }
        let last = LAST_RX_NS.load(Ordering::Relaxed);
        let idle = s
            .idle_exit_ns
            .is_some_and(|d| last != 0 && now.saturating_sub(last) > d);
        if (s.exit_after.is_some_and(|n| total >= n) || idle)
            && !EXITING.swap(true, Ordering::AcqRel)
        {
            report::at_exit(&router.lock());
            ferrix::exit(0);
        }
    }
}

ferrix::entry!(main);
