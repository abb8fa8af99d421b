//! The hub (`p4sim::hub`) with sockets standing in for shim ports: frames go through the
//! program and out of the port it chose, sources are learned by MAC, the unknown are counted.

mod frames;

use p4sim::control::jbsq::{self, Host, JbsqConfig};
use p4sim::hub::{HUB_SOCKET, Hub};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn host(i: u8) -> Host {
    Host {
        ip: Ipv4Addr::new(10, 0, 0, i),
        mac: [2, 0, 0, 0, 1, i],
        port: u16::from(i),
    }
}

fn arp_request(from: Host, target: Ipv4Addr) -> Vec<u8> {
    frames::arp_request(from.mac, from.ip, target)
}

#[test]
fn frames_go_through_the_program_to_learned_ports() {
    let dir = std::env::temp_dir().join(format!("p4sim-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hosts = [host(1), host(2)];
    let cfg = JbsqConfig {
        router: vec![SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 8000)],
        router_mac: ROUTER_MAC,
        n: 1,
        recirc_port: 64,
        hosts: hosts.to_vec(),
        ..JbsqConfig::default()
    };
    let ports: Vec<([u8; 6], u16)> = hosts.iter().map(|h| (h.mac, h.port)).collect();
    let mut hub = Hub::new(&dir, jbsq::switch(&cfg, 1).unwrap(), &ports).unwrap();
    assert!(dir.join(HUB_SOCKET).exists());
    // A second hub on the same directory is refused.
    let again = Hub::new(&dir, jbsq::switch(&cfg, 1).unwrap(), &ports);
    assert!(again.is_err());
    let socks: Vec<UnixDatagram> = (1..=2)
        .map(|i| {
            let s = UnixDatagram::bind(dir.join(format!("{i}.sock"))).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s
        })
        .collect();
    let hub_path = dir.join(HUB_SOCKET);
    let mut buf = [0u8; 2048];
    // Port 1 asks for the router: the program answers on port 1.
    socks[0]
        .send_to(
            &arp_request(hosts[0], Ipv4Addr::new(10, 0, 0, 254)),
            &hub_path,
        )
        .unwrap();
    assert_eq!(hub.poll(Duration::from_millis(100)).unwrap(), 1);
    let n = socks[0].recv(&mut buf).unwrap();
    assert_eq!(&buf[6..12], &ROUTER_MAC);
    assert_eq!(&buf[20..22], &[0, 2]);
    assert_eq!(n, 42);
    // Port 1 asks for host 2: flooded, but port 2 has not spoken yet: counted.
    socks[0]
        .send_to(&arp_request(hosts[0], hosts[1].ip), &hub_path)
        .unwrap();
    hub.poll(Duration::from_millis(100)).unwrap();
    assert_eq!(hub.stats().unknown_port, 1);
    // Port 2 speaks (its own broadcast reaches port 1), then the question reaches it.
    socks[1]
        .send_to(&arp_request(hosts[1], hosts[1].ip), &hub_path)
        .unwrap();
    hub.poll(Duration::from_millis(100)).unwrap();
    socks[0].recv(&mut buf).unwrap();
    socks[0]
        .send_to(&arp_request(hosts[0], hosts[1].ip), &hub_path)
        .unwrap();
    hub.poll(Duration::from_millis(100)).unwrap();
    assert_eq!(&buf[..6], &[0xff; 6]);
    let n = socks[1].recv(&mut buf).unwrap();
    assert_eq!(&buf[38..42], &hosts[1].ip.octets(), "{:?}", &buf[..n]);
    // A stranger's frame is dropped and counted.
    let mut stray = arp_request(hosts[0], hosts[1].ip);
    stray[6..12].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    socks[0].send_to(&stray, &hub_path).unwrap();
    hub.poll(Duration::from_millis(100)).unwrap();
    let st = hub.stats();
    assert_eq!(st.unknown_source, 1);
    assert_eq!(st.paths.get(&(1, 1)), Some(&1));
    assert_eq!(st.paths.get(&(1, 2)), Some(&1));
    assert_eq!(st.paths.get(&(2, 1)), Some(&1));
    drop(hub);
    assert!(!dir.join(HUB_SOCKET).exists(), "removed when dropped");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `p4sim hub`: the same through the command, which exits after `--idle-exit-ms` and prints
/// its counters; bad `--port` values are refused.
#[test]
fn the_hub_command_serves_a_directory() {
    let dir = std::env::temp_dir().join(format!("p4sim-hub-cmd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = JbsqConfig {
        router: vec![SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 8000)],
        router_mac: ROUTER_MAC,
        n: 1,
        recirc_port: 64,
        hosts: vec![host(1)],
        ..JbsqConfig::default()
    };
    let entries = dir.join("entries.json");
    std::fs::write(&entries, cfg.control_file().unwrap().to_json()).unwrap();
    let p4 = concat!(env!("CARGO_MANIFEST_DIR"), "/../../p4/jbsq.p4");
    let bin = env!("CARGO_BIN_EXE_p4sim");
    let bad = std::process::Command::new(bin)
        .args(["hub", p4, "--dir"])
        .arg(dir.join("seg"))
        .args(["--port", "1=02:00:00"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a MAC"));
    let seg = dir.join("seg");
    let child = std::process::Command::new(bin)
        .args(["hub", p4, "--entries"])
        .arg(&entries)
        .arg("--dir")
        .arg(&seg)
        .args(["--port", "1=02:00:00:00:01:01", "--idle-exit-ms", "300"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hub_path = seg.join(HUB_SOCKET);
    for _ in 0..200 {
        if hub_path.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let s = UnixDatagram::bind(dir.join("1.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(
        &arp_request(host(1), Ipv4Addr::new(10, 0, 0, 254)),
        &hub_path,
    )
    .unwrap();
    let mut buf = [0u8; 128];
    assert_eq!(s.recv(&mut buf).unwrap(), 42);
    assert_eq!(&buf[6..12], &ROUTER_MAC);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(": ready") && err.contains("rx: 1, tx: 1"),
        "{err}"
    );
    assert!(!hub_path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
