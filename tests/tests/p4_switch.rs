//! p4/jbsq.p4, run by p4sim, as the switch between ferrix VMs under the shim: the VMs'
//! `--net switch:DIR` segment has a hub (`p4sim::hub`, bound to `DIR/hub.sock` in this test
//! process), so every frame goes through the P4 program, which is the R2P2 router and the
//! hosts' L2 switch at once:
//!
//! ```text
//!   synthetic client (10.79.0.1, port 1) --REQ0--> 10.79.0.10:8000 (the switch itself: JBSQ)
//!        ^                                             | rewritten to a server, client kept
//!        |                                             v  as the source
//!        +------ RESPONSE, bridged by the switch --- synthetic servers .11 (port 2), .12 (3)
//!                                                       FEEDBACK -> 10.79.0.10:9000
//! ```
//!
//! Checked: every request is answered; both servers got REQ0s through the program; replies
//! come from the servers' ports to the client's (no router VM, nothing addressed to the
//! router on the way back); the program's own counters agree (forwarded REQ0s, FEEDBACK
//! received, ARP answered for the router's address) and nothing was dropped for want of a
//! port or a pass.

use ferrix_tests::vm::LiveVm;
use p4sim::control::jbsq::{self, Host, JbsqConfig, Server};
use p4sim::hub::Hub;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");
const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 10);
const ROUTER_MAC: [u8; 6] = [0x52, 0x54, 0, 0x79, 0, 0x10];
const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 0, 0x79, 0, 0x01];

fn server_mac(i: u8) -> [u8; 6] {
    [0x52, 0x54, 0, 0x79, 0, 0x10 + i]
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn shim(net: &str, app: &str, mac: [u8; 6], args: &[&str], ready: &str) -> LiveVm {
    let image = ferrix_tests::image(app);
    let mut cmd = Command::new(FERRIX);
    cmd.args(["run", image.to_str().unwrap_or_default()])
        .args(["--vmm", "shim", "--cpus", "1", "--net", net])
        .args(["--mac", &mac_text(mac), "--timeout", "300", "--"])
        .args(args);
    let mut vm = LiveVm::spawn(cmd);
    assert!(
        vm.wait(ready, Duration::from_secs(240)),
        "{app} never became ready:\n{}",
        vm.console()
    );
    vm
}

#[test]
fn jbsq_p4_in_p4sim_switches_between_shim_vms() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ferrix-p4-switch-{}", std::process::id()));
    let servers: Vec<Server> = (1..=2u8)
        .map(|i| Server {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 79, 0, 10 + i), 8000),
            mac: server_mac(i),
            egress_port: 1 + u16::from(i),
        })
        .collect();
    let mut hosts = vec![Host {
        ip: Ipv4Addr::new(10, 79, 0, 1),
        mac: CLIENT_MAC,
        port: 1,
    }];
    hosts.extend(servers.iter().map(|s| Host {
        ip: *s.addr.ip(),
        mac: s.mac,
        port: s.egress_port,
    }));
    let cfg = JbsqConfig {
        router: vec![
            SocketAddrV4::new(ROUTER_IP, 8000),
            SocketAddrV4::new(ROUTER_IP, 9000),
        ],
        router_mac: ROUTER_MAC,
        servers: servers.clone(),
        n: 1,
        recirc_port: 64,
        routes: vec![],
        hosts: hosts.clone(),
    };
    let sw = jbsq::switch(&cfg, 1).expect("jbsq.p4 and its entries load");
    let ports: Vec<([u8; 6], u16)> = hosts.iter().map(|h| (h.mac, h.port)).collect();
    let mut hub = Hub::new(&dir, sw, &ports).expect("the hub binds");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let hub_thread = std::thread::spawn(move || {
        while !stopping.load(Ordering::Relaxed) {
            hub.poll(Duration::from_millis(5)).expect("hub poll");
        }
        hub
    });

    let net = format!("switch:{}", dir.display());
    let router = format!("router={ROUTER_IP}:9000");
    let _servers: Vec<LiveVm> = (1..=2u8)
        .map(|i| {
            let ip = format!("ferrix.ip=10.79.0.1{i}/24");
            shim(
                &net,
                "synthetic",
                server_mac(i),
                &[&ip, &router],
                "synthetic: serving",
            )
        })
        .collect();
    let client = shim(
        &net,
        "synthetic",
        CLIENT_MAC,
        &[
            "ferrix.ip=10.79.0.1/24",
            &format!("client={ROUTER_IP}:8000"),
            "count=12",
            "size=64",
            "timeout-ms=20000",
        ],
        "synthetic: client",
    );
    let (status, out) = client.finish(Duration::from_secs(240));
    stop.store(true, Ordering::Relaxed);
    let hub = hub_thread.join().expect("hub thread");
    let _ = std::fs::remove_dir_all(&dir);
    let st = hub.stats().clone();
    let sw = hub.switch();
    let stat = |name: &str| jbsq::stat(sw, name);
    eprintln!(
        "client:\n{out}\nhub: {st:?}\nswitch: {:?}\nrx {} req0 {} feedback {} forwarded {} recirculated {}",
        sw.stats,
        stat("rx"),
        stat("req0"),
        stat("feedback"),
        stat("forwarded"),
        stat("recirculated")
    );
    assert!(status.is_some_and(|s| s.success()), "the client failed");
    assert!(out.contains("12 of 12 requests"), "{out}");
    // REQ0s went from the client's port to both servers' ports, through the program.
    let path = |a: u16, b: u16| st.paths.get(&(a, b)).copied().unwrap_or(0);
    assert!(path(1, 2) > 0 && path(1, 3) > 0, "{st:?}");
    assert!(stat("forwarded") >= 12, "{st:?}");
    assert!(stat("req0") >= 12);
    // Replies came from the servers' ports to the client's: bridged, not via a router.
    assert!(path(2, 1) + path(3, 1) >= 12, "{st:?}");
    // Each reply's FEEDBACK reached the program (and the servers' heartbeats).
    assert!(stat("feedback") >= 12, "{st:?}");
    assert_eq!(stat("malformed"), 0);
    assert_eq!(
        (st.unknown_source, st.pass_limit, st.packet_errors),
        (0, 0, 0)
    );
}
