//! CRAB in guests: the load balancer VM (apps/crab-lb), two tcp-echo server VMs with CRAB
//! (`crab-vip=`), a tcp-echo client VM with CRAB (`crab=on`) and a Linux client without it, on
//! one Linux bridge inside a namespace the test creates (nothing is sent from the root
//! namespace):
//!
//! ```text
//!   client VM 10.80.0.5 --SYN+option--> crab-lb VM (VIP 10.80.0.100) --SYN--> 10.80.0.11 / .12
//!        ^                                                                       |
//!        +--------- SYN-ACK+option, then every segment, directly ----------------+
//!   Linux 10.80.0.1 (no CRAB) --every segment--> crab-lb --MAC rewritten--> its hashed server
//!        ^                                                                       |
//!        +--------------------- answers from the VIP (direct server return) -----+
//! ```
//!
//! Checked: the CRAB client's 4 connections are redirected (2 per server by round robin) and
//! echo every round; the load balancer's capture holds their SYNs and no other segment of
//! them; the load balancer is killed mid-run and the client never notices; a Linux client
//! falls back and works, and keeps its connection across another load balancer restart.

use ferrix_tests::netns::{NetNs, unavailable};
use ferrix_tests::vm::{LiveVm, Tap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");
const TCP_CLIENT: &str = env!("CARGO_BIN_EXE_tcp-client-in-test");
const VIP: &str = "10.80.0.100";
const LB_MAC: &str = "52:54:00:80:00:10";
const BACKENDS: &str = "backends=10.80.0.11@52:54:00:80:00:11,10.80.0.12@52:54:00:80:00:12";

fn topology() -> Option<NetNs> {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return None;
    }
    let ns = NetNs::create();
    ns.segment("cb0", "10.80.0.1/24", "ct", 5);
    Some(ns)
}

/// Boots `app` on TAP `dev` with `mac`, waiting for `ready` on its console.
fn vm(
    ns: &NetNs,
    app: &str,
    (dev, mac): (&str, &str),
    opts: &[&str],
    args: &[&str],
    ready: &str,
) -> LiveVm {
    let limit = Duration::from_secs(120);
    LiveVm::on_tap(
        FERRIX,
        Tap { ns, dev, mac },
        app,
        (opts, args),
        ready,
        limit,
    )
}

/// The load balancer VM with VMM options `opts`, `policy=...` and more arguments.
fn lb_vm(ns: &NetNs, opts: &[&str], policy: &str, extra: &[&str]) -> LiveVm {
    let mut args = vec!["vip=10.80.0.100", "port=80", BACKENDS, policy];
    args.extend_from_slice(extra);
    vm(ns, "crab-lb", ("ct0", LB_MAC), opts, &args, ": ready")
}

/// The round-robin load balancer, capturing to `pcap`.
fn lb(ns: &NetNs, pcap: &Path, extra: &[&str]) -> LiveVm {
    let p = pcap.to_string_lossy().into_owned();
    lb_vm(ns, &["--pcap", &p], "policy=rr", extra)
}

/// CRAB server `i` (1 or 2: 10.80.0.1i on TAP cti) with more arguments.
fn server_with(ns: &NetNs, i: usize, extra: &[&str]) -> LiveVm {
    let ip = format!("ferrix.ip=10.80.0.1{i}/24");
    let mut args = vec![ip.as_str(), "port=80", "crab-vip=10.80.0.100"];
    args.extend_from_slice(extra);
    vm(
        ns,
        "tcp-echo",
        (&format!("ct{i}"), &format!("52:54:00:80:00:1{i}")),
        &[],
        &args,
        "tcp-echo: listening",
    )
}

fn server(ns: &NetNs, i: usize) -> LiveVm {
    server_with(ns, i, &[])
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ferrix-tcp-client` on TAP ct4 (10.80.0.6) with CRAB: `conns` connections of `rounds`
/// echoes through the VIP; its success and output.
fn tcp_client(ns: &NetNs, conns: usize, rounds: u32) -> (bool, String) {
    let (c, r) = (conns.to_string(), rounds.to_string());
    let out = ns
        .command(&[
            TCP_CLIENT,
            "--tap",
            "ct4",
            "--ip",
            "10.80.0.6/24",
            "--mac",
            "52:54:00:80:00:06",
            "--connect",
            "10.80.0.100:80",
            "--conns",
            &c,
            "--rounds",
            &r,
            "--crab",
        ])
        .output()
        .expect("tcp-client");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `python3 -c FALLBACK_PY VIP GO`: a plain Linux TCP client (no CRAB) echoes through the
/// VIP, prints `phase 1 ok`, waits for the file GO, echoes again on the same connection and
/// prints `phase 2 ok`.
const FALLBACK_PY: &str = r#"
import os, socket, sys, time
vip, go = sys.argv[1], sys.argv[2]
s = socket.create_connection((vip, 80), timeout=20)
def echo(msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("closed")
        got += chunk
    assert got == msg, got
for i in range(10):
    echo(b"plain TCP through the load balancer %d\n" % i)
print("phase 1 ok", flush=True)
deadline = time.time() + 120
while not os.path.exists(go):
    if time.time() > deadline:
        raise SystemExit("no go")
    time.sleep(0.05)
for i in range(10):
    echo(b"after the restart %d\n" % i)
s.close()
print("phase 2 ok", flush=True)
"#;

#[test]
fn crab_redirects_past_the_load_balancer_and_plain_clients_fall_back() {
    let Some(ns) = topology() else { return };
    let dir = std::env::temp_dir().join(format!("ferrix-crab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = TempDir(dir.clone());
    let servers: Vec<LiveVm> = (1..=2).map(|i| server(&ns, i)).collect();
    let pcap1 = dir.join("lb1.pcap");
    let lb1 = lb(&ns, &pcap1, &[]);
    // The CRAB client: 4 connections, 30 rounds 100 ms apart (3 s).
    let client_args = [
        "ferrix.ip=10.80.0.5/24",
        "client=10.80.0.100:80",
        "conns=4",
        "rounds=30",
        "interval-ms=100",
        "crab=on",
        "timeout-ms=60000",
    ];
    let client = vm(
        &ns,
        "tcp-echo",
        ("ct3", "52:54:00:80:00:05"),
        &[],
        &client_args,
        "virtio-net",
    );
    // Once the four connections are up, the load balancer goes away mid-run.
    let mut client = client;
    assert!(
        client.wait(
            "tcp-echo: client: 4 connections up",
            Duration::from_secs(60)
        ),
        "client:\n{}\nload balancer:\n{}",
        client.console(),
        lb1.console()
    );
    let lb1_console = lb1.kill();
    let (status, out) = client.finish(Duration::from_secs(120));
    eprintln!("client:\n{out}\nload balancer 1:\n{lb1_console}");
    assert!(
        status.is_some_and(|s| s.success()),
        "the CRAB client failed"
    );
    assert!(
        out.contains(
            "4 of 4 connections, 30 rounds echoed, redirected 4 (10.80.0.11=2 10.80.0.12=2)"
        ),
        "{out}"
    );
    let tshark = ferrix_tests::tshark::require();
    let pcap1 = ferrix_tests::tshark::readable(&pcap1);
    if tshark
        && let Some(syns) = ferrix_tests::tshark::count(
            &pcap1,
            "tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.dst == 10.80.0.100 && tcp.option_kind == 42",
        )
    {
        assert_eq!(syns, 4, "SYNs with the option at the load balancer");
        let forwarded = ferrix_tests::tshark::count(
            &pcap1,
            "tcp.flags.syn == 1 && (ip.dst == 10.80.0.11 || ip.dst == 10.80.0.12) && eth.src == 52:54:00:80:00:10",
        );
        assert_eq!(forwarded, Some(4), "SYNs sent on");
        // No other segment of those connections reached the load balancer.
        let others = ferrix_tests::tshark::count(
            &pcap1,
            "tcp && !(tcp.flags.syn == 1 && tcp.flags.ack == 0) && eth.dst == 52:54:00:80:00:10",
        );
        assert_eq!(
            others,
            Some(0),
            "segments past the handshake at the load balancer"
        );
    }

    // ferrix's TCP client as a Linux process (tools/tcp-client on TAP ct4): a CRAB client too,
    // through a fresh load balancer.
    let pcap_tool = dir.join("lb-tool.pcap");
    let lb_tool = lb(&ns, &pcap_tool, &["idle-exit-ms=3000"]);
    let (ok, text) = tcp_client(&ns, 4, 20);
    let (status, lb_tool_console) = lb_tool.finish(Duration::from_secs(60));
    eprintln!("tcp-client:\n{text}\nload balancer:\n{lb_tool_console}");
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "4 of 4 connections, 20 rounds echoed, redirected 4 (10.80.0.11=2 10.80.0.12=2)"
        ),
        "{text}"
    );
    assert!(status.is_some_and(|s| s.success()));
    assert!(
        lb_tool_console.contains("redirected: 4, fallback_syns: 0, fallback_segments: 0,"),
        "{lb_tool_console}"
    );

    // A Linux client without CRAB: the hash fallback, across another restart.
    let pcap2 = dir.join("lb2.pcap");
    let lb2 = lb(&ns, &pcap2, &[]);
    let go = dir.join("go");
    let mut py = ns
        .command(&["python3", "-c", FALLBACK_PY, VIP, &go.to_string_lossy()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(py.stdout.take().expect("stdout")).lines();
    let phase1 = lines.next().and_then(Result::ok);
    let lb2_console = lb2.kill();
    if phase1.as_deref() != Some("phase 1 ok") {
        let frames = std::process::Command::new("tshark")
            .arg("-r")
            .arg(ferrix_tests::tshark::readable(&pcap2))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "the plain client failed: {phase1:?}\n{lb2_console}\nthe load balancer's capture:\n{frames}"
        );
    }
    let pcap3 = dir.join("lb3.pcap");
    let lb3 = lb(&ns, &pcap3, &["idle-exit-ms=3000"]);
    std::fs::write(&go, b"go").expect("go file");
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("phase 2 ok")
    );
    assert!(py.wait().expect("python3").success());
    let (status, lb3_console) = lb3.finish(Duration::from_secs(60));
    eprintln!("load balancer 2:\n{lb2_console}\nload balancer 3:\n{lb3_console}");
    assert!(status.is_some_and(|s| s.success()), "load balancer 3");
    // The restarted one never saw the SYN, yet forwarded the connection's segments to the
    // same server (the hash has no state), and no SYN was redirected.
    let stats = lb3_console
        .lines()
        .find(|l| l.starts_with("crab-lb: exit:"))
        .unwrap_or_default();
    assert!(stats.contains("redirected: 0, fallback_syns: 0"), "{stats}");
    assert!(!stats.contains("fallback_segments: 0,"), "{stats}");
    let pcap2 = ferrix_tests::tshark::readable(&pcap2);
    if tshark
        && let Some(data) =
            ferrix_tests::tshark::count(&pcap2, "tcp.len > 0 && ip.src == 10.80.0.1")
    {
        assert!(
            data >= 10,
            "the plain client's data went through the load balancer: {data}"
        );
    }
    drop(servers);
}

/// `python3 -c HOLD_PY GO`: holds 5 plain connections to server 1's own address (not the
/// VIP), prints `held`, and closes them once the file GO exists.
const HOLD_PY: &str = r#"
import os, socket, sys, time
go = sys.argv[1]
conns = [socket.create_connection(("10.80.0.11", 80), timeout=20) for _ in range(5)]
for s in conns:
    s.sendall(b"hello\n")
    assert s.recv(64) == b"hello\n"
print("held", flush=True)
deadline = time.time() + 120
while not os.path.exists(go):
    if time.time() > deadline:
        raise SystemExit("no go")
    time.sleep(0.05)
for s in conns:
    s.close()
print("closed", flush=True)
"#;

/// Least connections from the servers' reports: server 1 holds 5 connections it was given
/// directly (the load balancer never saw them), and both servers report their open
/// connections every 100 ms; the 4 CRAB connections of the Linux tcp-client then all go to
/// server 2, where round robin would have split them.
#[test]
fn crab_least_connections_follows_the_servers_reports() {
    let Some(ns) = topology() else { return };
    let dir = std::env::temp_dir().join(format!("ferrix-crab-lc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = TempDir(dir.clone());
    let servers: Vec<LiveVm> = (1..=2)
        .map(|i| server_with(&ns, i, &["crab-report-ms=100"]))
        .collect();
    let lb = lb_vm(&ns, &[], "policy=lc", &["idle-exit-ms=3000"]);
    let go = dir.join("go");
    let mut py = ns
        .command(&["python3", "-c", HOLD_PY, &go.to_string_lossy()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(py.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("held"));
    // A few reports' time for server 1's count to reach the load balancer.
    std::thread::sleep(Duration::from_millis(800));
    let (ok, text) = tcp_client(&ns, 4, 5);
    std::fs::write(&go, b"go").expect("go file");
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("closed"));
    assert!(py.wait().expect("python3").success());
    // The servers' reports keep the load balancer busy: it idles out once they are gone.
    drop(servers);
    let (status, console) = lb.finish(Duration::from_secs(60));
    eprintln!("tcp-client:\n{text}\nload balancer:\n{console}");
    assert!(ok, "{text}");
    assert!(
        text.contains("4 of 4 connections, 5 rounds echoed, redirected 4 (10.80.0.12=4)"),
        "{text}"
    );
    assert!(status.is_some_and(|s| s.success()), "{console}");
    let stats = console
        .lines()
        .find(|l| l.starts_with("crab-lb: exit:"))
        .unwrap_or_default();
    assert!(stats.contains("bad_reports: 0"), "{stats}");
    assert!(!stats.contains(", reports: 0,"), "{stats}");
}

/// Guest instructions per redirected SYN in the load balancer (`--profile microvm-icount`:
/// the guest clock counts instructions), over 32 CRAB connections of the Linux tcp-client.
#[test]
fn crab_lb_instructions_per_syn_under_qemu_icount() {
    let Some(ns) = topology() else { return };
    let servers: Vec<LiveVm> = (1..=2).map(|i| server(&ns, i)).collect();
    let lb = lb_vm(
        &ns,
        &["--profile", "microvm-icount"],
        "policy=rr",
        &["idle-exit-ms=3000"],
    );
    let (ok, text) = tcp_client(&ns, 32, 1);
    assert!(ok, "{text}");
    let (status, console) = lb.finish(Duration::from_secs(120));
    drop(servers);
    assert!(status.is_some_and(|s| s.success()), "{console}");
    let (per, line) =
        ferrix_tests::cost_on_line(&console, " ns per redirected SYN in handle over ");
    assert!(line.ends_with("over 32 SYNs"), "{line}");
    assert!(per > 0 && per < 20_000, "{line}");
    eprintln!("crab-lb guest instructions per redirected SYN (-icount): {line}");
}
