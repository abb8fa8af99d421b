//! `ferrix deploy --local` end to end: the example testbed (the R2P2 router with JBSQ(1), two
//! synthetic servers and a Lancet agent) built in a network namespace of its own, loaded by
//! Lancet, and torn down. Checked: every VM came up, Lancet's report (JSON and CSV) is in the
//! results directory with requests answered, the consoles are kept, and the namespace is
//! gone afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

fn testbed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/ferrix-cli/testbeds/local-router.toml")
}

#[test]
fn deploy_local_runs_the_router_testbed_in_a_namespace() {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let results = std::env::temp_dir().join(format!("ferrix-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&results);
    let out = Command::new(FERRIX)
        .arg("deploy")
        .arg("--local")
        .arg("--results")
        .arg(&results)
        .arg(testbed())
        .output()
        .expect("ferrix deploy");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let dir = results.join("local-router");
    let logs = ["router", "server1", "server2"]
        .iter()
        .map(|r| {
            let l = std::fs::read_to_string(dir.join(format!("{r}.log"))).unwrap_or_default();
            format!("--- {r}:\n{l}")
        })
        .collect::<String>();
    // 0: conclusive; 1: measured, not conclusive (a --quick look never is).
    assert!(matches!(out.status.code(), Some(0 | 1)), "{text}\n{logs}");
    for up in [
        "router up at 10.79.0.10",
        "server1 up",
        "server2 up",
        "agent agent1 at 127.0.0.1:",
    ] {
        assert!(text.contains(&format!("deploy: {up}")), "{up}:\n{text}");
    }
    assert!(text.contains("deploy: results in"), "{text}");
    let csv = std::fs::read_to_string(dir.join("lancet.csv")).expect("lancet.csv");
    let row = csv
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no row: {csv}"));
    let achieved: f64 = row
        .split(',')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("achieved_rps");
    assert!(achieved > 0.0, "nothing answered: {csv}\n{text}");
    let json = std::fs::read_to_string(dir.join("lancet.json")).expect("lancet.json");
    assert!(json.contains("\"target\": \"10.79.0.10:8000\""), "{json}");
    assert!(logs.contains("router: routing"), "{logs}");
    assert_eq!(logs.matches("synthetic: serving").count(), 2, "{logs}");
    assert!(dir.join("testbed.toml").exists());
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains("fxdeploy"),
        "a namespace was left behind"
    );
    // The dry run prints the same plan.
    let dry = Command::new(FERRIX)
        .args(["deploy", "--local", "--dry-run"])
        .arg(testbed())
        .output()
        .expect("ferrix deploy --dry-run");
    assert!(dry.status.success());
    assert!(
        String::from_utf8_lossy(&dry.stdout)
            .contains("coordinator: ferrix lancet run --target 10.79.0.10:8000")
    );
    let _ = std::fs::remove_dir_all(&results);
}

#[test]
fn deploy_refuses_a_bad_testbed_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("ferrix-deploy-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(testbed())
        .expect("testbed")
        .replace("target = \"router:8000\"", "target = \"nobody:8000\"");
    std::fs::write(&bad, text).expect("write");
    let out = Command::new(FERRIX)
        .args(["deploy", "--local"])
        .arg(&bad)
        .output()
        .expect("ferrix deploy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("no VM role named 'nobody'"), "{err}");
    // Remote mode without hosts says what is missing.
    let out = Command::new(FERRIX)
        .args(["deploy", "--dry-run"])
        .arg(testbed())
        .output()
        .expect("ferrix deploy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs --local (or name a [[host]])"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
