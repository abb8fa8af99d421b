//! What the router prints: one line per server, the counters, SVEN's state, the forwarding
//! counters and the guest cost per REQ0.

use crate::{BUSY_NS, BUSY_REQ0S, REQ0S, SEND_FAILED};
use core::fmt::Write;
use core::sync::atomic::Ordering;
use ferrix::println;
use ferrix_router::Router;

/// One `router: server` line per member.
pub fn servers(r: &Router) {
    for s in r.servers().as_slice() {
        let mut bound = alloc::string::String::new();
        match s.bound() {
            u32::MAX => bound.push_str("unbounded"),
            n => {
                let _ = write!(bound, "{n}");
            }
        }
        println!(
            "router: server {} assigned {} outstanding {} completed {} expired {} bound {}",
            s.addr(),
            s.assigned,
            s.outstanding(),
            s.completed,
            s.expired,
            bound
        );
    }
}

/// Everything, at exit.
pub fn at_exit(r: &Router) {
    println!(
        "router: exit: {} servers, {} REQ0s held",
        r.servers().as_slice().len(),
        r.held()
    );
    servers(r);
    println!("router: stats {}", r.stats());
    if let Some(g) = r.group() {
        let st = g.stats();
        println!(
            "router: group {} max {} in_system {} admitted {} repeated {} refused {} completed {} expired {}",
            g.config().addr,
            g.config().max_in_system,
            g.in_system(),
            st.admitted,
            st.repeated,
            st.refused,
            st.completed,
            st.expired
        );
    }
    if let Some(s) = r.sven() {
        let mut rates = alloc::string::String::new();
        for c in 0..ferrix_router::sven::CLASSES as u8 {
            let st = s.class(c);
            if st.admitted + st.dropped > 0 || st.drop_rate > 0.0 {
                let _ = write!(
                    rates,
                    " class {c} rate {:.3} admitted {} dropped {}",
                    st.drop_rate, st.admitted, st.dropped
                );
            }
        }
        println!(
            "router: sven admitted fraction {:.4} periods {}; drop rates:{}",
            s.admitted_fraction(),
            s.periods,
            if rates.is_empty() { " none" } else { &rates }
        );
    }
    let f = ferrix::net::forward_stats();
    println!(
        "router: forwarded in place {} parked for ARP {} copied {} failed {}; send failures {}",
        f.in_place,
        f.parked,
        f.copied,
        f.failed,
        SEND_FAILED.load(Ordering::Relaxed)
    );
    let busy = BUSY_REQ0S.load(Ordering::Relaxed);
    println!(
        "router: {} ns per REQ0 in poll over {busy} REQ0s ({} REQ0s in all)",
        BUSY_NS.load(Ordering::Relaxed) / busy.max(1),
        REQ0S.load(Ordering::Relaxed)
    );
}
