//! Experiment: why do the agent's inter-transmission gaps fail Anderson-Darling?
//!
//! Runs the agent's real load loop against a server for a few seconds and compares the
//! gaps between *actual* send times with the gaps of the *scheduled* times, and shows how late
//! the sends were. Usage:
//!
//! ```sh
//! cargo run --release -p lancet --example arrivals -- 127.0.0.1:11211 memcached 5000 3
//! ```

use std::sync::mpsc;
use std::time::Duration;

use lancet::agent::load::{self, Cmd};
use lancet::stats::anderson;
use lancet::workload::{AppProto, Workload};

fn q(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let target = a.get(1).cloned().unwrap_or("127.0.0.1:11211".into());
    let proto = match a.get(2).map(String::as_str) {
        Some("echo") => AppProto::Echo,
        Some("redis") => AppProto::Redis,
        _ => AppProto::Memcached,
    };
    let rps: f64 = a.get(3).map_or(5000.0, |s| s.parse().unwrap());
    let secs: f64 = a.get(4).map_or(3.0, |s| s.parse().unwrap());
    let w = Workload {
        target,
        proto,
        ..Workload::default()
    };
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        load::run(&w, rps, Duration::from_secs_f64(secs + 5.0), &rx);
    });
    std::thread::sleep(Duration::from_millis(300));
    tx.send(Cmd::Measure {
        samples: 0,
        sampling: 1,
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (stx, srx) = mpsc::channel();
    tx.send(Cmd::Snapshot(stx)).unwrap();
    let s = srx.recv().unwrap();
    tx.send(Cmd::Stop).unwrap();
    h.join().unwrap();
    if let Some(e) = s.error {
        eprintln!("error: {e}");
        return;
    }
    let n = s.gaps_us.len();
    let mean = s.gaps_us.iter().sum::<f64>() / n as f64;
    println!(
        "rps {rps}: sent {} late-skipped {} gaps {n} mean gap {mean:.1} µs",
        s.sent, s.late
    );
    let sched = s.sched_gaps_us.clone();
    let mut sorted_gaps = s.gaps_us.clone();
    sorted_gaps.sort_by(f64::total_cmp);
    let min_gap = q(&sorted_gaps, 0.001);
    println!(
        "actual gaps: min {:.2} µs, p0.1 {min_gap:.2} µs, p1 {:.2} µs",
        sorted_gaps[0],
        q(&sorted_gaps, 0.01)
    );
    // Model: the scheduled times pushed back only by the send path's own cost (a send cannot
    // start before the previous one returned): actual = max(scheduled, previous + c).
    let mut model = Vec::with_capacity(n);
    let mut debt = 0.0f64;
    for g in &sched {
        // debt = how far the previous actual send is behind its schedule.
        let gap = (g - debt).max(min_gap);
        debt = (debt + gap - g).max(0.0);
        model.push(gap);
    }
    let mut late = s.lateness_us.clone();
    late.sort_by(f64::total_cmp);
    println!(
        "lateness µs: p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        q(&late, 0.5),
        q(&late, 0.9),
        q(&late, 0.99),
        q(&late, 0.999),
        late[n - 1]
    );
    // Actual gaps without those whose send was more than 10 µs late (stalls and catch-up).
    let on_time: Vec<f64> = (0..n)
        .filter(|i| s.lateness_us[*i] < 10.0)
        .map(|i| s.gaps_us[i])
        .collect();
    println!("sends at most 10 µs late: {} of {n}", on_time.len());
    for (name, g) in [
        ("actual", &s.gaps_us),
        ("scheduled", &sched),
        ("min-gap model", &model),
    ] {
        let tail = &g[n.saturating_sub(2000)..];
        let ad = anderson::exponential(tail).unwrap();
        let all = anderson::exponential(g).unwrap();
        let small = g.iter().filter(|x| **x < 2.0).count() as f64 / n as f64;
        println!(
            "{name:>9}: A² last 2000 = {:.3} (p {:.3}); A² all {n} = {:.2}; P[gap < 2 µs] = {:.4} (exp: {:.4})",
            ad.statistic,
            ad.p_value,
            all.statistic,
            small,
            1.0 - (-2.0 / mean).exp()
        );
    }
    // Is a send late because the one before it was recent?
    let bins = [0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 1e9];
    for wdw in bins.windows(2) {
        let mut l: Vec<f64> = (0..n)
            .filter(|i| sched[*i] >= wdw[0] && sched[*i] < wdw[1])
            .map(|i| s.lateness_us[i])
            .collect();
        if l.is_empty() {
            continue;
        }
        l.sort_by(f64::total_cmp);
        println!(
            "  scheduled gap in [{:>4}, {:>4}) µs: {:>6} sends, lateness p50 {:.1} p90 {:.1} µs",
            wdw[0],
            wdw[1].min(9999.0),
            l.len(),
            q(&l, 0.5),
            q(&l, 0.9)
        );
    }
    // Where do the misfits sit? Histogram of actual gaps vs the exponential, first bins.
    let edges = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];
    for wdw in edges.windows(2) {
        let c = s
            .gaps_us
            .iter()
            .filter(|x| **x >= wdw[0] && **x < wdw[1])
            .count();
        let e = n as f64 * ((-wdw[0] / mean).exp() - (-wdw[1] / mean).exp());
        println!(
            "  gaps in [{:>4}, {:>4}) µs: {c:>6} (exp {e:>8.1})",
            wdw[0], wdw[1]
        );
    }
}
