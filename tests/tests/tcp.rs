//! TCP in the guest (smoltcp endpoints on each core's queue pair): Linux's TCP client gets
//! every reply, in order, on several connections with pipelined requests, through QEMU's user
//! network (no root) and through a multi-queue TAP inside a namespace the test creates; and
//! tcp-echo under the shim on a TAP, on virtio-net and on the emulated 82599 (ixgbe).

use ferrix_tests::wait_for;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// `conns` connections, each with `depth` requests written back to back before reading the
/// replies; checks every byte comes back in order. `connect` opens a connection.
fn pipelined(conns: usize, depth: usize, connect: impl Fn() -> std::io::Result<TcpStream>) {
    let mut streams = Vec::new();
    for c in 0..conns {
        let deadline = Instant::now() + Duration::from_secs(60);
        let s = loop {
            match connect() {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("connection {c}: {e}"),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        streams.push(s);
    }
    for (c, s) in streams.iter_mut().enumerate() {
        let msgs: Vec<Vec<u8>> = (0..depth)
            .map(|i| format!("conn {c} request {i};").repeat(3).into_bytes())
            .collect();
        let all: Vec<u8> = msgs.concat();
        s.write_all(&all).unwrap();
        let mut got = vec![0u8; all.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("connection {c}: {e}"));
        assert_eq!(
            got, all,
            "connection {c}: replies out of order or corrupted"
        );
    }
}

#[test]
fn tcp_echo_through_slirp() {
    let port = 21000 + (std::process::id() % 20000) as u16;
    let image = ferrix_tests::image("tcp-echo");
    let fwd = format!("user:tcp:{port}:7");
    let conns = 8;
    let mut vm = Command::new(FERRIX)
        .args([
            "run",
            image.to_str().unwrap(),
            "--net",
            &fwd,
            "--cpus",
            "2",
            "--timeout",
            "120",
            "--",
        ])
        .args([
            "ferrix.ip=10.0.2.15/24",
            "ferrix.gw=10.0.2.2",
            &format!("exit-after={conns}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let (seen, rest) = wait_for(&mut vm, "tcp-echo: listening");
    assert!(seen.contains("tcp-echo: listening"), "{seen}");
    pipelined(conns, 16, || TcpStream::connect(("127.0.0.1", port)));
    let status = vm.wait().expect("VM");
    let out = seen + &rest.join().unwrap_or_default();
    assert!(status.success(), "{out}");
    assert!(
        out.contains(&format!("tcp-echo: {conns} connections closed")),
        "{out}"
    );
}

#[test]
fn tcp_echo_through_tap_under_qemu_4_cpus() {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let image = ferrix_tests::image("tcp-echo");
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("ft0", "10.77.0.1/24");
    let conns = 32;
    let mut vm = ns
        .command(&[
            FERRIX,
            "run",
            image.to_str().unwrap(),
            "--cpus",
            "4",
            "--net",
            "tap:ft0",
            "--timeout",
            "120",
            "--",
            "ferrix.ip=10.77.0.2/24",
            &format!("exit-after={conns}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let (seen, rest) = wait_for(&mut vm, "tcp-echo: listening");
    assert!(seen.contains("tcp-echo: listening"), "{seen}");
    // The client runs inside the namespace: a small Python client (the test process itself is
    // in the root namespace and must not address the guest).
    let conns_s = conns.to_string();
    let argv = [
        "python3",
        "-c",
        ferrix_tests::PIPELINED_TCP_CLIENT_PY,
        "10.77.0.2",
        "7",
        &conns_s,
        "16",
        "echo",
    ];
    let out = ferrix_tests::client_then_vm(&ns, &argv, vm, seen, rest);
    assert!(out.contains("queue pairs 4"), "{out}");
    assert!(
        out.contains(&format!("tcp-echo: {conns} connections closed")),
        "{out}"
    );
}

#[test]
fn synthetic_tcp_mode_serves_pipelined_requests_in_order() {
    let port = 22000 + (std::process::id() % 20000) as u16;
    let image = ferrix_tests::image("synthetic");
    let fwd = format!("user:tcp:{port}:9000");
    let (conns, depth) = (4, 20);
    let mut vm = Command::new(FERRIX)
        .args([
            "run",
            image.to_str().unwrap(),
            "--net",
            &fwd,
            "--cpus",
            "2",
            "--timeout",
            "120",
            "--",
        ])
        .args([
            "ferrix.ip=10.0.2.15/24",
            "ferrix.gw=10.0.2.2",
            "tcp-port=9000",
        ])
        .arg(format!("exit-after={}", conns * depth))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let (seen, rest) = wait_for(&mut vm, "synthetic: serving");
    assert!(seen.contains("synthetic: serving"), "{seen}");
    let mut streams = Vec::new();
    for c in 0..conns {
        let deadline = Instant::now() + Duration::from_secs(60);
        let s = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("connection {c}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        streams.push(s);
    }
    for (c, s) in streams.iter_mut().enumerate() {
        // 8-byte requests naming a service time; distinct times (about 1 µs) tag the replies.
        let reqs: Vec<[u8; 8]> = (0..depth)
            .map(|i| (1000 + (c * depth + i) as u64).to_le_bytes())
            .collect();
        s.write_all(&reqs.concat()).unwrap();
        let mut got = vec![0u8; 8 * depth];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("connection {c}: {e}"));
        assert_eq!(got, reqs.concat(), "connection {c}: replies out of order");
    }
    drop(streams);
    let status = vm.wait().expect("VM");
    let out = seen + &rest.join().unwrap_or_default();
    assert!(status.success(), "{out}");
    assert!(
        out.contains(&format!("synthetic: {} replies", conns * depth)),
        "{out}"
    );
}

/// `python3 -c PIPE_PY`: 8 connections to 10.76.0.2:7, each writing 40 messages of 46 bytes
/// back to back and reading every byte back in order.
const PIPE_PY: &str = r#"
import socket
conns = [socket.create_connection(("10.76.0.2", 7), timeout=30) for _ in range(8)]
for i, s in enumerate(conns):
    s.sendall(b"".join(b"conn %02d message %04d ........................\n" % (i, j) for j in range(40)))
for i, s in enumerate(conns):
    want = b"".join(b"conn %02d message %04d ........................\n" % (i, j) for j in range(40))
    got = b""
    while len(got) < len(want):
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection %d closed early" % i)
        got += chunk
    assert got == want, i
    s.close()
print("tcp ok", flush=True)
"#;

/// tcp-echo under the shim on a TAP inside a namespace the test creates, with the NIC `nic`
/// (virtio-net, or the emulated 82599 and the ixgbe driver): a Linux client's pipelined
/// echoes on 8 connections come back whole and in order.
fn tcp_echo_under_shim(nic: &str) {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    if !ferrix_tests::kvm_available() {
        return;
    }
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("tt0", "10.76.0.1/24");
    let image = ferrix_tests::image("tcp-echo");
    let mut argv = vec![
        FERRIX,
        "run",
        image.to_str().unwrap(),
        "--vmm",
        "shim",
        "--cpus",
        "2",
        "--net",
        "tap:tt0",
        "--timeout",
        "120",
    ];
    if nic != "virtio" {
        argv.extend(["--nic", nic]);
    }
    argv.extend(["--", "ferrix.ip=10.76.0.2/24", "exit-after=8"]);
    let vm = ns
        .command(&argv)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let ping = ns
        .command(&["ping", "-c", "1", "-i", "0.2", "-w", "60", "10.76.0.2"])
        .output()
        .expect("ping");
    let py = ns
        .command(&["python3", "-c", PIPE_PY])
        .output()
        .expect("python3");
    let out = vm.wait_with_output().expect("VM");
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(ping.status.success(), "no ping:\n{console}");
    assert!(
        py.status.success() && String::from_utf8_lossy(&py.stdout).contains("tcp ok"),
        "{}{}\n{console}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
    assert!(out.status.success(), "{console}");
    assert!(
        console.contains("tcp-echo: 8 connections closed, 14720 bytes echoed"),
        "{console}"
    );
    if nic == "ixgbe" {
        assert!(console.contains("ferrix: ixgbe (pci"), "{console}");
    }
}

#[test]
fn tcp_echo_through_tap_under_shim_virtio() {
    tcp_echo_under_shim("virtio");
}

#[test]
fn tcp_echo_through_tap_under_shim_ixgbe() {
    tcp_echo_under_shim("ixgbe");
}
