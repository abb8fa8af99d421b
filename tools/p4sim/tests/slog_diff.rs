//! p4/slog.p4 (SLOG) in p4sim against its Rust model (`control::slog::Plan`):
//! (a) with injected draws, the slots that send and their targets, packet by packet, and
//!     every request's bytes (destination, TX timestamp, slot, checksum);
//! (b) with the switch's own seeded randomness, the gaps between requests against the
//!     geometric distribution of the configured rate (chi-square), and a wrong rate rejected;
//! (c) replies with known timestamps: the histogram counters equal the model's buckets.
//! p4/README.md ("slog.p4").

use p4sim::control::slog::{Plan, SlogConfig};
use p4sim::control::slog_run::{Experiment, Sent, echo, run_with_dut, tx_us};
use p4sim::externs::Rng;
use statrs::distribution::{ChiSquared, ContinuousCDF};

const CONFIG: &str = r#"
rate_pps = 200000.0
slot_ns = 1000
duration_ns = 3000000
seed = 5
[generator]
mac = "02:00:00:00:00:01"
net = "10.9.0.0"
gen_port = 64
recirc_port = 68
[[target]]
mac = "02:00:00:00:00:02"
ip = "10.0.0.2"
port = 9000
egress_port = 1
[[target]]
mac = "02:00:00:00:00:03"
ip = "10.0.0.3"
port = 9001
egress_port = 2
[[target]]
mac = "02:00:00:00:00:04"
ip = "10.0.0.4"
port = 9002
egress_port = 3
[template]
payload_size = 40
payload_byte = 0xab
[histogram]
edges_us = [2, 4, 8, 16, 32, 64, 128, 1024]
"#;

fn plan(edit: &[(&str, &str)]) -> Plan {
    let mut s = CONFIG.to_string();
    for (from, to) in edit {
        assert!(s.contains(from), "{from}");
        s = s.replace(from, to);
    }
    SlogConfig::from_toml(&s).unwrap().plan().unwrap()
}

/// Runs every slot; the requests sent.
fn run_all(ex: &mut Experiment) -> Vec<Sent> {
    let mut sent = vec![];
    for _ in 0..=ex.plan.slots {
        match ex.slot().expect("slot runs") {
            None => break,
            Some(s) => sent.extend(s),
        }
    }
    assert!(ex.finished());
    assert_eq!(ex.slot().unwrap(), None, "no slot after the last");
    sent
}

fn ipv4_ok(f: &[u8]) -> bool {
    let mut s: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

/// Draws for `slots` slots: seeded ones, with the pace table's edges mixed in.
fn draws(plan: &Plan, slots: u64, seed: u64) -> Vec<u64> {
    let mut r = Rng::new(seed);
    let t = plan.per_target;
    let edges = [
        0,
        t - 1,
        t,
        2 * t - 1,
        2 * t,
        3 * t - 1,
        3 * t,
        u64::from(u32::MAX),
    ];
    (0..slots)
        .map(|i| {
            if i % 7 == 3 {
                edges[(i / 7) as usize % edges.len()]
            } else {
                r.next_u64() >> 32
            }
        })
        .collect()
}

/// (a) The same draws in the switch and the model: the same slots send, to the same
/// targets, and each request is the template with the target's destination, the slot's TX
/// time and number, and a valid IPv4 checksum.
#[test]
fn sent_slots_equal_the_model_with_injected_draws() {
    let plan = plan(&[]);
    let slots = plan.slots;
    let d = draws(&plan, slots, 11);
    let mut ex = Experiment::new(plan.clone(), 1, 7_000_000).unwrap();
    ex.sw.rt.rng.inject(d.iter().copied());
    let sent = run_all(&mut ex);
    assert_eq!(ex.sw.rt.rng.injected_left(), Some(0), "one draw per slot");
    let want: Vec<(u64, usize)> = d
        .iter()
        .enumerate()
        .filter_map(|(s, &x)| plan.decide(x as u32).map(|t| (s as u64, t)))
        .collect();
    let template = plan.template_frame();
    let mut got = vec![];
    for s in &sent {
        let t = plan
            .targets
            .iter()
            .position(|t| t.egress_port == s.port)
            .expect("a target's port");
        got.push((s.slot, t));
        let f = &s.bytes;
        let tgt = &plan.targets[t];
        assert_eq!(f.len(), template.len());
        assert_eq!(f[0..6], tgt.mac.to_be_bytes()[2..]);
        assert_eq!(f[6..14], template[6..14]);
        assert_eq!(f[30..34], tgt.ip.to_be_bytes());
        assert_eq!(f[36..38], tgt.port.to_be_bytes());
        assert_eq!(
            f[18..20],
            (s.slot as u16).to_be_bytes(),
            "slot in the IPv4 id"
        );
        assert_eq!(f[26..28], [10, 9], "the generator's /16");
        assert_eq!(f[40..42], [0, 0], "no UDP checksum");
        assert_eq!(f[42..], template[42..], "payload");
        assert!(ipv4_ok(f), "IPv4 checksum");
        assert_eq!(
            tx_us(f),
            Some((ex.slot_time(s.slot) / 1000) as u32),
            "TX time"
        );
    }
    assert_eq!(got, want);
    let c = ex.counters();
    assert_eq!(c.slots, slots);
    assert_eq!(c.sent, want.len() as u64);
    assert_eq!(c.dropped, slots - c.sent);
    assert_eq!(c.done, 1);
    for (t, &n) in c.sent_to.iter().enumerate() {
        assert_eq!(n, want.iter().filter(|w| w.1 == t).count() as u64);
    }
    // Most slots drop at 0.2 per slot; every target got some.
    assert!(c.sent > slots / 10 && c.sent < slots / 3, "{c:?}");
    assert!(c.sent_to.iter().all(|&n| n > 50), "{c:?}");
}

/// A control plane one draw off at a table edge is caught by (a)'s comparison.
#[test]
fn a_mutant_pace_table_is_caught() {
    let plan = plan(&[("duration_ns = 3000000", "duration_ns = 200000")]);
    let d = draws(&plan, 200, 3);
    let mut cf = plan.control_file();
    // The last target's range one draw longer: draw 3T sends instead of dropping.
    let t = plan.per_target;
    let e = cf
        .table_entries
        .iter_mut()
        .rfind(|e| e.table.ends_with("pace"))
        .unwrap();
    assert_eq!(e.matches, [format!("{}..{}", 2 * t, 3 * t - 1)]);
    e.matches = vec![format!("{}..{}", 2 * t, 3 * t)];
    let mut ex = Experiment::with_entries(plan.clone(), &cf, 1, 0).unwrap();
    ex.sw.rt.rng.inject(d.iter().copied());
    let sent: Vec<u64> = run_all(&mut ex).iter().map(|s| s.slot).collect();
    let want: Vec<u64> = (0..200u64)
        .filter(|&s| plan.decide(d[s as usize] as u32).is_some())
        .collect();
    assert_ne!(sent, want);
}

/// Gaps (in slots) between consecutive requests of one run with the switch's own
/// randomness.
fn gaps(plan: &Plan, seed: u64) -> Vec<u64> {
    let mut ex = Experiment::new(plan.clone(), seed, 0).unwrap();
    assert_eq!(ex.sw.rt.rng.injected_left(), None);
    let slots: Vec<u64> = run_all(&mut ex).iter().map(|s| s.slot).collect();
    slots.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Pearson's chi-square of `gaps` against the geometric distribution of send probability
/// `p`: bins 1, 2, ... while the expected count is at least 5, the rest one tail bin.
/// Returns the p-value.
fn chi_square_p(gaps: &[u64], p: f64) -> f64 {
    let n = gaps.len() as f64;
    let mut bins = vec![];
    let mut g = 1u64;
    let mut left = 1.0;
    loop {
        let pmf = (1.0 - p).powf((g - 1) as f64) * p;
        if n * pmf < 5.0 || n * (left - pmf) < 5.0 {
            break;
        }
        bins.push((g, g, pmf));
        left -= pmf;
        g += 1;
    }
    bins.push((g, u64::MAX, left));
    let mut stat = 0.0;
    for &(lo, hi, prob) in &bins {
        let obs = gaps.iter().filter(|&&x| lo <= x && x <= hi).count() as f64;
        let exp = n * prob;
        stat += (obs - exp) * (obs - exp) / exp;
    }
    let dof = (bins.len() - 1) as f64;
    1.0 - ChiSquared::new(dof).unwrap().cdf(stat)
}

/// (b) The inter-departure gaps fit the geometric distribution of the configured rate (the
/// slotted exponential); gaps of the 0.2-per-slot stream tested as if it were 0.17 or 0.23
/// fail the same test, so it can tell.
#[test]
fn gaps_are_geometric_at_the_configured_rate() {
    for (seed, rate, k) in [(21u64, "200000.0", 3usize), (22, "50000.0", 1)] {
        let mut plan = plan(&[
            ("rate_pps = 200000.0", &format!("rate_pps = {rate}")),
            ("duration_ns = 3000000", "duration_ns = 12000000"),
        ]);
        plan.targets.truncate(k);
        plan = Plan {
            per_target: ((plan.p / k as f64) * 2f64.powi(32)).round() as u64,
            ..plan
        };
        let g = gaps(&plan, seed);
        let p = plan.p_exact();
        assert!(g.len() > 400, "{} gaps", g.len());
        let mean = g.iter().sum::<u64>() as f64 / g.len() as f64;
        // Mean gap 1/p, within 5 standard errors (sd of a geometric: sqrt(1-p)/p).
        let se = (1.0 - p).sqrt() / p / (g.len() as f64).sqrt();
        assert!(
            (mean - 1.0 / p).abs() < 5.0 * se,
            "mean {mean} vs {}",
            1.0 / p
        );
        let pv = chi_square_p(&g, p);
        eprintln!(
            "rate {rate}: {} gaps, mean {mean:.3}, chi-square p {pv:.3}",
            g.len()
        );
        assert!(pv > 0.001, "p-value {pv}");
        if rate == "200000.0" {
            for wrong in [0.17, 0.23] {
                let pw = chi_square_p(&g, wrong);
                assert!(pw < 0.001, "{wrong}: p-value {pw}");
            }
        }
    }
}

/// (c) Replies with known latencies: the histogram counts what the model's buckets count,
/// latencies below the first edge are unbucketed, a 32-bit wrap of the TX time is still
/// the right latency, and traffic outside the generator's /16 is `other`.
#[test]
fn histogram_counts_the_latencies_fed_in() {
    let plan = plan(&[("duration_ns = 3000000", "duration_ns = 400000")]);
    let mut ex = Experiment::new(plan.clone(), 4, (1u64 << 32) * 1000 - 150_000).unwrap();
    let sent = run_all(&mut ex);
    assert!(sent.len() > 40);
    let mut lat = Rng::new(8);
    let mut want = vec![0u64; plan.edges.len()];
    let mut unbucketed = 0;
    let fixed = [
        0u32, 1, 2, 3, 4, 7, 8, 127, 128, 1023, 1024, 5000, 70_000_000,
    ];
    for (i, s) in sent.iter().enumerate() {
        let l = fixed
            .get(i)
            .copied()
            .unwrap_or_else(|| lat.below(300) as u32);
        match plan.bucket_of(l) {
            Some(b) => want[b] += 1,
            None => unbucketed += 1,
        }
        let reply = echo(&s.bytes).unwrap();
        let tx = ex.slot_time(s.slot);
        ex.reply(s.port, &reply, tx + u64::from(l) * 1000).unwrap();
    }
    let h = ex.histogram();
    assert_eq!(h.counts, want);
    let c = ex.counters();
    assert_eq!(c.received, sent.len() as u64);
    assert_eq!(c.unbucketed, unbucketed);
    assert!(unbucketed >= 2);
    // Not a reply: to another network, or not UDP.
    let mut other = echo(&sent[0].bytes).unwrap();
    other[30] = 11;
    other[24..26].copy_from_slice(&[0, 0]);
    ex.reply(1, &other, 0).unwrap();
    ex.reply(1, &other[..20], 0).unwrap();
    assert_eq!(ex.counters().other, 2);
    assert_eq!(ex.counters().received, sent.len() as u64);
}

/// `p4sim slog`'s run: every request echoed and measured, the latencies in the buckets of
/// the device's latency range.
#[test]
fn an_experiment_against_an_echo_device() {
    let mut cfg = SlogConfig::from_toml(CONFIG).unwrap();
    cfg.dut = Some(p4sim::control::slog::DutConfig {
        latency_us: 10,
        jitter_us: 40,
    });
    let ex = run_with_dut(&cfg).unwrap();
    let c = ex.counters();
    assert_eq!(c.slots, 3000);
    assert_eq!(c.received, c.sent);
    assert_eq!(c.unbucketed, 0);
    let h = ex.histogram();
    assert_eq!(h.total(), c.sent);
    // 10..=50 us: buckets [8, 15], [16, 31], [32, 63] only.
    for (&(lo, hi), &n) in h.ranges.iter().zip(&h.counts) {
        assert_eq!(n > 0, hi >= 10 && lo <= 50, "[{lo}, {hi}]: {n}");
    }
    assert_eq!(h.percentile(0.99), Some((32, 63)));
}
