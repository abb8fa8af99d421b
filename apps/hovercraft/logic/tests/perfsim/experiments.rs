//! The thesis's experiments as tables: throughput under the 500 µs p99 SLO
//! (1) at S = 1 µs for 3 to 9 nodes (figure 12.8) and (2) with 75 % read-only requests and a
//! bimodal service time of mean 10 µs on 3 nodes (figure 12.10).

use std::fmt::Write as _;

use ferrix_raft::ReplierPolicy;

use super::clock::{MS, Time, US};
use super::cluster::{Setup, System, run};
use super::cost::Costs;
use super::search::{Found, max_under_slo};
use super::workload::{Service, Workload};

/// The thesis's SLO.
pub const SLO: Time = 500 * US;

/// How long and how fine: the example's full runs or the test's reduced ones.
#[derive(Clone, Debug)]
pub struct Scale {
    pub sizes: Vec<u8>,
    /// Experiment 1 (S = 1 µs): measurement window and bisection rounds.
    pub window1: Time,
    pub steps1: usize,
    /// Experiment 2 (S̄ = 10 µs).
    pub window2: Time,
    pub steps2: usize,
    pub seed: u64,
}

impl Scale {
    pub fn full() -> Scale {
        Scale {
            sizes: vec![3, 5, 7, 9],
            window1: 40 * MS,
            steps1: 8,
            window2: 250 * MS,
            steps2: 7,
            seed: 1,
        }
    }

    pub fn reduced() -> Scale {
        Scale {
            sizes: vec![3, 9],
            window1: 10 * MS,
            steps1: 5,
            window2: 40 * MS,
            steps2: 5,
            seed: 1,
        }
    }
}

/// One row: a system, a size, what the search found.
#[derive(Clone, Debug)]
pub struct Row {
    pub experiment: &'static str,
    pub system: System,
    pub nodes: u8,
    pub request_bytes: usize,
    pub found: Found,
}

/// A setup with the standard costs.
pub fn setup(system: System, nodes: u8, workload: Workload, window: Time, seed: u64) -> Setup {
    Setup {
        system,
        nodes,
        workload,
        costs: Costs::standard(),
        seed,
        warmup: 2 * MS,
        window,
        tail: MS,
        drain: 3 * MS,
        slo: SLO,
        reply_bound: None,
    }
}

fn search(base: &Setup, lo: f64, hi: f64, steps: usize) -> Found {
    max_under_slo(
        lo,
        hi,
        steps,
        |o| o.meets(SLO),
        |rate| {
            let mut s = base.clone();
            s.workload.rate = rate;
            run(&s)
        },
    )
}

/// Experiment 1: S = 1 µs, 24-byte requests, 8-byte replies, every cluster size.
pub fn scaling(scale: &Scale, systems: &[System]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &system in systems {
        for &n in &scale.sizes {
            let s = setup(
                system,
                n,
                Workload::baseline(0.0),
                scale.window1,
                scale.seed,
            );
            rows.push(Row {
                experiment: "scaling",
                system,
                nodes: n,
                request_bytes: 24,
                found: search(&s, 100_000.0, 1_200_000.0, scale.steps1),
            });
        }
    }
    rows
}

/// Experiment 3 (figure 12.7): 3 nodes, S = 1 µs, requests of each size in `sizes`.
pub fn request_size(scale: &Scale, sizes: &[usize]) -> Vec<Row> {
    let mut rows = Vec::new();
    for system in SCALING {
        for &bytes in sizes {
            let mut w = Workload::baseline(0.0);
            w.request_bytes = bytes;
            let s = setup(system, 3, w, scale.window1, scale.seed);
            rows.push(Row {
                experiment: "request-size",
                system,
                nodes: 3,
                request_bytes: bytes,
                found: search(&s, 100_000.0, 1_200_000.0, scale.steps1),
            });
        }
    }
    rows
}

/// Experiment 3 as a table.
pub fn request_size_table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<14} {:>9} {:>10} {:>8} {:>8} {:>10} {:>10} {:>6}",
        "system (N=3)", "request", "tput@SLO", "p99", "vs 24 B", "leader rx", "leader tx", "batch"
    );
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.system == r.system && b.request_bytes == 24)
            .map_or(0.0, |b| b.found.throughput());
        let best = r.found.best.as_ref();
        let lead = best.and_then(|o| o.leader);
        let _ = writeln!(
            t,
            "{:<14} {:>7} B {:>10} {:>8} {:>+7.0}% {:>10} {:>10} {:>6}",
            r.system.name(),
            r.request_bytes,
            kops(r.found.throughput()),
            us(best.and_then(|o| o.p99)),
            (r.found.throughput() / base - 1.0) * 100.0,
            lead.map_or("-".into(), |l| format!("{:.2}/op", l.rx)),
            lead.map_or("-".into(), |l| format!("{:.2}/op", l.tx)),
            lead.map_or("-".into(), |l| format!("{:.1}", l.batch)),
        );
    }
    t
}

/// Experiment 4 (figure 12.9): S = 1 µs, 24-byte requests, 6 KB replies, reply queues of
/// 128: the unreplicated server against HovercRaft++ on 3 and 5 nodes (every replica
/// answers its share: the egress links add up).
pub fn big_replies(scale: &Scale) -> Vec<Row> {
    let cases = [
        (System::Unreplicated, 3u8),
        (System::PLUS, 3),
        (System::PLUS, 5),
    ];
    let mut rows = Vec::new();
    for (system, n) in cases {
        let mut w = Workload::baseline(0.0);
        w.reply_bytes = 6 * 1024;
        let mut s = setup(system, n, w, scale.window1, scale.seed);
        s.reply_bound = Some(128);
        rows.push(Row {
            experiment: "6KB-replies",
            system,
            nodes: if system == System::Unreplicated { 1 } else { n },
            request_bytes: 24,
            found: search(&s, 50_000.0, 1_200_000.0, scale.steps1),
        });
    }
    rows
}

/// Experiment 4 as a table, against the unreplicated server.
pub fn big_replies_table(rows: &[Row]) -> String {
    let mut t = String::new();
    let base = rows
        .iter()
        .find(|r| r.system == System::Unreplicated)
        .map_or(0.0, |r| r.found.throughput());
    let _ = writeln!(
        t,
        "{:<14} {:>3} {:>10} {:>8} {:>9}",
        "system", "N", "tput@SLO", "p99", "x UnRep"
    );
    for r in rows {
        let best = r.found.best.as_ref();
        let _ = writeln!(
            t,
            "{:<14} {:>3} {:>10} {:>8} {:>8.1}x",
            r.system.name(),
            r.nodes,
            kops(r.found.throughput()),
            us(best.and_then(|o| o.p99)),
            r.found.throughput() / base,
        );
    }
    t
}

/// Experiment 5: p50 and p99 at low loads, 3 nodes, S = 1 µs (no search).
pub fn low_load(rates: &[f64], window: Time, seed: u64) -> String {
    let mut t = String::new();
    let _ = write!(t, "{:<14}", "system (N=3)");
    for r in rates {
        let _ = write!(t, " {:>17}", format!("{} p50/p99", kops(*r)));
    }
    let _ = writeln!(t);
    for system in SCALING {
        let _ = write!(t, "{:<14}", system.name());
        for &rate in rates {
            let mut s = setup(system, 3, Workload::baseline(rate), window, seed);
            s.slo = Time::MAX;
            let o = run(&s);
            let _ = write!(t, " {:>17}", format!("{}/{}", us(o.p50), us(o.p99)));
        }
        let _ = writeln!(t);
    }
    t
}

/// The three systems of experiment 1.
pub const SCALING: [System; 3] = [System::VANILLA, System::HOVER, System::PLUS];

/// Experiment 2's workload: 75 % read-only, bimodal S̄ = 10 µs, 24-byte requests, 8-byte
/// replies (`read_only` 0: the same requests all read-write, every replica runs all).
pub fn read_only_workload(read_only: f64) -> Workload {
    Workload {
        rate: 0.0,
        read_only,
        service: Service::bimodal_mean(10 * US),
        request_bytes: 24,
        reply_bytes: 8,
    }
}

/// Experiment 2: 3 nodes (the unreplicated server, HovercRaft++ without the read-only
/// optimisation, with RANDOM and with JBSQ repliers).
pub fn read_only(scale: &Scale) -> Vec<Row> {
    let cases: [(System, f64); 5] = [
        (System::Unreplicated, 0.75),
        (System::PLUS, 0.0),
        (System::plus(ReplierPolicy::Random), 0.75),
        (System::PLUS, 0.75),
        (System::HOVER, 0.75),
    ];
    let mut rows = Vec::new();
    for (system, ro) in cases {
        let mut s = setup(system, 3, read_only_workload(ro), scale.window2, scale.seed);
        s.warmup = 5 * MS;
        s.tail = 2 * MS;
        s.drain = 5 * MS;
        rows.push(Row {
            experiment: if ro == 0.0 { "all-on-all" } else { "read-only" },
            system,
            nodes: 3,
            request_bytes: 24,
            found: search(&s, 20_000.0, 240_000.0, scale.steps2),
        });
    }
    rows
}

fn kops(x: f64) -> String {
    format!("{:.0} K", x / 1000.0)
}

fn us(t: Option<Time>) -> String {
    t.map_or("-".into(), |t| format!("{:.0} µs", t as f64 / US as f64))
}

/// Experiment 1 as a table: throughput under SLO per system and size, and the leader's
/// messages per operation at that load.
pub fn scaling_table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<14} {:>3} {:>10} {:>8} {:>8} {:>10} {:>10} {:>6}",
        "system", "N", "tput@SLO", "p99", "vs N=3", "leader rx", "leader tx", "batch"
    );
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.system == r.system && b.nodes == 3)
            .map_or(0.0, |b| b.found.throughput());
        let best = r.found.best.as_ref();
        let lead = best.and_then(|o| o.leader);
        let _ = writeln!(
            t,
            "{:<14} {:>3} {:>10} {:>8} {:>+7.0}% {:>10} {:>10} {:>6}",
            r.system.name(),
            r.nodes,
            kops(r.found.throughput()),
            us(best.and_then(|o| o.p99)),
            (r.found.throughput() / base - 1.0) * 100.0,
            lead.map_or("-".into(), |l| format!("{:.2}/op", l.rx)),
            lead.map_or("-".into(), |l| format!("{:.2}/op", l.tx)),
            lead.map_or("-".into(), |l| format!("{:.1}", l.batch)),
        );
    }
    t
}

/// Experiment 2 as a table, against the unreplicated server.
pub fn read_only_table(rows: &[Row]) -> String {
    let mut t = String::new();
    let base = rows
        .iter()
        .find(|r| r.system == System::Unreplicated)
        .map_or(0.0, |r| r.found.throughput());
    let _ = writeln!(
        t,
        "{:<24} {:>10} {:>8} {:>10}",
        "system (3 nodes)", "tput@SLO", "p99", "vs UnRep"
    );
    for r in rows {
        let name = match (r.system, r.experiment) {
            (System::Unreplicated, _) => "UnRep (1 node)".to_string(),
            (s, "all-on-all") => format!("{} all-on-all", s.name()),
            (s, _) => format!(
                "{} {}",
                s.name(),
                if s.name().contains(' ') { "" } else { "jbsq" }
            )
            .trim()
            .to_string(),
        };
        let best = r.found.best.as_ref();
        let _ = writeln!(
            t,
            "{:<24} {:>10} {:>8} {:>+9.0}%",
            name,
            kops(r.found.throughput()),
            us(best.and_then(|o| o.p99)),
            (r.found.throughput() / base - 1.0) * 100.0,
        );
    }
    t
}

/// Every row as CSV (with a header).
pub fn csv(rows: &[Row]) -> String {
    let mut t = String::from(
        "experiment,system,nodes,request_bytes,throughput_ops,p99_us,p50_us,leader_rx_per_op,leader_tx_per_op,batch,runs\n",
    );
    for r in rows {
        let best = r.found.best.as_ref();
        let p =
            |x: Option<Time>| x.map_or(String::new(), |t| format!("{:.1}", t as f64 / US as f64));
        let lead = best.and_then(|o| o.leader);
        let _ = writeln!(
            t,
            "{},{},{},{},{:.0},{},{},{},{},{},{}",
            r.experiment,
            r.system.name(),
            r.nodes,
            r.request_bytes,
            r.found.throughput(),
            p(best.and_then(|o| o.p99)),
            p(best.and_then(|o| o.p50)),
            lead.map_or(String::new(), |l| format!("{:.3}", l.rx)),
            lead.map_or(String::new(), |l| format!("{:.3}", l.tx)),
            lead.map_or(String::new(), |l| format!("{:.2}", l.batch)),
            r.found.runs,
        );
    }
    t
}
