//! One open-loop measurement point against a guest's TCP synthetic server: Lancet's agent
//! (Poisson arrivals, service times drawn from a distribution and named in each 8-byte
//! request) loads 127.0.0.1:PORT (QEMU's user network forwards it to the guest) for a few
//! seconds after a warm-up, and the point reports offered, sent and achieved rates and the p99.
//! Used by `ferrix bench sched` and `ferrix demo`.

use lancet::agent::load::{self, Cmd};
use lancet::workload::{AppProto, Transport, Workload};
use std::sync::mpsc;
use std::time::Duration;

/// One guest measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestPoint {
    pub load: f64,
    pub offered_rps: f64,
    /// What the load generator managed to send (it skips arrivals it is late for by more than
    /// 200 µs, e.g. while the host runs the guest's vCPUs instead).
    pub sent_rps: f64,
    pub achieved_rps: f64,
    pub p99_us: f64,
    pub samples: usize,
}

impl GuestPoint {
    /// Whether the guest kept up with the offered load (within 10 %).
    pub fn kept_up(&self) -> bool {
        self.achieved_rps >= 0.9 * self.offered_rps
    }
}

/// p99 of `v` (nearest rank), 0 if empty.
fn p99(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let k = ((0.99 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[k - 1]
}

/// Connections of the guest load (few: QEMU's user network accepts them slowly).
const GUEST_CONNS: usize = 8;

/// One open-loop point against the guest on 127.0.0.1:`port`.
pub fn guest_point(port: u16, service_us: f64, load: f64, secs: f64) -> Result<GuestPoint, String> {
    let cores = 2.0;
    let rps = load * cores / (service_us * 1e-6);
    let w = Workload {
        target: format!("127.0.0.1:{port}"),
        transport: Transport::Tcp,
        proto: AppProto::Synthetic,
        connections: GUEST_CONNS,
        outstanding: 8,
        arrival: "exp".into(),
        service: "exp".into(),
        service_us,
        seed: (load * 1e6) as u64 ^ service_us.to_bits(),
        ..Workload::default()
    };
    let (tx, rx) = mpsc::channel();
    let agent =
        std::thread::spawn(move || load::run(&w, rps, Duration::from_secs_f64(secs + 90.0), &rx));
    // The agent connects first: QEMU's user network accepts forwarded connections with a
    // listen backlog of 1, so a burst of connects takes a SYN retransmission (1 s) per couple
    // of connections. Measure only once the load runs, after 0.5 s of warm-up.
    let started = std::time::Instant::now();
    loop {
        let (stx, srx) = mpsc::channel();
        let _ = tx.send(Cmd::Snapshot(stx));
        let snap = srx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the load agent did not answer".to_string())?;
        if let Some(e) = snap.error {
            let _ = tx.send(Cmd::Stop);
            return Err(e);
        }
        if snap.sent > 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = tx.send(Cmd::Stop);
            return Err("the load agent did not start in 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = tx.send(Cmd::Measure {
        samples: 2_000_000,
        sampling: 1,
    });
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (stx, srx) = mpsc::channel();
    let _ = tx.send(Cmd::Snapshot(stx));
    let snap = srx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the load agent did not answer".to_string())?;
    let _ = tx.send(Cmd::Stop);
    let _ = agent.join();
    if let Some(e) = snap.error {
        return Err(e);
    }
    let mut lat: Vec<f64> = snap.samples.iter().map(|s| s.1).collect();
    let window = snap.window_secs.max(1e-9);
    Ok(GuestPoint {
        load,
        offered_rps: rps,
        sent_rps: snap.sent as f64 / window,
        achieved_rps: snap.received as f64 / window,
        p99_us: p99(&mut lat),
        samples: lat.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p99(&mut v), 99.0);
        assert_eq!(p99(&mut []), 0.0);
    }
}
