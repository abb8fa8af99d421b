//! R2P2 interop: the Linux `r2p2-linux` client talks to `apps/synthetic` in a QEMU guest
//! through user networking (slirp forwards ports on 127.0.0.1; nothing leaves the machine):
//! single- and multi-packet R2P2 echoes (REQ0 + ACK + the rest through the forward), and the
//! plain-UDP synthetic port. Both ends use the SACK extension: slirp loses the odd packet of
//! a burst.

use r2p2_linux::client::{Load, run};
use std::net::{SocketAddrV4, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `ferrix` command built for the tests.
const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// Stops the VM when the test ends, also on failure.
struct Vm(Child);
impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn load(server: SocketAddrV4, count: u64, size: usize, timeout_ms: u64) -> Load {
    Load {
        server,
        count,
        size,
        service_ns: None,
        timeout_ns: timeout_ms * 1_000_000,
        depth: 1,
        verify_echo: true,
        sack: true,
    }
}

#[test]
fn linux_client_to_synthetic_guest_through_slirp() {
    let base = 21000 + (std::process::id() % 20000) as u16;
    let (r2p2_port, udp_port) = (base, base + 1);
    let image = ferrix_tests::image("synthetic");
    let net = format!("user:udp:{r2p2_port}:8000,udp:{udp_port}:7100");
    let vm = Command::new(FERRIX)
        .args([
            "run",
            image.to_str().unwrap(),
            "--net",
            &net,
            "--timeout",
            "120",
            "--",
        ])
        .args(["ferrix.ip=10.0.2.15/24", "ferrix.gw=10.0.2.2", "sack=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let mut vm = Vm(vm);
    let server = SocketAddrV4::new([127, 0, 0, 1].into(), r2p2_port);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();

    // Until the guest is up, requests are lost: retry one at a time.
    let start = Instant::now();
    while run(&socket, &load(server, 1, 8, 500)).unwrap().ok == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "guest never answered"
        );
    }
    for size in [0, 64, 1464, 1465, 3000, 20000, 65000] {
        let r = run(&socket, &load(server, 10, size, 3000)).unwrap();
        assert_eq!(
            (r.ok, r.mismatches),
            (10, 0),
            "size {size}: {} timeouts {} errors",
            r.timeouts,
            r.errors
        );
    }

    // Plain UDP: a service time of 1 us, echoed.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut req = Vec::new();
    ferrix_net::r2p2::synthetic::encode_request(1000, 32, &mut req);
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        udp.send_to(&req, ("127.0.0.1", udp_port)).unwrap();
        let (n, _) = udp.recv_from(&mut buf).expect("UDP synthetic reply");
        assert_eq!(&buf[..n], &req[..]);
    }

    let _ = vm.0.kill();
    let _ = vm.0.wait();
    let mut console = String::new();
    if let Some(mut out) = vm.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut console);
    }
    assert!(
        console.contains("synthetic: serving 10.0.2.15"),
        "{console}"
    );
}
