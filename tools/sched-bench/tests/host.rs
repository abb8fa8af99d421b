//! Behaviour of the host bench that does not depend on timing: every request completes exactly
//! once, per-flow FIFO holds, and the policies steal and interrupt only as they should. No test
//! here asserts a latency, a rate or a wall-clock bound (the machine is shared and noisy).

use ferrix_sched_bench::{
    Bracket, Error, HostBenchOptions, OrderingCheck, PointResult, Policy, Steering, run, run_point,
};

/// A small light-load configuration: 2 cores, 16 flows, a few thousand requests.
fn small(steering: Steering) -> HostBenchOptions {
    HostBenchOptions {
        flows: 16,
        steering,
        requests_per_point: 2_000,
        warmup_requests: 0,
        max_attempts: 1,
        ..HostBenchOptions::default()
    }
}

fn point(policy: Policy, steering: Steering, load: f64) -> PointResult {
    run_point(policy, load, 20.0, &small(steering)).expect("the point runs")
}

fn assert_complete_once_in_order(p: &PointResult) {
    assert_eq!(p.lost, 0, "{}: requests never completed", p.policy);
    assert_eq!(p.duplicated, 0, "{}: requests completed twice", p.policy);
    assert_eq!(
        p.fifo_violations, 0,
        "{}: a flow's replies out of order",
        p.policy
    );
    assert_eq!(p.measured, 2_000, "{}", p.policy);
    assert_eq!(p.events_per_core.iter().sum::<u64>(), 2_000, "{}", p.policy);
}

#[test]
fn every_policy_completes_each_request_once_in_flow_order() {
    for policy in Policy::ALL {
        let p = point(policy, Steering::Balanced, 0.3);
        assert_complete_once_in_order(&p);
        match policy {
            Policy::Partitioned => {
                assert_eq!((p.steals, p.stolen_events, p.ipis), (0, 0, 0));
                assert_eq!(p.remote_batches, 0);
            }
            Policy::ZygosNoIpi => assert_eq!(p.ipis, 0),
            Policy::Zygos => {}
        }
        assert_eq!(p.steal_fraction, p.stolen_events as f64 / 2_000.0);
    }
}

#[test]
fn zygos_steals_when_every_flow_is_on_one_core() {
    for policy in [Policy::Zygos, Policy::ZygosNoIpi] {
        let p = point(policy, Steering::AllOn(0), 0.4);
        assert_complete_once_in_order(&p);
        assert!(p.steals > 0, "{policy}: an idle core never stole");
        assert!(
            p.events_per_core.iter().all(|&e| e > 0),
            "{policy}: a core ran nothing: {:?}",
            p.events_per_core
        );
        if policy == Policy::ZygosNoIpi {
            assert_eq!(p.ipis, 0);
        }
    }
}

#[test]
fn partitioned_keeps_every_flow_on_its_core() {
    let p = point(Policy::Partitioned, Steering::AllOn(0), 0.4);
    assert_complete_once_in_order(&p);
    assert_eq!(p.events_per_core, vec![2_000, 0]);
    assert_eq!((p.steals, p.ipis), (0, 0));
}

#[test]
fn hashed_steering_and_three_cores_work() {
    let opts = HostBenchOptions {
        cores: 3,
        ..small(Steering::Hashed)
    };
    let p = run_point(Policy::Zygos, 0.2, 20.0, &opts).expect("the point runs");
    assert_complete_once_in_order(&p);
    assert_eq!(p.events_per_core.len(), 3);
}

#[test]
fn bad_options_are_rejected() {
    let bad = [
        HostBenchOptions {
            cores: 0,
            ..HostBenchOptions::default()
        },
        HostBenchOptions {
            flows: 0,
            ..HostBenchOptions::default()
        },
        HostBenchOptions {
            steering: Steering::AllOn(2),
            ..HostBenchOptions::default()
        },
        HostBenchOptions {
            loads: vec![0.5, 0.4],
            ..HostBenchOptions::default()
        },
        HostBenchOptions {
            service_means_us: vec![0.0],
            ..HostBenchOptions::default()
        },
        HostBenchOptions {
            max_attempts: 0,
            ..HostBenchOptions::default()
        },
    ];
    for opts in bad {
        assert!(
            matches!(opts.validate(), Err(Error::BadOption(_))),
            "{opts:?}"
        );
    }
    assert!(HostBenchOptions::default().validate().is_ok());
    let e = run_point(Policy::Zygos, 0.0, 10.0, &HostBenchOptions::quick());
    assert!(matches!(e, Err(Error::BadOption(_))));
}

#[test]
fn the_bench_reports_every_policy_and_writes_json_and_csv() {
    let opts = HostBenchOptions::quick();
    let mut text = Vec::new();
    let report = run(&opts, &mut text).expect("the bench runs");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(
        text.contains("ordering zygos > zygos-noipi > partitioned"),
        "{text}"
    );
    assert!(
        text.contains("75 %") && text.contains("88 %"),
        "thesis numbers: {text}"
    );
    assert_eq!(report.means.len(), 1);
    let m = &report.means[0];
    assert_eq!(m.policies.len(), 3);
    assert_ne!(m.ordering, OrderingCheck::NotRun);
    let model = &report.models;
    assert!(model.partitioned_fcfs < model.central_fcfs && model.central_fcfs < 1.0);
    for p in &m.policies {
        assert_eq!(p.sweep.len(), opts.loads.len());
        for s in p.sweep.iter().chain(&p.probes) {
            assert_eq!((s.lost, s.duplicated, s.fifo_violations), (0, 0, 0));
        }
        match p.bracket {
            Bracket::BelowSweep => assert_eq!(p.max_load, 0.0),
            Bracket::Bracketed | Bracket::AboveSweep => assert!(p.max_load >= opts.loads[0]),
            Bracket::Inconclusive => {}
        }
    }
    let mut json = Vec::new();
    report.write_json(&mut json).expect("json");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid json");
    assert_eq!(v["means"][0]["policies"][1]["policy"], "zygos-noipi");
    let mut csv = Vec::new();
    report.write_csv(&mut csv).expect("csv");
    let csv = String::from_utf8(csv).expect("utf-8");
    let points: usize = m
        .policies
        .iter()
        .map(|p| p.sweep.len() + p.probes.len())
        .sum();
    assert_eq!(csv.lines().count(), 1 + points);
}
