//! The ZygOS scheduler in the guest (`ferrix::net::serve_tcp`, `apps/synthetic` TCP mode):
//! replies stay in order per connection under every policy, an imbalanced load is stolen under
//! `zygos` but not under `partitioned`, and an IPI gets a core busy in app code to let a waiting
//! request be served before its long request ends.
//!
//! Requests are the thesis microbenchmark's: 8 bytes naming a service time in ns; the reply
//! echoes them. With QEMU's user network the NIC has one queue pair, so every connection's home
//! is core 0 (a deliberately imbalanced load): other cores only get work by stealing.

use ferrix_tests::{connect, pipelined, wait_for};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// A synthetic TCP server VM on QEMU's user network, `port` on 127.0.0.1 forwarded to 9000,
/// with `--stats`.
fn slirp_vm(port: u16, cpus: u32, args: &[&str]) -> Child {
    ferrix_tests::synthetic_tcp_vm(FERRIX, port, cpus, &["--stats"], args)
}

/// The `ferrix-sched:` counter `name` of core `core`.
fn counter(out: &str, core: usize, name: &str) -> u64 {
    let prefix = format!("ferrix-sched: core {core} ");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no scheduler line for core {core}:\n{out}"));
    let mut words = line.split_whitespace();
    words
        .by_ref()
        .find(|w| *w == name)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    words.next().and_then(|v| v.parse().ok()).unwrap()
}

/// Requests each core ran, from `synthetic: tcp requests run: core 0 N core 1 M ...`.
fn ran(out: &str, cpus: usize) -> Vec<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with("synthetic: tcp requests run:"))
        .unwrap_or_else(|| panic!("no per-core counts:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (0..cpus)
        .map(|c| {
            let at = words
                .windows(2)
                .position(|w| w == ["core", &c.to_string()])
                .unwrap_or_else(|| panic!("no core {c} in {line}"));
            words[at + 2].parse().unwrap()
        })
        .collect()
}

fn finish(vm: Child, seen: String, rest: std::thread::JoinHandle<String>) -> String {
    let out = vm.wait_with_output().expect("VM");
    let all = seen + &rest.join().unwrap_or_default();
    assert!(out.status.success(), "{all}");
    all
}

/// One queue pair (all connections homed on core 0), 2 vCPUs: under `zygos` and
/// `zygos-noipi` core 1 steals and runs requests; under `partitioned` it runs none.
#[test]
fn imbalanced_load_is_stolen_unless_partitioned() {
    let (conns, depth) = (8, 25);
    for (i, policy) in ["zygos", "zygos-noipi", "partitioned"].iter().enumerate() {
        let port = 23000 + (std::process::id() % 10000) as u16 * 3 + i as u16;
        let mut vm = slirp_vm(
            port,
            2,
            &[
                &format!("ferrix.sched={policy}"),
                &format!("exit-after={}", conns * depth),
            ],
        );
        let (seen, rest) = wait_for(&mut vm, "synthetic: serving TCP");
        assert!(seen.contains(&format!("policy {policy}")), "{seen}");
        // 300 µs per request: core 0 cannot keep up with 8 connections alone.
        pipelined(port, conns, depth, 300_000);
        let out = finish(vm, seen, rest);
        assert!(
            out.contains(&format!("synthetic: {} replies", conns * depth)),
            "{out}"
        );
        let per_core = ran(&out, 2);
        assert_eq!(
            per_core.iter().sum::<u64>(),
            (conns * depth) as u64,
            "{out}"
        );
        let steals = counter(&out, 1, "steals");
        if *policy == "partitioned" {
            assert_eq!(
                per_core[1], 0,
                "core 1 ran requests under partitioned:\n{out}"
            );
            assert_eq!(steals + counter(&out, 0, "steals"), 0, "{out}");
        } else {
            assert!(steals > 0, "no steals under {policy}:\n{out}");
            assert!(
                per_core.iter().all(|&n| n > 0),
                "{policy}: {per_core:?}\n{out}"
            );
        }
        if *policy != "zygos" {
            assert_eq!(
                counter(&out, 0, "ipis_sent") + counter(&out, 1, "ipis_sent"),
                0
            );
        }
    }
}

/// 2 vCPUs, every connection homed on core 0, `zygos`: C (1.5 s) and then A (3 s) keep both
/// cores in app code; B (short) arrives while core 0 is in app code. An idle core's IPI gets
/// core 0 to run its network stack, so a waiting request goes to the other core instead of
/// waiting for core 0's long request: B completes before A, long before A could have ended.
#[test]
fn ipi_lets_a_waiting_request_overtake_a_long_one() {
    let port = 26000 + (std::process::id() % 10000) as u16;
    let mut vm = slirp_vm(
        port,
        2,
        &[
            "ferrix.sched=zygos",
            "max-service-ns=5000000000",
            "exit-after=3",
        ],
    );
    let (seen, rest) = wait_for(&mut vm, "synthetic: serving TCP");
    let start = Instant::now();
    let send = |service_ns: u64| {
        let mut s = connect(port);
        s.write_all(&service_ns.to_le_bytes()).unwrap();
        std::thread::spawn(move || {
            let mut got = [0u8; 8];
            s.read_exact(&mut got).expect("reply");
            assert_eq!(u64::from_le_bytes(got), service_ns);
            Instant::now()
        })
    };
    let c = send(1_500_000_000);
    std::thread::sleep(Duration::from_millis(300));
    let a = send(3_000_000_000);
    std::thread::sleep(Duration::from_millis(400));
    let b = send(1_000);
    let (c, a, b) = (c.join().unwrap(), a.join().unwrap(), b.join().unwrap());
    let out = finish(vm, seen, rest);
    assert!(
        b < a,
        "B (short) completed after A (long): B {:?}, A {:?} after start\n{out}",
        b - start,
        a - start
    );
    assert!(c < a, "{out}");
    // Whichever core ran C, one IPI was needed: either core 1 sent it for A's packets (C on
    // core 0) or for B's packets (C on core 1, A on core 0).
    assert!(counter(&out, 1, "ipis_sent") > 0, "{out}");
    assert!(counter(&out, 0, "ipi_runs") > 0, "{out}");
}

/// Four vCPUs on a 4-queue TAP inside a namespace (connections homed on every core), each
/// policy: a Linux client on many connections with pipelined requests gets every reply, in
/// order per connection.
#[test]
fn every_policy_keeps_replies_in_order_on_4_cpus() {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let (conns, depth) = (24, 12);
    for policy in ["zygos", "zygos-noipi", "partitioned"] {
        let ns = ferrix_tests::netns::NetNs::create();
        ns.tap("fz0", "10.79.0.1/24");
        let image = ferrix_tests::image("synthetic");
        let mut vm = ns
            .command(&[
                FERRIX,
                "run",
                image.to_str().unwrap(),
                "--cpus",
                "4",
                "--net",
                "tap:fz0",
                "--stats",
                "--timeout",
                "150",
                "--",
                "ferrix.ip=10.79.0.2/24",
                &format!("ferrix.sched={policy}"),
                "tcp-port=9000",
                &format!("exit-after={}", conns * depth),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the VM");
        let (seen, rest) = wait_for(&mut vm, "synthetic: serving TCP");
        let (conns_s, depth_s) = (conns.to_string(), depth.to_string());
        let argv = [
            "python3",
            "-c",
            ferrix_tests::PIPELINED_TCP_CLIENT_PY,
            "10.79.0.2",
            "9000",
            &conns_s,
            &depth_s,
            "100000",
        ];
        let all = ferrix_tests::client_then_vm(&ns, &argv, vm, seen, rest);
        assert!(all.contains("queue pairs 4"), "{policy}: {all}");
        assert!(
            all.contains(&format!("synthetic: {} replies", conns * depth)),
            "{policy}: {all}"
        );
    }
}

/// One vCPU: a request that *waits* (a timer, `Flow::set_timer`) does not hold the core: a
/// request on another connection sent during the wait is answered first; the waiting
/// connection's later request stays behind its wait (order per connection).
#[test]
fn a_timer_wait_does_not_hold_the_core() {
    const WAIT: u64 = 1 << 63;
    let port = 27000 + (std::process::id() % 10000) as u16;
    let mut vm = slirp_vm(port, 1, &["exit-after=3", "max-service-ns=5000000000"]);
    let (seen, rest) = wait_for(&mut vm, "synthetic: serving TCP");
    let mut a = connect(port);
    let mut b = connect(port);
    let (a_wait, a_next, b_req) = (WAIT | 1_500_000_000, 1_000u64, 2_000u64);
    a.write_all(&[a_wait.to_le_bytes(), a_next.to_le_bytes()].concat())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    b.write_all(&b_req.to_le_bytes()).unwrap();
    let mut got = [0u8; 8];
    b.read_exact(&mut got).expect("B's reply");
    assert_eq!(u64::from_le_bytes(got), b_req);
    // A's replies have not come yet: its wait is still running.
    a.set_nonblocking(true).unwrap();
    let early = a.read(&mut got);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "A answered before its wait ended: {early:?} {got:?}"
    );
    a.set_nonblocking(false).unwrap();
    let mut both = [0u8; 16];
    a.read_exact(&mut both).expect("A's replies");
    assert_eq!(u64::from_le_bytes(both[..8].try_into().unwrap()), a_wait);
    assert_eq!(u64::from_le_bytes(both[8..].try_into().unwrap()), a_next);
    let out = finish(vm, seen, rest);
    assert!(out.contains("synthetic: 3 replies"), "{out}");
}

/// Replies far larger than a flow's send backlog go out in pieces, resumed on
/// `FlowEvent::Sent`, whole and in order on every connection.
#[test]
fn large_replies_resume_on_sent_events() {
    let port = 28000 + (std::process::id() % 10000) as u16;
    let (conns, depth, size) = (2, 3, 150_000usize);
    let mut vm = slirp_vm(
        port,
        2,
        &[
            &format!("reply-size={size}"),
            &format!("exit-after={}", conns * depth),
        ],
    );
    let (seen, rest) = wait_for(&mut vm, "synthetic: serving TCP");
    let mut streams: Vec<TcpStream> = (0..conns).map(|_| connect(port)).collect();
    for (c, s) in streams.iter_mut().enumerate() {
        let reqs: Vec<u8> = (0..depth)
            .flat_map(|i| (1_000 + (c * depth + i) as u64).to_le_bytes())
            .collect();
        s.write_all(&reqs).unwrap();
    }
    for (c, s) in streams.iter_mut().enumerate() {
        for i in 0..depth {
            let mut reply = vec![0u8; size];
            s.read_exact(&mut reply)
                .unwrap_or_else(|e| panic!("connection {c} reply {i}: {e}"));
            let want = 1_000 + (c * depth + i) as u64;
            assert_eq!(reply[..8], want.to_le_bytes(), "connection {c} reply {i}");
            assert!(
                reply[8..].iter().all(|&b| b == 0),
                "connection {c} reply {i}"
            );
        }
    }
    drop(streams);
    let out = finish(vm, seen, rest);
    assert!(
        out.contains(&format!("synthetic: {} replies", conns * depth)),
        "{out}"
    );
}

/// The fan-in target: 10,000 TCP connections open at once in one guest (2 vCPUs, a 2-queue TAP
/// inside a namespace of the test's own), each answered once while all are open; quiet
/// connections are parked out of smoltcp's set, so polls stay cheap.
#[test]
fn ten_thousand_connections_open_at_once() {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let n = 10_000;
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("fm0", "10.81.0.1/24");
    let image = ferrix_tests::image("synthetic");
    let mut vm = ns
        .command(&[
            FERRIX,
            "run",
            image.to_str().unwrap(),
            "--cpus",
            "2",
            "--mem",
            "512M",
            "--net",
            "tap:fm0",
            "--stats",
            "--timeout",
            "400",
            "--",
            "ferrix.ip=10.81.0.2/24",
            "tcp-port=9000",
            // Up to 6,000 per core (RSS splits them about evenly), small socket buffers.
            "tcp-max-conns=6000",
            "tcp-buf=1024",
            &format!("exit-after={n}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let (seen, rest) = wait_for(&mut vm, "synthetic: serving TCP");
    let n_s = n.to_string();
    let argv = ["python3", "-c", MANY_PY, "10.81.0.2", "9000", &n_s];
    let all = ferrix_tests::client_then_vm(&ns, &argv, vm, seen, rest);
    assert!(all.contains(&format!("synthetic: {n} replies")), "{all}");
    assert_eq!(
        counter(&all, 0, "refused") + counter(&all, 1, "refused"),
        0,
        "{all}"
    );
}

/// Opens N connections (raising the file limit), then sends one 8-byte request (service 0,
/// tagged) on each and checks each reply while every connection is still open.
const MANY_PY: &str = r#"
import resource, socket, struct, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
conns = []
for c in range(n):
    for attempt in range(100):
        try:
            s = socket.create_connection((host, port), timeout=10)
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("cannot connect %d" % c)
    conns.append(s)
for c, s in enumerate(conns):
    s.sendall(struct.pack("<Q", c))
for c, s in enumerate(conns):
    s.settimeout(60)
    got = b""
    while len(got) < 8:
        chunk = s.recv(8 - len(got))
        if not chunk:
            sys.exit("connection %d closed early" % c)
        got += chunk
    if struct.unpack("<Q", got)[0] != c:
        sys.exit("connection %d: wrong reply" % c)
for s in conns:
    s.close()
"#;
