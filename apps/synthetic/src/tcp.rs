//! The TCP mode of the synthetic server (thesis 3.2 microbenchmark framing): each request is 8
//! bytes naming a service time in ns (little-endian); the server spins that long and answers
//! with 8 bytes (the request echoed). Requests may be pipelined.
//!
//! Served through `ferrix::net::serve_tcp`, so the boot policy (`ferrix.sched=zygos`,
//! `zygos-noipi` or `partitioned`) decides which core runs a connection's requests: its home
//! core, or an idle core that steals it. Replies of one connection stay in order whatever core
//! runs them. At exit it prints how many requests each core ran.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrix::net::{Flow, FlowEvent, TcpService};

/// Request and reply size.
pub const MSG: usize = 8;

/// TCP requests run, per core.
static RAN: [AtomicU64; super::MAX_CORES] = [const { AtomicU64::new(0) }; super::MAX_CORES];

/// The service: spin for the named time, echo the request.
pub struct Synthetic {
    pub max_service_ns: u64,
    pub exit_after: Option<u64>,
    /// Stop serving once no request has been run for this long (after the first one).
    pub idle_exit_ns: Option<u64>,
}

/// When the last request finished (guest ns; 0: none yet).
static LAST_RUN_NS: AtomicU64 = AtomicU64::new(0);

impl TcpService for Synthetic {
    fn on_event(&self, flow: &mut Flow<'_>, event: FlowEvent) {
        match event {
            FlowEvent::Received => {}
            FlowEvent::PeerClosed => return flow.close(),
            FlowEvent::Accepted | FlowEvent::Closed => return,
        }
        let core = ferrix::core_id().min(super::MAX_CORES - 1);
        while flow.data().len() >= MSG && flow.send_room() >= MSG {
            let mut req = [0u8; MSG];
            req.copy_from_slice(&flow.data()[..MSG]);
            super::spin(u64::from_le_bytes(req).min(self.max_service_ns));
            flow.send(&req);
            flow.consume(MSG);
            RAN[core].fetch_add(1, Ordering::Relaxed);
            LAST_RUN_NS.store(ferrix::time::now_ns(), Ordering::Relaxed);
            let total = super::REPLIED.fetch_add(1, Ordering::Relaxed) + 1;
            if self.exit_after.is_some_and(|n| total >= n) {
                // Every core leaves serve_tcp once the last replies are out; see `finish`.
                ferrix::net::zygos::stop();
            }
        }
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
