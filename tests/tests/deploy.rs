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

/// `ssh -o BatchMode=yes DEST CMD` stand-in: runs CMD here.
const FAKE_SSH: &str = "#!/usr/bin/env python3
import subprocess, sys
sys.exit(subprocess.call(['sh', '-c', sys.argv[4]]))
";

/// `scp -o BatchMode=yes SRC... DST` stand-in: HOST:PATH is PATH here; sources may be globs.
const FAKE_SCP: &str = "#!/usr/bin/env python3
import glob, os, shutil, sys
def here(p):
    return p.split(':', 1)[1] if ':' in p and not p.startswith('/') else p
*srcs, dst = [here(a) for a in sys.argv[3:]]
files = [f for s in srcs for f in (glob.glob(s) or [s])]
for f in files:
    shutil.copy(f, os.path.join(dst, os.path.basename(f)) if dst.endswith('/') or os.path.isdir(dst) else dst)
";

/// The remote mode end to end, with ssh and scp replaced by stand-ins that run on this
/// machine, and the whole `ferrix deploy` inside a namespace the test creates (the "hosts"
/// are working directories, the VMs' `net` TAPs of the namespace's bridge): the binary and
/// the images are installed, the VMs and the agent started with `nohup`, their ready lines
/// polled, Lancet run against the agent's address, the consoles collected per host and every
/// process stopped.
#[test]
fn deploy_remote_mode_runs_over_ssh_stand_ins() {
    use std::os::unix::fs::PermissionsExt;
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let ns = ferrix_tests::netns::NetNs::create();
    ns.segment("db0", "10.79.0.1/24", "dt", 3);
    let root = std::env::temp_dir().join(format!("ferrix-deploy-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("dir");
    for (name, text) in [("fake-ssh", FAKE_SSH), ("fake-scp", FAKE_SCP)] {
        let p = root.join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let (n1, n2) = (root.join("n1"), root.join("n2"));
    let text = std::fs::read_to_string(testbed())
        .expect("testbed")
        .replace("name = \"local-router\"", "name = \"remote-router\"")
        .replace(
            "[[role]]\nname = \"router\"",
            "[[role]]\nname = \"router\"\nhost = \"n1\"\nnet = \"tap:dt0\"\nmac = \"52:54:00:7e:00:10\"",
        )
        .replace(
            "[[role]]\nname = \"server1\"",
            "[[role]]\nname = \"server1\"\nhost = \"n2\"\nnet = \"tap:dt1\"",
        )
        .replace(
            "[[role]]\nname = \"server2\"",
            "[[role]]\nname = \"server2\"\nhost = \"n2\"\nnet = \"tap:dt2\"",
        )
        .replace(
            "kind = \"agent\"",
            "kind = \"agent\"\nhost = \"n2\"\nlisten = \"127.0.0.1:6001\"",
        )
        + &format!(
            "\n[[host]]\nname = \"n1\"\nssh = \"root@127.0.0.1\"\ndir = \"{}\"\n\n[[host]]\nname = \"n2\"\nssh = \"127.0.0.1\"\ndir = \"{}\"\n",
            n1.display(),
            n2.display()
        );
    let tb = root.join("remote.toml");
    std::fs::write(&tb, &text).expect("testbed");
    let results = root.join("results");
    let (ssh, scp) = (root.join("fake-ssh"), root.join("fake-scp"));
    let out = ns
        .command(&[
            FERRIX,
            "deploy",
            "--ssh",
            ssh.to_str().unwrap(),
            "--scp",
            scp.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            tb.to_str().unwrap(),
        ])
        .output()
        .expect("ferrix deploy");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let dir = results.join("remote-router");
    let logs = |host: &str, role: &str| {
        std::fs::read_to_string(dir.join(host).join(format!("{role}.log"))).unwrap_or_default()
    };
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{text}\nrouter:\n{}",
        logs("n1", "router")
    );
    for step in [
        "install ferrix on n1",
        "copy images to n2",
        "start router",
        "router up",
        "server2 up",
        "start agent1",
        "collect from n2",
        "stop on n1",
    ] {
        assert!(text.contains(&format!("deploy: {step}")), "{step}:\n{text}");
    }
    assert!(n1.join("ferrix").exists() && n2.join("synthetic").exists());
    assert!(logs("n1", "router").contains("router: routing"));
    assert!(logs("n2", "server1").contains("synthetic: serving"));
    assert!(logs("n2", "agent1").contains("lancet agent listening on 127.0.0.1:6001"));
    let csv = std::fs::read_to_string(dir.join("lancet.csv")).expect("lancet.csv");
    let achieved: f64 = csv
        .lines()
        .nth(1)
        .and_then(|r| r.split(',').nth(1)?.parse().ok())
        .unwrap_or(0.0);
    assert!(achieved > 0.0, "nothing answered: {csv}\n{text}");
    // Everything was stopped: no VM of this run is left.
    let ps = Command::new("pgrep")
        .args(["-f", n1.to_str().unwrap()])
        .output()
        .expect("pgrep");
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
    let _ = std::fs::remove_dir_all(&root);
}
