//! tcp-echo's queueing server (`service-us=N`): a synthetic RPC service in the manner of the
//! thesis's SLO experiments (8.5). Requests are 32 bytes; a request that starts with `SVC `
//! and a little-endian u32 asks for that many µs of service (else `service-us`), and the reply
//! echoes it. One server per core, FIFO: a request waits until the server is free, is served
//! for its service time, then answered.
//!
//! The server is **virtual**: it does not spin. Its clock is the guest's clock: a request that
//! arrived at `a` starts at `max(a, previous completion)` and completes its service time later;
//! it is answered at the first poll after that. On a shared, emulated machine a spinning
//! server would measure the host's scheduling more than the queue; the virtual one serves
//! exactly the configured rate whatever the host does, and its wait times (start − arrival,
//! taken from the guest clock at the poll that read the request) are the queue's own.
//!
//! With `slo-us=W` the endpoint runs SLO-aware flow control (`TcpConfig::slo`, thesis
//! chapter 8) with a p99 wait SLO of W µs: every request is reported on arrival
//! (`slo_request`) and its service time on completion (`slo_served`), and the window of every
//! segment carries the connection's tokens. `slo-period-us=` (replenish period, default 500)
//! and `slo-tokens=` (allowance below the throttling threshold, default 64) tune it.
//!
//! Each time the last connection closes the core prints a session line:
//! `tcp-echo: queue: session: R requests, wait p50 X us p99 Y us max Z us, lost L, slo ...`.

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use ferrix::net::tcp::slo::SloConfig;
use ferrix::net::tcp::{ConnId, TcpConfig, TcpEndpoint, TcpEvent};
use ferrix::println;

const MSG: usize = 32;
/// Requests queued per core before the server stops reading (TCP then pushes back).
const QUEUE_CAP: usize = 16_384;
/// Waits kept per session for the percentiles.
const WAITS_CAP: usize = 262_144;
/// The longest service a request may ask for.
const MAX_SERVICE_NS: u64 = 1_000_000_000;

struct Request {
    conn: ConnId,
    msg: [u8; MSG],
    arrival: u64,
    service: u64,
}

/// One core's queue and its session's figures.
struct Server {
    queue: VecDeque<Request>,
    free_at: u64,
    default_ns: u64,
    open: usize,
    /// Connections with unread requests (the queue was full).
    stalled: Vec<ConnId>,
    waits: Vec<u32>,
    served: u64,
    lost: u64,
}

/// The service a request asks for.
fn service_of(msg: &[u8; MSG], default_ns: u64) -> u64 {
    if &msg[..4] == b"SVC " {
        let us = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
        (u64::from(us) * 1000).min(MAX_SERVICE_NS)
    } else {
        default_ns
    }
}

impl Server {
    /// Moves every complete request of `c` into the queue while there is room.
    fn read(&mut self, ep: &mut TcpEndpoint, c: ConnId, now: u64) {
        loop {
            if self.queue.len() >= QUEUE_CAP {
                if !self.stalled.contains(&c) {
                    self.stalled.push(c);
                }
                return;
            }
            let msg: [u8; MSG] = match ep.recv(c) {
                Ok(d) if d.len() >= MSG => d[..MSG].try_into().unwrap_or([0; MSG]),
                _ => return,
            };
            let _ = ep.recv_done(c, MSG);
            ep.slo_request(c);
            self.queue.push_back(Request {
                conn: c,
                service: service_of(&msg, self.default_ns),
                msg,
                arrival: now,
            });
        }
    }

    /// Answers every request whose service is over by `now`.
    fn complete(&mut self, ep: &mut TcpEndpoint, now: u64) {
        while let Some(r) = self.queue.front() {
            let start = self.free_at.max(r.arrival);
            let done = start.saturating_add(r.service);
            if done > now {
                break;
            }
            let Some(r) = self.queue.pop_front() else {
                break;
            };
            self.free_at = done;
            ep.slo_served(r.service);
            if self.waits.len() < WAITS_CAP {
                let us = (start - r.arrival) / 1000;
                self.waits.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            match ep.send(r.conn, &r.msg) {
                Ok(MSG) => self.served += 1,
                _ => self.lost += 1,
            }
        }
        let stalled = core::mem::take(&mut self.stalled);
        for c in stalled {
            self.read(ep, c, now);
        }
    }

    fn session_end(&mut self, ep: &TcpEndpoint) {
        self.waits.sort_unstable();
        let q = |p: f64| -> u32 {
            if self.waits.is_empty() {
                return 0;
            }
            let i = ((self.waits.len() as f64 * p) as usize).min(self.waits.len() - 1);
            self.waits[i]
        };
        let s = ep.slo_stats();
        println!(
            "tcp-echo: queue: session: {} requests, wait p50 {} us p99 {} us max {} us, lost {}, slo requests {} over_budget {} periods {} throttled_periods {} max_load {:.3}",
            self.served,
            q(0.5),
            q(0.99),
            self.waits.last().copied().unwrap_or(0),
            self.lost,
            s.requests,
            s.over_budget,
            s.periods,
            s.throttled_periods,
            ep.slo_max_load().unwrap_or(0.0)
        );
        self.waits.clear();
        self.served = 0;
        self.lost = 0;
    }
}

/// Runs the queueing server on this core (never returns).
pub fn run(core: usize, port: u16, service_us: u64, arg: impl Fn(&str) -> Option<u64>) -> ! {
    let slo = arg("slo-us").map(|w| SloConfig {
        wslo_ns: w.saturating_mul(1000).max(1),
        period_ns: arg("slo-period-us")
            .unwrap_or(500)
            .clamp(1, 32_767)
            .saturating_mul(1000),
        free_tokens: arg("slo-tokens").unwrap_or(64).clamp(1, 32_767) as u16,
        ..SloConfig::default()
    });
    let cfg = TcpConfig {
        slo,
        ..crate::server_config(port)
    };
    ferrix::net::or_idle("tcp-echo", core, ferrix::net::tcp_listen(cfg));
    if core == 0 {
        match slo {
            Some(s) => println!(
                "tcp-echo: queue: listening on port {port}, service {service_us} us, SLO p99 wait {} us, period {} us",
                s.wslo_ns / 1000,
                s.period_ns / 1000
            ),
            None => println!(
                "tcp-echo: queue: listening on port {port}, service {service_us} us, no flow control"
            ),
        }
    }
    let mut s = Server {
        queue: VecDeque::new(),
        free_at: 0,
        default_ns: service_us.saturating_mul(1000).min(MAX_SERVICE_NS),
        open: 0,
        stalled: Vec::new(),
        waits: Vec::new(),
        served: 0,
        lost: 0,
    };
    loop {
        let now = ferrix::time::now_ns();
        let polled = ferrix::net::poll_tcp(
            |_, _| None,
            |ep, ev| match ev {
                TcpEvent::Accepted(_) => s.open += 1,
                TcpEvent::Received(c, _) => s.read(ep, c, now),
                TcpEvent::PeerClosed(c) => {
                    let _ = ep.close(c);
                }
                TcpEvent::Closed(c) => {
                    s.stalled.retain(|&x| x != c);
                    s.open = s.open.saturating_sub(1);
                    if s.open == 0 {
                        s.session_end(ep);
                    }
                }
                _ => {}
            },
        );
        if let Err(e) = polled {
            println!("tcp-echo: core {core}: {e}");
            ferrix::exit(1);
        }
        let now = ferrix::time::now_ns();
        if !s.queue.is_empty()
            && let Err(e) = ferrix::net::with_tcp(|ep| s.complete(ep, now))
        {
            println!("tcp-echo: core {core}: {e}");
            ferrix::exit(1);
        }
    }
}
