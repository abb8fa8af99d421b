//! The R2P2 router in a guest, with guest servers and a Linux client, all on one Linux bridge
//! inside a namespace the test creates (nothing is sent from the root namespace):
//!
//! ```text
//!   r2p2-client (10.78.0.1, the bridge) --REQ0--> router VM (10.78.0.10:8000)
//!        ^                                          | REQ0 rewritten in place, client kept
//!        |                                          v  as the source
//!        +-------- RESPONSE, direct ------- synthetic VMs (10.78.0.11, .12 :8000)
//!                                             FEEDBACK + heartbeats -> 10.78.0.10:9000
//! ```
//!
//! Checked: every request succeeds, the router's capture holds the forwarded REQ0s (source
//! the client) and no reply from the router, both servers got requests (the router's server
//! lines), a killed server is removed after the server timeout and the other answers alone,
//! and a flood beyond the central queue's capacity is answered with counted DROPs. The same
//! topology also runs under the ferrix shim (short: its guest kernel is emulated here).

use ferrix_tests::netns::{NetNs, unavailable};
use ferrix_tests::vm::{LiveVm, Tap};
use std::process::Command;
use std::time::Duration;

/// The `ferrix` command and `r2p2-client`, built for the tests.
const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");
const R2P2_CLIENT: &str = env!("CARGO_BIN_EXE_r2p2-client-in-test");

const CLIENT_IP: &str = "10.78.0.1";
const ROUTER_IP: &str = "10.78.0.10";
const ROUTER_MAC: &str = "52:54:00:78:00:10";

/// A VM started inside the namespace; killed when dropped (also on failure).
struct Vm;

impl Vm {
    /// Boots `app` on TAP `tap` with `mac`, the kernel arguments `args`, and `extra` ferrix
    /// options; waits until the console shows `ready`.
    #[allow(clippy::too_many_arguments)]
    fn start(
        ns: &NetNs,
        vmm: &str,
        app: &str,
        tap: &str,
        mac: &str,
        extra: &[&str],
        args: &[&str],
        ready: &str,
    ) -> LiveVm {
        let opts = [&["--vmm", vmm][..], extra].concat();
        LiveVm::on_tap(
            FERRIX,
            Tap { ns, dev: tap, mac },
            app,
            (&opts, args),
            ready,
            Duration::from_secs(300),
        )
    }

    /// Starts `cmd` (a `ferrix run`) and waits until its console shows `ready`.
    fn spawn(cmd: Command, app: &str, ready: &str) -> LiveVm {
        let mut vm = LiveVm::spawn(cmd);
        assert!(
            vm.wait(ready, Duration::from_secs(300)),
            "{app} never became ready:\n{}",
            vm.console()
        );
        vm
    }
}

/// Pings `ip` from the namespace until it answers (the boot is in the deadline).
fn ping(ns: &NetNs, ip: &str) {
    let out = ns
        .command(&["ping", "-c", "1", "-i", "0.2", "-w", "120", ip])
        .output()
        .expect("ping");
    assert!(out.status.success(), "{ip} never answered ping");
}

/// Runs `r2p2-client` in the namespace against the router; returns (success, its output).
fn client(ns: &NetNs, count: u64, depth: u64, extra: &[&str]) -> (bool, String) {
    let (count, depth) = (count.to_string(), depth.to_string());
    let server = format!("{ROUTER_IP}:8000");
    let mut argv = vec![
        R2P2_CLIENT,
        "--server",
        &server,
        "--count",
        &count,
        "--depth",
        &depth,
        "--size",
        "64",
    ];
    argv.extend_from_slice(extra);
    let out = ns.command(&argv).output().expect("r2p2-client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The number after `key` in `line` (`... key N ...`).
fn field(line: &str, key: &str) -> Option<u64> {
    let mut w = line.split_whitespace();
    while let Some(x) = w.next() {
        if x == key {
            return w.next()?.trim_end_matches([',', ';']).parse().ok();
        }
    }
    None
}

/// The router's `router: stats` line.
fn stats_line(console: &str) -> &str {
    console
        .lines()
        .find(|l| l.starts_with("router: stats "))
        .unwrap_or_else(|| panic!("no stats line:\n{console}"))
}

/// Most REQ0s assigned to `server` in any `router: server` line.
fn assigned_to(console: &str, server: &str) -> u64 {
    console
        .lines()
        .filter(|l| l.starts_with(&format!("router: server {server} ")))
        .filter_map(|l| field(l, "assigned"))
        .max()
        .unwrap_or(0)
}

/// A namespace with bridge `rb0` (the client's address) and TAP ports `rt0..rtN`.
fn topology(taps: usize) -> Option<NetNs> {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return None;
    }
    let ns = NetNs::create();
    ns.bridge("rb0", &format!("{CLIENT_IP}/24"));
    for i in 0..taps {
        ns.bridged_tap(&format!("rt{i}"), "rb0");
    }
    Some(ns)
}

/// Boots server `i` (10.78.0.1i) on TAP `rt{i}`, joining the router.
fn server(ns: &NetNs, vmm: &str, i: usize) -> LiveVm {
    let ip = format!("ferrix.ip=10.78.0.1{i}/24");
    let mac = format!("52:54:00:78:00:1{i}");
    let router = format!("router={ROUTER_IP}:9000");
    Vm::start(
        ns,
        vmm,
        "synthetic",
        &format!("rt{i}"),
        &mac,
        &[],
        &[&ip, &router],
        "synthetic: serving",
    )
}

/// Router + two servers + the Linux client; `count` requests per phase (depth 4, so JBSQ(1)
/// holds some in its central queue and spreads them over both servers), then server 2 is
/// killed and, after the server timeout, `count` more must all succeed through server 1.
/// Returns the router's console.
fn router_with_two_servers(
    vmm: &str,
    count: u64,
    client_timeout_ms: u64,
    server_timeout_ms: u64,
    pause_ms: u64,
    router_opts: &[&str],
) -> Option<String> {
    let ns = topology(3)?;
    let pcap =
        std::env::temp_dir().join(format!("ferrix-router-{vmm}-{}.pcap", std::process::id()));
    let server_timeout = format!("server-timeout-ms={server_timeout_ms}");
    let slot_timeout = format!("slot-timeout-ms={}", client_timeout_ms);
    // Longer than the pause around the kill, so the router outlives it.
    let idle_exit = format!("idle-exit-ms={}", pause_ms + server_timeout_ms * 2 + 3000);
    let router = Vm::start(
        &ns,
        vmm,
        "router",
        "rt0",
        ROUTER_MAC,
        &[&["--stats", "--pcap", pcap.to_str().unwrap()], router_opts].concat(),
        &[
            "ferrix.ip=10.78.0.10/24",
            "policy=jbsq:1",
            &server_timeout,
            &slot_timeout,
            &idle_exit,
        ],
        "router: routing",
    );
    let s1 = server(&ns, vmm, 1);
    let s2 = server(&ns, vmm, 2);
    for ip in [ROUTER_IP, "10.78.0.11", "10.78.0.12"] {
        ping(&ns, ip);
    }
    // Heartbeats every 100 ms: both servers are members well within a second, or three
    // under `-icount` (guest time there can lag the wall clock, and a loaded machine runs
    // several of these tests at once).
    let icount = router_opts.contains(&"microvm-icount");
    std::thread::sleep(Duration::from_secs(if icount { 3 } else { 1 }));
    let timeout = client_timeout_ms.to_string();
    let extra = ["--timeout-ms", &timeout];
    let (ok1, out1) = client(&ns, count, 4, &extra);
    drop(s2);
    // The router's clock is guest time: under `-icount` it runs slower than the wall clock
    // while the router busy-polls, so the pause is given in wall time by the caller.
    std::thread::sleep(Duration::from_millis(pause_ms));
    let (ok2, out2) = client(&ns, count, 4, &extra);
    let (status, console) = router.finish(Duration::from_secs(120));
    drop(s1);
    eprintln!("{out1}{out2}{console}");
    assert!(ok1, "before the kill: {out1}\n{console}");
    assert!(ok2, "after the kill: {out2}\n{console}");
    assert!(
        status.is_some_and(|s| s.success()),
        "router exit {status:?}:\n{console}"
    );
    let stats = stats_line(&console);
    assert_eq!(field(stats, "req0"), Some(2 * count), "{stats}");
    assert_eq!(field(stats, "forwarded"), Some(2 * count), "{stats}");
    assert_eq!(field(stats, "servers_joined"), Some(2), "{stats}");
    assert_eq!(field(stats, "servers_removed"), Some(1), "{stats}");
    assert!(assigned_to(&console, "10.78.0.11:8000") > 0, "{console}");
    // Under -icount a slow machine can let server 2's first heartbeat reach the router only
    // after the first phase; balance is checked by the runs without -icount.
    if !icount {
        assert!(assigned_to(&console, "10.78.0.12:8000") > 0, "{console}");
    }
    // At exit only server 1 is left, and it has taken every request of the second phase.
    let finals: Vec<&str> = console
        .lines()
        .skip_while(|l| !l.starts_with("router: exit:"))
        .skip(1)
        .take_while(|l| l.starts_with("router: server "))
        .collect();
    assert_eq!(finals.len(), 1, "{finals:?}\n{console}");
    assert!(
        finals[0].starts_with("router: server 10.78.0.11:8000 "),
        "{console}"
    );
    assert!(
        field(finals[0], "completed").unwrap_or(0) >= count,
        "{console}"
    );
    // The capture: every REQ0 left the router with the client as its source and the
    // router's MAC; nothing else the router sent came from its R2P2 port (replies go
    // straight from the servers).
    let forwarded =
        format!("eth.src == {ROUTER_MAC} && ip.src == {CLIENT_IP} && udp.dstport == 8000");
    let readable = ferrix_tests::tshark::readable(&pcap);
    if let Some(n) = ferrix_tests::tshark::count(&readable, &forwarded) {
        assert_eq!(n as u64, 2 * count, "forwarded REQ0s in the capture");
        let from_router = format!("ip.src == {ROUTER_IP} && udp.srcport == 8000");
        assert_eq!(
            ferrix_tests::tshark::count(&readable, &from_router),
            Some(0),
            "router replied"
        );
        let req0s_in = format!("ip.dst == {ROUTER_IP} && udp.dstport == 8000");
        assert_eq!(
            ferrix_tests::tshark::count(&readable, &req0s_in),
            Some(2 * count as usize)
        );
        // The R2P2 dissector reads the same capture: every REQ0 in and out, FEEDBACK with the
        // served-counter extension, nothing malformed.
        let dissected =
            |filter| ferrix_tests::tshark::fields(&readable, filter, &["frame.number"]).len();
        let req0 = "r2p2.type == 0 && r2p2.flags.first == 1 && udp.port == 8000";
        assert_eq!(dissected(req0), 4 * count as usize, "REQ0s decoded");
        assert!(dissected("r2p2.type == 2 && r2p2.feedback.served") > 0);
        assert_eq!(
            dissected("r2p2.malformed"),
            0,
            "malformed R2P2 in the capture"
        );
    } else {
        eprintln!("tshark not installed: capture not checked");
    }
    let _ = std::fs::remove_file(&readable);
    let _ = std::fs::remove_file(&pcap);
    Some(console)
}

#[test]
fn router_balances_two_servers_and_drops_a_dead_one_under_qemu() {
    router_with_two_servers("qemu", 40, 5000, 1000, 2500, &[]);
}

/// The same under QEMU `-icount shift=0` for the router (one guest ns = one instruction): the
/// router's guest instructions per REQ0 (its polls that received frames: driver, stack,
/// router logic, the FEEDBACK of the request, the forward), printed.
#[test]
fn router_instructions_per_req0_under_qemu_icount() {
    let Some(console) = router_with_two_servers(
        "qemu",
        40,
        5000,
        500,
        10_000,
        &["--profile", "microvm-icount"],
    ) else {
        return;
    };
    let (per, line) = ferrix_tests::cost_on_line(&console, " ns per REQ0 in poll");
    assert!(per > 0, "{line}");
    eprintln!("router guest instructions per REQ0 (-icount): {line}");
}

#[test]
fn router_balances_two_servers_and_drops_a_dead_one_under_shim() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    router_with_two_servers("shim", 8, 20000, 3000, 6500, &[]);
}

/// One slow server (5 ms per request), JBSQ(1) and a central queue of 2: a client with 32
/// requests outstanding gets DROPs for what does not fit, the router counts them and exits
/// cleanly.
#[test]
fn router_floods_beyond_queue_cap_get_drops_under_qemu() {
    let Some(ns) = topology(2) else { return };
    let router = Vm::start(
        &ns,
        "qemu",
        "router",
        "rt0",
        ROUTER_MAC,
        &[],
        &[
            "ferrix.ip=10.78.0.10/24",
            "policy=jbsq:1",
            "queue-cap=2",
            "idle-exit-ms=2000",
        ],
        "router: routing",
    );
    let s1 = server(&ns, "qemu", 1);
    ping(&ns, ROUTER_IP);
    ping(&ns, "10.78.0.11");
    std::thread::sleep(Duration::from_secs(1));
    let (ok, out) = client(
        &ns,
        200,
        32,
        &["--service-ns", "5000000", "--timeout-ms", "10000"],
    );
    let (status, console) = router.finish(Duration::from_secs(120));
    drop(s1);
    eprintln!("{out}{console}");
    assert!(!ok, "every request succeeded despite the flood: {out}");
    let errors = out
        .lines()
        .find_map(|l| field(l, "error"))
        .unwrap_or_else(|| panic!("no client summary: {out}"));
    assert!(errors > 0, "{out}");
    assert!(
        status.is_some_and(|s| s.success()),
        "router exit {status:?}:\n{console}"
    );
    let stats = stats_line(&console);
    let full = field(stats, "queue_full").unwrap_or(0);
    assert!(full > 0, "{stats}");
    // Every refusal is one DROP the client saw as an error (none lost or timed out).
    assert_eq!(field(stats, "refused"), Some(errors), "{stats}\n{out}");
    assert_eq!(field(stats, "req0"), Some(200), "{stats}");
    assert!(!console.contains("panic"), "{console}");
}

/// A bad argument: one line naming it, exit 1, no network needed.
#[test]
fn router_refuses_a_bad_argument() {
    let b = ferrix_tests::boot(
        "router",
        ferrix_cli::Vmm::Qemu,
        1,
        &["policy=bogus"],
        Duration::from_secs(60),
    );
    b.expect("router: policy=bogus: unknown policy")
        .expect_exit(1);
}

/// The same topology on the shim's inter-VM switch (no TAP, no root): router, two servers and
/// a guest R2P2 client (apps/synthetic's client mode), each in its own shim on one segment.
/// The client's requests go to the router; the replies come straight from the servers (the
/// client keys replies by its port and rid, whatever their source), and both servers serve.
#[test]
fn router_balances_two_servers_on_the_shim_switch() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ferrix-router-switch-{}", std::process::id()));
    let net = format!("switch:{}", dir.display());
    let shim = |app: &str, mac: &str, args: &[&str], ready: &str| {
        let image = ferrix_tests::image(app);
        let mut cmd = Command::new(FERRIX);
        cmd.args([
            "run",
            image.to_str().unwrap(),
            "--vmm",
            "shim",
            "--cpus",
            "1",
        ])
        .args(["--net", &net, "--mac", mac, "--timeout", "300", "--"])
        .args(args);
        Vm::spawn(cmd, app, ready)
    };
    let router = shim(
        "router",
        "52:54:00:79:00:10",
        &[
            "ferrix.ip=10.79.0.10/24",
            "policy=jbsq:1",
            "idle-exit-ms=15000",
        ],
        "router: routing",
    );
    let servers: Vec<LiveVm> = (1..=2)
        .map(|i| {
            shim(
                "synthetic",
                &format!("52:54:00:79:00:1{i}"),
                &[
                    &format!("ferrix.ip=10.79.0.1{i}/24"),
                    "router=10.79.0.10:9000",
                ],
                "synthetic: serving",
            )
        })
        .collect();
    let client = shim(
        "synthetic",
        "52:54:00:79:00:01",
        &[
            "ferrix.ip=10.79.0.1/24",
            "client=10.79.0.10:8000",
            "count=12",
            "size=64",
            "timeout-ms=20000",
        ],
        "synthetic: client",
    );
    let (status, out) = client.finish(Duration::from_secs(240));
    assert!(
        status.is_some_and(|s| s.success()),
        "the client failed:\n{out}"
    );
    assert!(out.contains("12 of 12 requests"), "{out}");
    let (_, console) = router.finish(Duration::from_secs(60));
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    for ip in ["10.79.0.11:8000", "10.79.0.12:8000"] {
        assert!(
            assigned_to(&console, ip) > 0,
            "{ip} got no request:\n{console}"
        );
    }
    assert_eq!(field(stats_line(&console), "refused"), Some(0), "{console}");
}
