//! `r2p2-router` + two `r2p2-server`s + `r2p2-client`, all inside a network namespace the test
//! creates (addresses on its loopback; no traffic leaves it). The servers join by heartbeat
//! and send FEEDBACK to the router; the router forwards REQ0s through its raw socket with the
//! client as source, so each server answers the client directly from its own address (each
//! server's socket is bound to its address): every request must be answered, both servers
//! must serve, and the router must have forwarded every REQ0 and seen every FEEDBACK.
//! Needs root (namespaces, raw socket); elsewhere the test prints why it is skipped.

mod common;

use common::field;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

const ROUTER: &str = "10.77.0.1";
const SERVERS: [&str; 2] = ["10.77.0.11", "10.77.0.12"];
const CLIENT: &str = "10.77.0.100";

fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    None
}

/// A namespace, deleted on drop.
struct Ns(String);

impl Ns {
    fn create() -> Ns {
        let ns = Ns(format!("ferrix-r2p2-router-{}", std::process::id()));
        ok(Command::new("ip").args(["netns", "add", &ns.0]).output());
        ns.run(&["ip", "link", "set", "lo", "up"]);
        for a in [ROUTER, SERVERS[0], SERVERS[1], CLIENT] {
            ns.run(&["ip", "addr", "add", &format!("{a}/24"), "dev", "lo"]);
        }
        ns
    }
    fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(argv);
        c
    }
    fn run(&self, argv: &[&str]) -> Output {
        ok(self.command(argv).output())
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ok(out: std::io::Result<Output>) -> Output {
    let out = out.expect("run command");
    assert!(
        out.status.success(),
        "command failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A process killed (SIGINT first, so the router prints its stats) when dropped.
struct Proc {
    child: Child,
    out: Option<BufReader<ChildStdout>>,
}

impl Proc {
    /// Starts `argv` in `ns` and waits for its first output line, which must start with
    /// `expect`.
    fn start(ns: &Ns, argv: &[&str], expect: &str) -> Proc {
        let mut child = ns
            .command(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if !line.starts_with(expect) {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("{argv:?}: expected {expect:?}, got {line:?} {err}");
        }
        Proc {
            child,
            out: Some(out),
        }
    }

    /// Sends SIGINT and returns the rest of its output.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let mut rest = String::new();
        if let Some(mut o) = self.out.take() {
            let _ = o.read_to_string(&mut rest);
        }
        rest
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(ns: &Ns, args: &[&str]) -> String {
    let bind = format!("{CLIENT}:0");
    let server = format!("{ROUTER}:8000");
    let mut argv = vec![
        env!("CARGO_BIN_EXE_r2p2-client"),
        "--server",
        &server,
        "--bind",
        &bind,
        "--timeout-ms",
        "3000",
    ];
    argv.extend_from_slice(args);
    common::succeeded(&ns.command(&argv).output().unwrap())
}

#[test]
fn router_balances_two_servers_in_a_namespace() {
    if let Some(why) = skip_reason() {
        println!("skipped: {why}");
        return;
    }
    let ns = Ns::create();
    let router = Proc::start(
        &ns,
        &[
            env!("CARGO_BIN_EXE_r2p2-router"),
            "--listen",
            &format!("{ROUTER}:8000"),
            "--feedback",
            &format!("{ROUTER}:9000"),
            "--policy",
            "jbsq:2",
            "--stats",
        ],
        "r2p2-router: jbsq:2 on",
    );
    let feedback = format!("{ROUTER}:9000");
    let servers: Vec<Proc> = SERVERS
        .iter()
        .map(|s| {
            Proc::start(
                &ns,
                &[
                    env!("CARGO_BIN_EXE_r2p2-server"),
                    "--listen",
                    &format!("{s}:8000"),
                    "--router",
                    &feedback,
                    "--jbsq-n",
                    "2",
                    "--poll",
                    "block",
                ],
                "r2p2-server: listening on",
            )
        })
        .collect();
    // The servers' first heartbeats go out as they start; give the router a moment to take
    // them (a REQ0 before would get DROP, and the client would fail loudly).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let single = client(&ns, &["-n", "400", "--depth", "8", "--poll", "block"]);
    assert!(single.contains("ok 400 "), "{single}");
    // Multi-packet requests: REQ0 through the router, the rest straight to the server that
    // ACKed (which must see the client's address as the REQ0's source).
    let multi = client(&ns, &["-n", "50", "--size", "4000", "--poll", "block"]);
    assert!(multi.contains("ok 50 "), "{multi}");
    let stats = router.stop();
    drop(servers);
    println!("{single}{multi}{stats}");
    let summary = stats
        .lines()
        .find(|l| l.contains(" req0 "))
        .unwrap_or_else(|| panic!("no stats line: {stats}"));
    assert_eq!(field::<u64>(summary, "forwarded"), 450, "{stats}");
    assert_eq!(field::<u64>(summary, "refused"), 0, "{stats}");
    let per_server: Vec<&str> = stats.lines().filter(|l| l.contains(" server ")).collect();
    assert_eq!(per_server.len(), 2, "{stats}");
    for (line, addr) in per_server.iter().zip(SERVERS) {
        assert!(line.contains(&format!("server {addr}:8000")), "{stats}");
        assert!(
            field::<u64>(line, "completed") > 0,
            "{addr} served nothing: {stats}"
        );
        assert_eq!(field::<u64>(line, "outstanding"), 0, "{stats}");
    }
}
