//! SLO-aware TCP flow control in a guest (thesis chapter 8, figures 8.3 and 8.4): the tcp-echo
//! queueing server VM (`service-us=2000`: a virtual single server, 500 requests/s) with
//! `slo-us=40000` (p99 wait SLO 40 ms; 10 ms token period, well above the emulated network's
//! round trip and well below the SLO), and the Linux `ferrix-tcp-client`
//! offering Poisson load over 4 connections on one bridge inside a namespace the test creates.
//!
//! Checked, in one run:
//! - controlled, offered 0.5x, 1x, 1.5x and 2x the capacity: the server's p99 wait stays
//!   within the SLO at every load, the client's refused fraction rises with the load (none at
//!   0.5x, where the server does not throttle) and what is served never exceeds the capacity;
//! - exponential service of the same mean at 2x: the server's estimate of the allowed load
//!   falls (ρ_max ≈ 0.81 against 0.90 for fixed service) and the wait keeps the SLO;
//! - the same server without flow control, offered 1.5x: the wait runs away (p99 above 10
//!   times the SLO), the client's latency too;
//! - a Linux kernel TCP client (python) that knows nothing of the window's meaning gets every
//!   echo right from the controlled server, one request at a time and pipelined past the
//!   window.

use ferrix_tests::netns::{NetNs, unavailable};
use ferrix_tests::vm::{LiveVm, Tap};
use std::time::Duration;

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");
const TCP_CLIENT: &str = env!("CARGO_BIN_EXE_tcp-client-in-test");
const SERVICE_US: u64 = 2_000;
const SLO_US: u64 = 40_000;
/// Requests per second the virtual server completes.
const CAPACITY: f64 = 1e6 / SERVICE_US as f64;

fn server(ns: &NetNs, slo: bool) -> LiveVm {
    let svc = format!("service-us={SERVICE_US}");
    let slo_us = format!("slo-us={SLO_US}");
    let mut args = vec!["ferrix.ip=10.81.0.10/24", "port=7000", &svc];
    if slo {
        args.extend([slo_us.as_str(), "slo-period-us=10000"]);
    }
    LiveVm::on_tap(
        FERRIX,
        Tap {
            ns,
            dev: "sl0",
            mac: "52:54:00:81:00:10",
        },
        "tcp-echo",
        (&[], &args),
        "tcp-echo: queue: listening",
        Duration::from_secs(120),
    )
}

/// One figure of a line `... name V unit ...` (the first number after `name `).
fn figure(line: &str, name: &str) -> f64 {
    let at = line
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 1..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after {name} in {line}"))
}

/// The percentage of a line `... name N (P%) ...`.
fn percent(line: &str, name: &str) -> f64 {
    let at = line
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at..]
        .split_once('(')
        .and_then(|(_, r)| r.split_once('%'))
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or_else(|| panic!("no percentage after {name} in {line}"))
}

struct Point {
    offered: f64,
    refused_pct: f64,
    achieved: f64,
    client_p99_us: f64,
    wait_p99_us: f64,
    max_load: f64,
    client: String,
    session: String,
}

/// Offers `rate` requests/s for 3 s and reads the client's line and the server's session.
/// `dist`: the client's `--dist` around the server's service time (fixed when None).
fn offer(
    ns: &NetNs,
    vm: &mut LiveVm,
    (rate, dist): (f64, Option<&str>),
    slo: bool,
    sessions: &mut usize,
) -> Point {
    let rate_s = format!("{rate:.0}");
    let svc = SERVICE_US.to_string();
    let mut argv = vec![
        TCP_CLIENT,
        "--tap",
        "sl1",
        "--ip",
        "10.81.0.5/24",
        "--mac",
        "52:54:00:81:00:05",
        "--connect",
        "10.81.0.10:7000",
        "--conns",
        "4",
        "--rate",
        &rate_s,
        "--duration-ms",
        "3000",
        "--timeout-ms",
        "60000",
        "--seed",
        "7",
    ];
    if slo {
        argv.push("--slo");
    }
    if let Some(d) = dist {
        argv.extend(["--dist", d, "--service-us", &svc]);
    }
    let out = ns.command(&argv).output().expect("tcp-client");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tcp-client at {rate_s}/s: {text}\nserver:\n{}",
        vm.console()
    );
    *sessions += 1;
    let needle = "tcp-echo: queue: session:";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while vm.console().matches(needle).count() < *sessions {
        assert!(
            std::time::Instant::now() < deadline,
            "no session line {sessions}:\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let console = vm.console();
    let session = console
        .lines()
        .filter(|l| l.contains(needle))
        .nth(*sessions - 1)
        .unwrap_or_default()
        .to_string();
    let client = text
        .lines()
        .find(|l| l.contains("open loop:"))
        .unwrap_or_default()
        .to_string();
    Point {
        offered: rate,
        refused_pct: percent(&client, "refused"),
        achieved: figure(&client, "achieved"),
        client_p99_us: figure(&client, "p99"),
        wait_p99_us: figure(&session, "p99"),
        max_load: figure(&session, "max_load"),
        client,
        session,
    }
}

/// A Linux kernel TCP client: 100 requests one at a time, then 4 batches of 8 pipelined.
const PLAIN_PY: &str = r#"
import socket, sys
s = socket.create_connection(("10.81.0.10", 7000), timeout=30)
def recv_n(n):
    got = b""
    while len(got) < n:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("closed")
        got += chunk
    return got
def msg(i):
    return (b"REQ plain linux client %06d" % i).ljust(31, b".") + b"\n"
for i in range(100):
    m = msg(i)
    s.sendall(m)
    assert recv_n(32) == m, i
for b in range(4):
    batch = b"".join(msg(1000 + 8 * b + j) for j in range(8))
    s.sendall(batch)
    assert recv_n(len(batch)) == batch, b
s.close()
print("plain ok", flush=True)
"#;

#[test]
fn slo_flow_control_keeps_the_wait_within_the_slo_and_refuses_more_as_load_rises() {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let ns = NetNs::create();
    ns.segment("sb0", "10.81.0.1/24", "sl", 2);

    let mut vm = server(&ns, true);
    let mut sessions = 0;
    let mut points = Vec::new();
    for x in [0.5, 1.0, 1.5, 2.0] {
        let p = offer(&ns, &mut vm, (x * CAPACITY, None), true, &mut sessions);
        eprintln!("controlled {x}x:\n  {}\n  {}", p.client, p.session);
        points.push(p);
    }
    // Exponential service of the same mean: the server's estimate of the load the SLO allows
    // falls (dispersion), and the wait still keeps the SLO.
    let exp = offer(
        &ns,
        &mut vm,
        (2.0 * CAPACITY, Some("exp")),
        true,
        &mut sessions,
    );
    eprintln!(
        "controlled 2x, exponential service:\n  {}\n  {}",
        exp.client, exp.session
    );
    // A client that reads the window as bytes.
    let py = ns
        .command(&["python3", "-c", PLAIN_PY])
        .output()
        .expect("python3");
    let py_text =
        String::from_utf8_lossy(&py.stdout).to_string() + &String::from_utf8_lossy(&py.stderr);
    assert!(
        py.status.success() && py_text.contains("plain ok"),
        "plain Linux client: {py_text}\nserver:\n{}",
        vm.console()
    );
    drop(vm.kill());

    let mut vm = server(&ns, false);
    let mut sessions = 0;
    let base = offer(&ns, &mut vm, (1.5 * CAPACITY, None), false, &mut sessions);
    eprintln!("uncontrolled 1.5x:\n  {}\n  {}", base.client, base.session);
    drop(vm.kill());

    for p in points.iter().chain([&exp]) {
        assert!(
            p.wait_p99_us <= SLO_US as f64,
            "p99 wait beyond the SLO at {}/s: {}",
            p.offered,
            p.session
        );
        assert!(
            p.achieved <= CAPACITY * 1.05,
            "served beyond the capacity: {}",
            p.client
        );
        assert!(p.session.contains("lost 0,"), "{}", p.session);
    }
    assert_eq!(points[0].refused_pct, 0.0, "refused below the threshold");
    for w in points.windows(2) {
        assert!(
            w[1].refused_pct > w[0].refused_pct + 5.0,
            "refusals do not rise with load: {} then {}",
            w[0].client,
            w[1].client
        );
    }
    // The throttled server still serves most of what the SLO allows (ρ ≈ 0.81 here).
    assert!(
        points[3].achieved >= 0.6 * CAPACITY,
        "throttled too hard: {}",
        points[3].client
    );
    // M/G/1: ρ_max ≈ 0.90 for fixed service, ≈ 0.81 for exponential (the estimate is a
    // moving average of the samples).
    assert!(
        exp.max_load < points[3].max_load - 0.04,
        "dispersion did not lower the allowed load: {} vs {}",
        exp.session,
        points[3].session
    );
    assert!(
        base.wait_p99_us > 10.0 * SLO_US as f64,
        "the uncontrolled baseline kept the SLO: {}",
        base.session
    );
    assert!(
        base.client_p99_us > 10.0 * points[2].client_p99_us,
        "uncontrolled latency {} vs controlled {}",
        base.client,
        points[2].client
    );
}
