//! Deterministic cluster simulation of ferrix-raft (tests/harness): many seeds of vanilla
//! Raft and HovercRaft clusters under loss, duplication, reordering, partitions and crashes,
//! with Raft's safety properties checked on every step and every client history checked for
//! linearizability.
//!
//! A failing seed prints itself and the tail of its trace; the whole trace is written to a
//! file and `SIM_SEED=<seed> SIM_MODE=<vanilla|hover> SIM_PRESET=<default|rr|nine|plus|nine-plus> cargo test
//! -p ferrix-raft --test sim replay -- --ignored --nocapture` replays it. `SIM_SEEDS=<count>` sets the count of
//! the ignored `many_seeds` test.

mod harness;

use ferrix_raft::{Mode, ReplierPolicy};
use harness::lin::{self, Kind};
use harness::{Spec, run};

fn op(client: usize, call: u64, ret: u64, kind: Kind) -> lin::Op {
    lin::Op {
        client,
        call,
        ret,
        kind,
    }
}

#[test]
fn checker_accepts_and_rejects() {
    use Kind::{Read, Write};
    // Concurrent write and read: the read may see either value.
    let ok = [op(0, 0, 10, Write(1)), op(1, 5, 8, Read(1))];
    assert!(lin::check(&ok, 0).is_ok());
    let ok = [op(0, 0, 10, Write(1)), op(1, 5, 8, Read(0))];
    assert!(lin::check(&ok, 0).is_ok());
    // A read after the write returned must see it (a stale read).
    let stale = [op(0, 0, 10, Write(1)), op(1, 11, 12, Read(0))];
    assert!(lin::check(&stale, 0).is_err());
    // Seeing a new value then the old one again.
    let back = [
        op(0, 0, 100, Write(1)),
        op(1, 10, 20, Read(1)),
        op(1, 30, 40, Read(0)),
    ];
    assert!(lin::check(&back, 0).is_err());
    // A value nobody wrote.
    assert!(lin::check(&[op(0, 0, 1, Read(7))], 0).is_err());
    // A write that never returned may have happened...
    let maybe = [op(0, 0, u64::MAX, Write(5)), op(1, 50, 60, Read(5))];
    assert!(lin::check(&maybe, 0).is_ok());
    // ...or not.
    let maybe = [op(0, 0, u64::MAX, Write(5)), op(1, 50, 60, Read(0))];
    assert!(lin::check(&maybe, 0).is_ok());
    // But not before it was called.
    let early = [op(1, 0, 10, Read(5)), op(0, 20, u64::MAX, Write(5))];
    assert!(lin::check(&early, 0).is_err());
}

/// Named variations of the default spec, so that a failing seed replays exactly.
fn preset(name: &str, seed: u64, mode: Mode) -> Spec {
    let mut s = Spec::new(seed, size(seed), mode);
    match name {
        "default" => {}
        "rr" => s.replier = ReplierPolicy::RoundRobin,
        "nine" => {
            s.nodes = 9;
            s.loss = 0.15;
            s.dup = 0.1;
            s.crash_every = 600;
            s.partition_every = 800;
        }
        "plus" => s.aggregator = true,
        "nine-plus" => {
            s.nodes = 9;
            s.loss = 0.1;
            s.dup = 0.1;
            s.crash_every = 800;
            s.partition_every = 800;
            s.aggregator = true;
        }
        other => panic!("unknown preset {other}"),
    }
    s
}

fn trace_file(seed: u64) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ferrix-raft-sim-{seed}.trace"))
}

/// Runs `spec`; on failure replays it with the trace on and panics with the seed.
fn must_pass(spec: &Spec, preset: &str) -> harness::Report {
    match run(spec) {
        Ok(r) => r,
        Err(f) => {
            let mut traced = spec.clone();
            traced.trace = true;
            let trace = match run(&traced) {
                Err(t) => t.trace,
                Ok(_) => vec!["(the traced replay passed: nondeterminism!)".into()],
            };
            let path = trace_file(f.seed);
            let _ = std::fs::write(&path, trace.join("\n"));
            let tail = trace[trace.len().saturating_sub(60)..].join("\n");
            let mode = if spec.mode == Mode::Vanilla {
                "vanilla"
            } else {
                "hover"
            };
            panic!(
                "seed {} ({mode}, {} nodes, preset {preset}) failed: {}\n--- trace tail ---\n\
                 {tail}\n--- full trace: {} (replay: SIM_SEED={} SIM_MODE={mode} \
                 SIM_PRESET={preset} cargo test -p ferrix-raft --test sim replay -- --ignored \
                 --nocapture)",
                f.seed,
                spec.nodes,
                f.what,
                path.display(),
                f.seed,
            );
        }
    }
}

/// The cluster size for a seed: mostly 3 and 5, some 7.
fn size(seed: u64) -> u8 {
    [3, 5, 3, 5, 7][(seed % 5) as usize]
}

fn seeds(mode: Mode, range: std::ops::Range<u64>, name: &str) {
    let mut total = harness::Report::default();
    for seed in range {
        total.add(&must_pass(&preset(name, seed, mode), name));
    }
    eprintln!("{mode:?}: {total:?}");
    // The faults did happen.
    assert!(total.crashes > 0 && total.partitions > 0 && total.snapshots_installed > 0);
    if mode == Mode::Hover {
        assert!(total.recoveries > 0);
    }
    if name.contains("plus") {
        // The aggregator was used (AGG_COMMITs) and crashed.
        assert!(total.agg_commits > 0 && total.agg_crashes > 0, "{total:?}");
        assert!(
            total.agg_switches > 0 && total.agg_fallbacks > 0,
            "{total:?}"
        );
        assert!(total.follower_agg_commits > 0, "{total:?}");
    }
}

#[test]
fn vanilla_raft_stays_linearizable() {
    seeds(Mode::Vanilla, 0..2500, "default");
}

#[test]
fn hovercraft_jbsq_stays_linearizable() {
    seeds(Mode::Hover, 10_000..12_000, "default");
}

#[test]
fn hovercraft_round_robin_stays_linearizable() {
    seeds(Mode::Hover, 20_000..20_500, "rr");
}

/// HovercRaft++: an aggregator process under the same faults, and its own crashes.
#[test]
fn hovercraft_plus_stays_linearizable() {
    seeds(Mode::Hover, 40_000..41_500, "plus");
    seeds(Mode::Vanilla, 42_000..42_200, "plus");
    seeds(Mode::Hover, 43_000..43_050, "nine-plus");
}

#[test]
fn nine_nodes_heavy_faults() {
    for mode in [Mode::Vanilla, Mode::Hover] {
        seeds(mode, 30_000..30_100, "nine");
    }
}

/// The checks can fail: reads answered from a replica's local state, without Raft, are
/// caught as stale in some seeds.
#[test]
fn stale_reads_are_caught() {
    let mut caught = 0;
    for seed in 0..60 {
        let mut spec = Spec::new(seed, 5, Mode::Hover);
        spec.stale_reads = true;
        if let Err(f) = run(&spec) {
            assert!(f.what.contains("linearizable"), "{}", f.what);
            caught += 1;
        }
    }
    assert!(caught > 0, "no stale read caught in 60 seeds");
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// `SIM_SEEDS` (default 10,000) seeds of each mode.
#[test]
#[ignore]
fn many_seeds() {
    let n = env("SIM_SEEDS").unwrap_or(10_000);
    seeds(Mode::Vanilla, 100_000..100_000 + n, "default");
    seeds(Mode::Hover, 200_000..200_000 + n, "default");
    seeds(Mode::Hover, 300_000..300_000 + n, "plus");
}

/// Replays one seed with the trace printed.
#[test]
#[ignore]
fn replay() {
    let seed = env("SIM_SEED").expect("SIM_SEED");
    let mode = match std::env::var("SIM_MODE").as_deref() {
        Ok("hover") => Mode::Hover,
        _ => Mode::Vanilla,
    };
    let name = std::env::var("SIM_PRESET").unwrap_or_else(|_| "default".into());
    let mut spec = preset(&name, seed, mode);
    spec.trace = true;
    match run(&spec) {
        Ok(r) => println!("seed {seed} passed: {r:?}"),
        Err(f) => {
            println!("{}", f.trace.join("\n"));
            panic!("seed {seed}: {}", f.what);
        }
    }
}
