//! Helpers for the integration tests in `tests/tests/`: build each guest app once per test
//! process, boot it under QEMU or the shim through the `ferrix` library, capture the console.
#![forbid(unsafe_code)]

pub mod netns;
pub mod tshark;
pub mod vm;

use ferrix_cli::{Accel, RunOptions, Vmm};
use std::collections::HashMap;
use std::io::Read;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What a boot produced.
#[derive(Debug)]
pub struct Boot {
    pub exit_code: i32,
    pub timed_out: bool,
    pub console: String,
}

impl Boot {
    /// Panics with the console shown unless `needle` was printed.
    pub fn expect(&self, needle: &str) -> &Self {
        assert!(
            self.console.contains(needle),
            "missing {needle:?} in console output:\n{}",
            self.console
        );
        self
    }
    /// Panics with the console shown unless the exit code is `code`.
    pub fn expect_exit(&self, code: u32) -> &Self {
        assert_eq!(
            self.exit_code, code as i32,
            "wrong exit code; console:\n{}",
            self.console
        );
        self
    }
}

/// A writer appending to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits for a line containing `needle` on a VM's piped stdout; returns everything read so far
/// and a thread that collects the rest (join it after the VM exits).
pub fn wait_for(
    vm: &mut std::process::Child,
    needle: &str,
) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Read};
    let out = vm.stdout.take().expect("piped stdout");
    let mut r = BufReader::new(out);
    let mut seen = String::new();
    let mut line = String::new();
    while r.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        let hit = line.contains(needle);
        line.clear();
        if hit {
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    });
    (seen, rest)
}

/// A Python TCP client for tests inside a namespace (the test process itself is in the root
/// namespace and must not address a guest): `python3 -c PIPELINED_TCP_CLIENT_PY HOST PORT N DEPTH
/// MODE` opens N connections, writes DEPTH requests back to back on each, then checks every
/// connection's replies come back whole and in order, and closes. MODE `echo`: text requests
/// naming connection and request, echoed; a number NS: 8-byte synthetic requests (NS plus a
/// tag, little-endian ns of service time) echoed by apps/synthetic's TCP mode.
pub const PIPELINED_TCP_CLIENT_PY: &str = r#"
import socket, struct, sys, time
host, port, n, depth, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def request(c, i):
    if mode == "echo":
        return (b"conn %d request %d;" % (c, i)) * 3
    return struct.pack("<Q", int(mode) + c * depth + i)
conns = []
for c in range(n):
    for attempt in range(50):
        try:
            s = socket.create_connection((host, port), timeout=3)
            break
        except OSError:
            time.sleep(0.2)
    else:
        sys.exit("cannot connect")
    s.settimeout(60)
    conns.append(s)
reqs = [b"".join(request(c, i) for i in range(depth)) for c in range(n)]
for s, r in zip(conns, reqs):
    s.sendall(r)
for c, (s, r) in enumerate(zip(conns, reqs)):
    got = b""
    while len(got) < len(r):
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection %d closed early" % c)
        got += chunk
    if got != r:
        sys.exit("connection %d: replies out of order or mixed" % c)
for s in conns:
    s.close()
"#;

/// Runs a client (`argv`) inside namespace `ns` against a VM started with piped stdout and
/// already waited for (`seen`, `rest` from [`wait_for`]); stops the VM if the client failed,
/// then waits for it. Panics, with the client's stderr and the console, unless both the client
/// and the VM succeeded. Returns the whole console.
pub fn client_then_vm(
    ns: &netns::NetNs,
    argv: &[&str],
    vm: std::process::Child,
    seen: String,
    rest: std::thread::JoinHandle<String>,
) -> String {
    let client = ns.command(argv).output().expect("start the client");
    let mut vm = vm;
    if !client.status.success() {
        let _ = vm.kill();
    }
    let status = vm.wait().expect("VM");
    let console = seen + &rest.join().unwrap_or_default();
    assert!(
        client.status.success(),
        "client: {}\nVM: {console}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(status.success(), "VM: {console}");
    console
}

/// A RESP command (an array of bulk strings), as redis-cli sends it.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// The image of guest app `app`, built once per test process.
pub fn image(app: &str) -> PathBuf {
    static IMAGES: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut map = IMAGES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(app.to_string())
        .or_insert_with(|| {
            ferrix_cli::build(app, true).unwrap_or_else(|e| panic!("building {app}: {e}"))
        })
        .clone()
}

/// Boots `app` with `cpus` vCPUs under `vmm`, passing `args`, stopping it after `timeout`.
pub fn boot(app: &str, vmm: Vmm, cpus: u32, args: &[&str], timeout: Duration) -> Boot {
    boot_with(app, vmm, cpus, args, timeout, |_| {})
}

/// [`boot`] with a hook to adjust the run options (network, MAC, pcap, ...).
pub fn boot_with(
    app: &str,
    vmm: Vmm,
    cpus: u32,
    args: &[&str],
    timeout: Duration,
    adjust: impl FnOnce(&mut RunOptions),
) -> Boot {
    let mut opts = RunOptions {
        target: image(app).to_string_lossy().into_owned(),
        vmm,
        cpus,
        mem_bytes: 128 << 20,
        timeout: Some(timeout),
        accel: Accel::Tcg,
        profile: None,
        args: args.iter().map(|s| s.to_string()).collect(),
        ..RunOptions::default()
    };
    adjust(&mut opts);
    let cap = Capture::default();
    let res = ferrix_cli::run(&opts, Box::new(cap.clone()))
        .unwrap_or_else(|e| panic!("running {app} under {vmm:?}: {e}"));
    let console =
        String::from_utf8_lossy(&cap.0.lock().unwrap_or_else(|e| e.into_inner())).replace('\r', "");
    Boot {
        exit_code: res.exit_code,
        timed_out: res.timed_out,
        console,
    }
}

/// Whether the shim can run here (it needs /dev/kvm). Prints why not.
pub fn kvm_available() -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping shim boot: /dev/kvm not usable: {e}");
            false
        }
    }
}

/// Connects to a guest's TCP port forwarded to 127.0.0.1, retrying for 60 s while it boots.
pub fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                return s;
            }
            Err(e) if Instant::now() > deadline => panic!("connect: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Opens `conns` connections, writes `depth` pipelined requests of `service_ns` (plus a tag)
/// on each, then reads every reply and checks they come back whole and in order.
pub fn pipelined(port: u16, conns: usize, depth: usize, service_ns: u64) {
    let mut streams: Vec<TcpStream> = (0..conns).map(|_| connect(port)).collect();
    let reqs: Vec<Vec<u8>> = (0..conns)
        .map(|c| {
            (0..depth)
                .flat_map(|i| (service_ns + (c * depth + i) as u64).to_le_bytes())
                .collect()
        })
        .collect();
    for (s, r) in streams.iter_mut().zip(&reqs) {
        s.write_all(r).unwrap();
    }
    for (c, (s, r)) in streams.iter_mut().zip(&reqs).enumerate() {
        let mut got = vec![0u8; r.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("connection {c}: {e}"));
        assert_eq!(&got, r, "connection {c}: replies out of order or mixed");
    }
}

/// A synthetic TCP server VM (`ferrix run` by the binary `ferrix`) on QEMU's user network:
/// `port` on 127.0.0.1 forwarded to the guest's 9000, `opts` for `ferrix run` (150 s timeout
/// unless given), `args` for the guest after its address. stdout is piped ([`wait_for`]).
pub fn synthetic_tcp_vm(
    ferrix: &str,
    port: u16,
    cpus: u32,
    opts: &[&str],
    args: &[&str],
) -> std::process::Child {
    std::process::Command::new(ferrix)
        .args(["run", image("synthetic").to_str().unwrap()])
        .args(["--net", &format!("user:tcp:{port}:9000")])
        .args(["--cpus", &cpus.to_string(), "--timeout", "150"])
        .args(opts)
        .args([
            "--",
            "ferrix.ip=10.0.2.15/24",
            "ferrix.gw=10.0.2.2",
            "tcp-port=9000",
        ])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the VM")
}

/// The number right after the first word of the console line containing `needle` (a cost
/// line such as `router: 512 ns per REQ0 in poll ...`); panics with the console if there is
/// none.
pub fn cost_on_line(console: &str, needle: &str) -> (u64, String) {
    let line = console
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{console}"));
    let n = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (n, line.to_string())
}
