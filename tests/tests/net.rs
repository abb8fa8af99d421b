//! The NIC path with QEMU's user network (no root, nothing leaves the machine): the guest's
//! virtio-net driver sends an ARP request to slirp's gateway and receives its reply.

use ferrix_cli::Vmm;
use ferrix_cli::netspec::NetSpec;
use ferrix_tests::boot_with;
use std::time::Duration;

#[test]
fn virtio_net_mmio_arp_roundtrip_with_slirp() {
    let b = boot_with(
        "ktest",
        Vmm::Qemu,
        2,
        &["arp=10.0.2.15,10.0.2.2", "filter=nic_arp"],
        Duration::from_secs(120),
        |o| {
            o.net = Some(NetSpec::User(vec![]));
        },
    );
    b.expect("virtio-net (mmio")
        .expect("link up")
        .expect("test nic_arp_roundtrip ... ok")
        .expect("1 passed, 0 failed")
        .expect_exit(0);
}

/// The `ferrix` command built for the tests (tests/src/bin/ferrix-in-test.rs).
const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// Boots ktest inside a fresh namespace with a multi-queue TAP device whose host side is
/// 10.77.0.1/24, and checks the guest (10.77.0.2) gets Linux's ARP reply.
fn arp_through_tap(vmm: &str, profile: &str, cpus: u32, want_pairs: u32) {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let image = ferrix_tests::image("ktest");
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("ft0", "10.77.0.1/24");
    let cpus_s = cpus.to_string();
    let out = ns
        .command(&[
            FERRIX,
            "run",
            image.to_str().unwrap(),
            "--vmm",
            vmm,
            "--cpus",
            &cpus_s,
            "--net",
            "tap:ft0",
            "--profile",
            profile,
            "--timeout",
            "120",
            "--",
            "arp=10.77.0.2,10.77.0.1",
            "filter=nic_arp",
        ])
        .output()
        .expect("run ferrix");
    let console = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{console}\n{err}",
        out.status
    );
    assert!(
        console.contains(&format!("queue pairs {want_pairs}")),
        "{console}"
    );
    assert!(
        console.contains("test nic_arp_roundtrip ... ok"),
        "{console}"
    );
}

#[test]
fn virtio_net_multiqueue_tap_under_qemu() {
    arp_through_tap("qemu", "microvm", 4, 4);
}

#[test]
fn virtio_net_pci_multiqueue_tap_under_qemu_q35() {
    arp_through_tap("qemu", "q35", 2, 2);
}

#[test]
fn virtio_net_pci_arp_roundtrip_with_slirp() {
    let b = boot_with(
        "ktest",
        Vmm::Qemu,
        1,
        &["arp=10.0.2.15,10.0.2.2", "filter=nic_arp"],
        Duration::from_secs(120),
        |o| {
            o.net = Some(NetSpec::User(vec![]));
            o.profile = Some("q35".into());
        },
    );
    b.expect("virtio-net (pci 00:")
        .expect("test nic_arp_roundtrip ... ok")
        .expect_exit(0);
}

/// The UDP echo client built for the tests (tests/src/bin/udp-client.rs).
const UDP_CLIENT: &str = env!("CARGO_BIN_EXE_udp-client");

/// Extra datagrams a test sends after its client succeeded, so an `exit-after=N + SLACK`
/// server reaches its count however many of the client's datagrams were retried (a retried
/// request is echoed twice).
const SLACK: u32 = 50;

/// Pushes the server over its exit count (see [`SLACK`]); `ns` runs the sender inside a
/// namespace.
fn fire_slack(dst: &str, ns: Option<&ferrix_tests::netns::NetNs>) {
    fire_slack_from(dst, ns, 0);
}

/// [`fire_slack`] from source port `port` (0: any).
fn fire_slack_from(dst: &str, ns: Option<&ferrix_tests::netns::NetNs>, port: u16) {
    let n = SLACK.to_string();
    let port = port.to_string();
    let argv = [UDP_CLIENT, "--fire", dst, &n, &port];
    let _ = match ns {
        Some(ns) => ns.command(&argv).status(),
        None => std::process::Command::new(argv[0])
            .args(&argv[1..])
            .status(),
    };
}

#[test]
fn udp_echo_through_slirp() {
    // A port of our own on 127.0.0.1 (forwarded by slirp to the guest's port 7).
    let port = 20000 + (std::process::id() % 20000) as u16;
    let image = ferrix_tests::image("udp-echo");
    let fwd = format!("user:udp:{port}:7");
    let pcap = std::env::temp_dir().join(format!("ferrix-slirp-{}.pcap", std::process::id()));
    let mut vm = std::process::Command::new(FERRIX)
        .args([
            "run",
            image.to_str().unwrap(),
            "--net",
            &fwd,
            "--pcap",
            pcap.to_str().unwrap(),
            "--cpus",
            "2",
            "--stats",
            "--timeout",
            "120",
            "--",
        ])
        .args([
            "ferrix.ip=10.0.2.15/24",
            "ferrix.gw=10.0.2.2",
            &format!("exit-after={}", 20 + SLACK),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the VM");
    let client = std::process::Command::new(UDP_CLIENT)
        .args([&format!("127.0.0.1:{port}"), "20", "16", "60"])
        .output()
        .expect("run the client");
    if client.status.success() {
        fire_slack(&format!("127.0.0.1:{port}"), None);
    } else {
        let _ = vm.kill();
    }
    let out = vm.wait_with_output().expect("VM output");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        client.status.success(),
        "client: {}\nVM: {out}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(
        out.contains(&format!("udp-echo: {} echoes", 20 + SLACK)),
        "{out}"
    );
    // slirp has one queue pair: core 0 steers the client's 16 flows over both cores in software
    // (all 16 hashing to one core has probability 2^-15).
    assert!(
        out.contains("ferrix-stats: core 1 queue 0 (steered): rx "),
        "{out}"
    );
    assert!(
        cores_with_rx(&out) == 2,
        "flows not steered to both cores:\n{out}"
    );
    // The capture holds the traffic: pcap magic, and (where tshark exists) the 20 requests
    // and 20 replies as UDP frames on port 7.
    let cap = std::fs::read(&pcap).expect("pcap written");
    assert_eq!(
        cap.get(..4),
        Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]),
        "not a pcap file"
    );
    match std::process::Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap(), "-Y", "udp.port == 7"])
        .output()
    {
        Ok(t) if t.status.success() => {
            let frames = String::from_utf8_lossy(&t.stdout).lines().count();
            assert!(frames >= 40, "tshark saw {frames} UDP frames on port 7");
        }
        _ => eprintln!("tshark not installed: checked the pcap header only"),
    }
    let _ = std::fs::remove_file(&pcap);
    assert!(out.contains("ferrix-stats: core 0 queue 0: rx "), "{out}");
}

/// Boots udp-echo (10.77.0.2) in a fresh namespace on a multi-queue TAP (host side
/// 10.77.0.1), pings it with Linux's ping, runs the UDP client over 16 flows, and returns the
/// console (with the per-core statistics).
fn echo_through_tap(vmm: &str, cpus: u32, echoes: u32) -> Option<String> {
    echo_through_tap_from(vmm, cpus, echoes, None, "virtio")
}

/// [`echo_through_tap`]; with `ports` = (client source ports, slack source port) the client
/// sends one flow from each of those ports instead of 16 ephemeral ones; `nic` is the VM's
/// `--nic` (virtio, or ixgbe under the shim).
fn echo_through_tap_from(
    vmm: &str,
    cpus: u32,
    echoes: u32,
    ports: Option<(&[u16], u16)>,
    nic: &str,
) -> Option<String> {
    // Fixed ports: the RSS test, which needs the NIC to offer RSS.
    let rss = ports.is_some();
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return None;
    }
    let image = ferrix_tests::image("udp-echo");
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("ft0", "10.77.0.1/24");
    let (cpus_s, exit_after) = (cpus.to_string(), format!("exit-after={}", echoes + SLACK));
    let mut argv = vec![
        FERRIX,
        "run",
        image.to_str().unwrap(),
        "--vmm",
        vmm,
        "--cpus",
        &cpus_s,
        "--net",
        "tap:ft0",
        "--nic",
        nic,
        "--stats",
        "--timeout",
        "120",
    ];
    if rss {
        argv.push("--rss");
    }
    argv.extend(["--", "ferrix.ip=10.77.0.2/24", &exit_after]);
    let mut vm = ns
        .command(&argv)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the VM");
    // ping's deadline covers the boot; it stops at the third reply.
    let ping = ns
        .command(&["ping", "-c", "3", "-i", "0.2", "-w", "60", "10.77.0.2"])
        .output()
        .expect("ping");
    let list = ports.map(|(p, _)| {
        let v: Vec<String> = p.iter().map(u16::to_string).collect();
        format!("ports={}", v.join(","))
    });
    let mut argv = vec![UDP_CLIENT, "10.77.0.2:7"];
    let n = echoes.to_string();
    argv.extend([n.as_str(), "16", "60"]);
    if let Some(l) = &list {
        argv.push(l);
    }
    let client = ns.command(&argv).output().expect("client");
    if client.status.success() {
        fire_slack_from("10.77.0.2:7", Some(&ns), ports.map_or(0, |p| p.1));
    } else {
        let _ = vm.kill();
    }
    let out = vm.wait_with_output().expect("VM output");
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    let ping_out = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success() && !ping_out.contains(" 0 received"),
        "ping:\n{ping_out}\nVM:\n{console}"
    );
    assert!(
        client.status.success(),
        "client: {}\nVM:\n{console}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(
        console.contains(&format!("udp-echo: {} echoes", echoes + SLACK)),
        "{console}"
    );
    Some(console)
}

/// Cores whose queue received frames, from the `ferrix-stats:` lines.
fn cores_with_rx(console: &str) -> usize {
    console
        .lines()
        .filter(|l| l.starts_with("ferrix-stats: core ") && l.contains(" queue "))
        .filter(|l| {
            l.split(": rx ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .is_some_and(|n| n != "0")
        })
        .count()
}

/// Frames received per queue pair (index = queue), from the `ferrix-stats:` lines of cores
/// that own their queue.
fn rx_per_queue(console: &str, queues: usize) -> Vec<u64> {
    let mut rx = vec![0; queues];
    for l in console.lines() {
        let Some(rest) = l.strip_prefix("ferrix-stats: core ") else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let (Some(_core), Some("queue"), Some(q), Some("rx"), Some(n)) =
            (w.next(), w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        if let (Ok(q), Ok(n)) = (q.trim_end_matches(':').parse::<usize>(), n.parse::<u64>())
            && q < queues
        {
            rx[q] = n;
        }
    }
    rx
}

/// The driver programs Toeplitz RSS (the Microsoft key, 128 entries, entry i -> pair i mod 4),
/// so every flow lands on the queue its hash names. The flows (8 client ports, the slack
/// sender, the ping) are chosen to avoid one queue, which must then receive nothing, while
/// each flow's queue receives at least that flow's echoes. `vmm` and `nic` pick the device.
fn rss_check(vmm: &str, nic: &str) {
    use ferrix_shim::net::rss::{INDIRECTION_ENTRIES, MICROSOFT_RSS_KEY, toeplitz};
    let ips: Vec<u8> = [[10, 77, 0, 1], [10, 77, 0, 2]].concat();
    let queue =
        |input: &[u8]| (toeplitz(&MICROSOFT_RSS_KEY, input) as usize % INDIRECTION_ENTRIES) % 4;
    let flow_queue = |port: u16| {
        let mut v = ips.clone();
        v.extend(port.to_be_bytes());
        v.extend(7u16.to_be_bytes());
        queue(&v)
    };
    // ICMP hashes over the addresses only; ARP and IPv6 are unclassified (queue 0).
    let icmp = queue(&ips);
    let empty = (1..4).find(|&q| q != icmp).unwrap_or(3);
    let ports: Vec<u16> = (40_000u16..)
        .filter(|&p| flow_queue(p) != empty)
        .take(8)
        .collect();
    let slack = (45_000u16..)
        .find(|&p| flow_queue(p) != empty)
        .unwrap_or(45_000);
    let echoes = 64;
    let Some(console) = echo_through_tap_from(vmm, 4, echoes, Some((&ports, slack)), nic) else {
        return;
    };
    assert!(console.contains("queue pairs 4 rss toeplitz"), "{console}");
    let rx = rx_per_queue(&console, 4);
    eprintln!(
        "rx per queue {rx:?}, empty queue {empty}, flows on queues {:?}",
        ports.iter().map(|&p| flow_queue(p)).collect::<Vec<_>>()
    );
    assert_eq!(
        rx[empty], 0,
        "queue {empty} should get no flow; rx per queue {rx:?}\n{console}"
    );
    let mut want = [0u64; 4];
    for &p in &ports {
        want[flow_queue(p)] += u64::from(echoes) / ports.len() as u64;
    }
    for q in 0..4 {
        assert!(
            rx[q] >= want[q],
            "queue {q}: {} frames, its flows sent {}; rx per queue {rx:?}\n{console}",
            rx[q],
            want[q]
        );
    }
}

/// QEMU's virtio-net with `rss=on`.
#[test]
fn rss_puts_each_flow_on_its_toeplitz_queue() {
    rss_check("qemu", "virtio");
}

/// The same flows on the shim's emulated 82599: the guest's ixgbe driver programs the RSSRK
/// key and RETA, the model hashes each flow onto the queue `ferrix_abi::rss` predicts.
#[test]
fn rss_puts_each_flow_on_its_toeplitz_queue_on_the_shims_82599() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    rss_check("shim", "ixgbe");
}

#[test]
fn ping_and_udp_echo_through_tap_under_qemu_4_cpus() {
    if let Some(console) = echo_through_tap("qemu", 4, 64) {
        assert!(console.contains("queue pairs 4"), "{console}");
        assert!(
            cores_with_rx(&console) > 1,
            "flows not spread over queues:\n{console}"
        );
    }
}

#[test]
fn ping_and_udp_echo_through_tap_under_shim_2_cpus() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    if let Some(console) = echo_through_tap("shim", 2, 32) {
        assert!(console.contains("queue pairs 2"), "{console}");
        assert!(
            cores_with_rx(&console) > 1,
            "flows not spread over queues:\n{console}"
        );
    }
}

/// Two VMs on one L2 segment: A serves UDP echo on 10.88.0.1, B resolves A by ARP and gets
/// `count` echoes back. `net_a`/`net_b` are the two ends' `--net` values.
fn two_vms(vmm: &str, net_a: &str, net_b: &str) {
    two_vms_with_nic(vmm, net_a, net_b, "virtio");
}

/// [`two_vms`] with A's NIC model (`--nic`; B always has virtio-net). Returns A's console.
fn two_vms_with_nic(vmm: &str, net_a: &str, net_b: &str, nic_a: &str) -> String {
    let image = ferrix_tests::image("udp-echo");
    let start = |net: &str, mac: &str, nic: &str, args: &[&str]| {
        std::process::Command::new(FERRIX)
            .args([
                "run",
                image.to_str().unwrap(),
                "--vmm",
                vmm,
                "--cpus",
                "1",
                "--net",
                net,
                "--mac",
                mac,
                "--nic",
                nic,
            ])
            .args(["--timeout", "90", "--"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start a VM")
    };
    let mut a = start(
        net_a,
        "52:54:00:88:00:01",
        nic_a,
        &["ferrix.ip=10.88.0.1/24"],
    );
    // The listening end must exist before the connecting one starts.
    std::thread::sleep(Duration::from_millis(500));
    let b = start(
        net_b,
        "52:54:00:88:00:02",
        "virtio",
        &["ferrix.ip=10.88.0.2/24", "peer=10.88.0.1:7", "count=5"],
    );
    let b = b.wait_with_output().expect("VM B");
    // A serves until stopped (B's resends would make an echo count a guess).
    let _ = a.kill();
    let a = a.wait_with_output().expect("VM A");
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(b.status.success(), "B:\n{}\nA:\n{}", text(&b), text(&a));
    assert!(
        text(&b).contains("udp-echo: 5 echoes from 10.88.0.1:7"),
        "{}",
        text(&b)
    );
    assert!(
        text(&a).contains("udp-echo: serving 10.88.0.1:7"),
        "A:\n{}",
        text(&a)
    );
    text(&a)
}

#[test]
fn two_qemu_vms_on_one_l2_link() {
    let dir = std::env::temp_dir().join(format!("ferrix-l2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("link.sock");
    let (a, b) = (
        format!("stream-listen:{}", sock.display()),
        format!("stream-connect:{}", sock.display()),
    );
    two_vms("qemu", &a, &b);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A guest whose NIC is the shim's emulated Intel 82599: the kernel finds it on PCI, the
/// ixgbe driver brings it up and serves UDP echo to a virtio-net guest on
/// the same switch.
#[test]
fn an_ixgbe_guest_serves_a_virtio_guest_on_one_switch() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ferrix-ixsw-{}", std::process::id()));
    let net = format!("switch:{}", dir.display());
    let a = two_vms_with_nic("shim", &net, &net, "ixgbe");
    assert!(
        a.contains("ferrix: ixgbe (pci 00:02.0): mac 52:54:00:88:00:01 link up"),
        "{a}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_shim_vms_on_one_switch() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ferrix-switch-{}", std::process::id()));
    let net = format!("switch:{}", dir.display());
    two_vms("shim", &net, &net);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends raw Ethernet frames (hex, one per line on stdin) into `dev` through a packet socket,
/// from inside the test's namespace. A frame the host refuses (e.g. larger than the device
/// MTU) is reported on stdout as `refused <index>`.
const INJECT_PY: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for i, line in enumerate(sys.stdin):
    try:
        s.send(bytes.fromhex(line.strip()))
    except OSError:
        print("refused", i)
"#;

/// The malformed-frame corpus of ferrix-net, injected into a real guest through TAP: every
/// frame is counted under its drop reason (per-core statistics at exit) and the UDP echo keeps
/// working afterwards.
#[test]
fn malformed_frames_are_counted_and_echo_keeps_working() {
    use std::collections::BTreeMap;
    use std::io::Write;
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let image = ferrix_tests::image("udp-echo");
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("ft0", "10.77.0.1/24");
    ns.run(&["ip", "link", "set", "ft0", "mtu", "1900"]);
    let host_mac = String::from_utf8_lossy(&ns.run(&["cat", "/sys/class/net/ft0/address"]).stdout)
        .trim()
        .to_string();
    let mac = |s: &str| {
        let v: Vec<u8> = s
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        ferrix_net::MacAddr([v[0], v[1], v[2], v[3], v[4], v[5]])
    };
    let ends = ferrix_net::corpus::Endpoints {
        client_mac: mac(&host_mac),
        client_ip: "10.77.0.1".parse().unwrap(),
        client_port: 40000,
        server_mac: mac("52:54:00:77:00:02"),
        server_ip: "10.77.0.2".parse().unwrap(),
        server_port: 7,
        unbound_port: 9,
    };
    let cases = ends.malformed();
    let mut vm = ns
        .command(&[
            FERRIX,
            "run",
            image.to_str().unwrap(),
            "--cpus",
            "2",
            "--net",
            "tap:ft0",
            "--mac",
            "52:54:00:77:00:02",
            "--stats",
            "--timeout",
            "120",
            "--",
            "ferrix.ip=10.77.0.2/24",
            &format!("exit-after={}", 10 + SLACK),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the VM");
    // Wait until the guest answers, so the corpus reaches a running stack.
    let ping = ns
        .command(&["ping", "-c", "1", "-i", "0.2", "-w", "60", "10.77.0.2"])
        .output()
        .expect("ping");
    assert!(ping.status.success(), "guest never answered ping");
    let mut inject = ns
        .command(&["python3", "-c", INJECT_PY, "ft0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        let mut stdin = inject.stdin.take().unwrap();
        for c in &cases {
            let hex: String = c.frame.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "{hex}").unwrap();
        }
    }
    let injected = inject.wait_with_output().expect("inject");
    assert!(injected.status.success(), "injector failed");
    let refused: Vec<usize> = String::from_utf8_lossy(&injected.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("refused ")?.parse().ok())
        .collect();
    let client = ns
        .command(&[UDP_CLIENT, "10.77.0.2:7", "10", "2", "60"])
        .output()
        .expect("client");
    if client.status.success() {
        fire_slack("10.77.0.2:7", Some(&ns));
    } else {
        let _ = vm.kill();
    }
    let out = vm.wait_with_output().expect("VM output");
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        client.status.success(),
        "echo stopped working after the corpus:\n{console}"
    );
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        if !refused.contains(&i) {
            *want.entry(c.expect.name()).or_default() += 1;
        }
    }
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for l in console.lines() {
        if let Some(rest) = l.strip_prefix("ferrix-stats: core ")
            && let Some((_, drop)) = rest.split_once(" drop ")
            && let Some((name, n)) = drop.rsplit_once(' ')
        {
            *got.entry(name.to_string()).or_default() += n.parse::<u64>().unwrap();
        }
    }
    for (name, n) in &want {
        // Linux adds traffic of its own (IPv6 neighbour discovery...), so at least, not exactly.
        assert!(
            got.get(*name).copied().unwrap_or(0) >= *n,
            "{name}: want >= {n}, got {got:?}\n{console}"
        );
    }
    assert!(
        want.len() >= 10,
        "too few drop reasons exercised: {want:?} (refused {refused:?})"
    );
}

/// The figure after `config` in `ferrix bench udp-echo`'s table ("<config> N guest
/// instructions ...").
fn icount_row(table: &str, config: &str) -> Option<u64> {
    table.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == config).then(|| w.next()?.parse().ok())?
    })
}

/// The guest instruction budget of the R2P2 echo path at apps/synthetic (driver + stack +
/// R2P2 + reply + transmit, 64-byte requests on slirp, where the guest computes both
/// checksums), guarded like the UDP echo's: `ferrix bench r2p2` counts it under QEMU
/// `-icount`. Measured 1,415, then 1,381 once a zero-length service spin stopped reading the
/// clock; a regression of more than 5 % fails (issue 18's goal is 700).
#[test]
fn r2p2_echo_guest_instructions_stay_within_the_budget() {
    let out = std::process::Command::new(FERRIX)
        .args(["bench", "r2p2", "--requests", "2000"])
        .output()
        .expect("run ferrix bench r2p2");
    let table = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{log}");
    let n = icount_row(&table, "ferrix-icount").unwrap_or_else(|| panic!("{table}\n{log}"));
    assert!(n <= 1_450, "{n} instructions per R2P2 echo\n{table}");
}

/// The guest instruction budget of the UDP echo path (driver + stack + reply + transmit),
/// guarded: `ferrix bench udp-echo --tap` counts guest instructions per echoed frame under
/// QEMU `-icount` (an instruction count, not a time: the same on a loaded machine). The
/// issue's target is 1,000 on TAP, where the host takes the checksums (measured 990); slirp
/// offers no checksum offload (measured 1,115). A regression of more than 5 % fails.
#[test]
fn udp_echo_guest_instructions_stay_within_the_budget() {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let out = std::process::Command::new(FERRIX)
        .args(["bench", "udp-echo", "--tap", "--requests", "2000"])
        .output()
        .expect("run ferrix bench udp-echo");
    let table = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{log}");
    let tap = icount_row(&table, "ferrix-tap-icount").unwrap_or_else(|| panic!("{table}\n{log}"));
    let slirp = icount_row(&table, "ferrix-icount").unwrap_or_else(|| panic!("{table}\n{log}"));
    assert!(tap <= 1_050, "TAP: {tap} instructions per frame\n{table}");
    assert!(
        slirp <= 1_170,
        "slirp: {slirp} instructions per frame\n{table}"
    );
    // Offloaded checksums must show: the TAP path skips two of them.
    assert!(tap < slirp, "{table}");
}
