//! The kv guest (apps/kv) served to real clients nobody here wrote, through QEMU's user network
//! (ports forwarded from 127.0.0.1 only, no root): `redis-cli` round trips, `redis-benchmark`
//! pipelined, and memcached clients (a Python socket script for ASCII, libmemcached-tools'
//! `memccp`/`memccat` (Debian's names; `memcp`/`memcat` elsewhere) for ASCII and binary).
//!
//! `ferrix bench kv --quick` runs end to end too (its rows checked, no time limits asserted).
//!
//! The guest listens on one port and tells the protocols apart by the first byte; the test
//! forwards two host ports to it. A missing client binary fails the test when `CI` is set and
//! skips it (with the reason printed) otherwise.

use ferrix_tests::wait_for;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// redis-cli's reply (trailing newlines cut); panics if it failed.
fn cli_reply(args: &[&str], out: &Output) -> String {
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Retries PING through `r` (redis-cli) until the guest answers PONG (bounded): until then
/// the forward or ARP is not up yet.
fn until_pong(r: &dyn Fn(&[&str]) -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while r(&["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "no PONG");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tests of this file boot one VM at a time: five VMs with load generators at once on a
/// 2-core machine starved QEMU's user network until redis-benchmark's connections stalled in
/// retransmissions and were reset (issue 12 note); one at a time they take about a minute.
fn one_vm_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The VM, killed if the test fails before it exits.
struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The first of `names` on PATH; `None` (test skipped, reason printed) when none is, unless
/// `CI` is set: then the test fails.
fn tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let msg = format!(
        "{} not found on PATH (packages: redis-tools for redis-cli/redis-benchmark, libmemcached-tools for memccp/memccat/memcaslap, redis-server, memcached)",
        names.join(" / ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// Runs `cmd` with `args`, killed after `limit`; its output.
fn run(cmd: &PathBuf, args: &[&str], limit: Duration) -> Output {
    let mut c = Command::new(cmd);
    c.args(args);
    run_cmd(c, limit)
}

/// Runs `c`, killed after `limit`; its output.
fn run_cmd(mut c: Command, limit: Duration) -> Output {
    let what = format!("{c:?}");
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what}: no exit within {limit:?}; stdout {:?} stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Boots kv with host ports `redis` and `memcached` (127.0.0.1) forwarded to its one port;
/// it exits by itself once idle for a few seconds after the clients are done.
fn boot(redis: u16, memcached: u16) -> (Vm, String, std::thread::JoinHandle<String>) {
    let image = ferrix_tests::image("kv");
    let fwd = format!("user:tcp:{redis}:6379,tcp:{memcached}:6379");
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut child = Command::new(FERRIX)
        .args([
            "run",
            image.to_str().unwrap(),
            "--net",
            &fwd,
            "--cpus",
            "2",
            "--timeout",
            "300",
            "--",
        ])
        .args([
            "ferrix.ip=10.0.2.15/24",
            "ferrix.gw=10.0.2.2",
            "idle-exit-ms=8000",
            &format!("unix-time={unix}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let (seen, rest) = wait_for(&mut child, "kv: listening");
    assert!(seen.contains("kv: listening"), "{seen}");
    (Vm(child), seen, rest)
}

/// Waits (bounded) for the VM's own idle exit; returns its console.
fn finish(mut vm: Vm, seen: String, rest: std::thread::JoinHandle<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = vm.0.try_wait().expect("VM") {
            break s;
        }
        assert!(Instant::now() < deadline, "the VM did not exit when idle");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = seen + &rest.join().unwrap_or_default();
    assert!(status.success(), "{out}");
    assert!(out.contains("kv: idle, exiting"), "{out}");
    out
}

/// Two free host ports, picked by the kernel (a port computed from the pid collided with the
/// next run's, or with another test's, and QEMU then failed to forward it).
fn ports(_slot: u16) -> (u16, u16) {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    };
    let a = free();
    let mut b = free();
    while b == a {
        b = free();
    }
    (a, b)
}

/// Connects, retrying while the forward is not up yet (bounded).
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                return s;
            }
            Err(e) if Instant::now() > deadline => panic!("connect to {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn kv_redis_cli_round_trips_and_redis_benchmark() {
    let _turn = one_vm_at_a_time();
    let (Some(cli), Some(bench)) = (tool(&["redis-cli"]), tool(&["redis-benchmark"])) else {
        return;
    };
    let (redis, memcached) = ports(0);
    let (vm, seen, rest) = boot(redis, memcached);
    let port = redis.to_string();
    let r = |args: &[&str]| -> String {
        let mut a = vec!["-p", &port];
        a.extend_from_slice(args);
        let out = run(&cli, &a, Duration::from_secs(30));
        cli_reply(args, &out)
    };
    // Wait for the forward (slirp answers the connect itself; PING proves the guest).
    until_pong(&r);
    assert_eq!(r(&["SET", "k1", "v1"]), "OK");
    assert_eq!(r(&["GET", "k1"]), "v1");
    assert_eq!(r(&["GET", "nope"]), "");
    assert_eq!(r(&["INCR", "n"]), "1");
    assert_eq!(r(&["INCR", "n"]), "2");
    assert_eq!(r(&["MGET", "k1", "nope", "n"]), "v1\n\n2");
    assert_eq!(r(&["TTL", "k1"]), "-1");
    assert_eq!(r(&["EXPIRE", "k1", "100"]), "1");
    let ttl: i64 = r(&["TTL", "k1"]).parse().expect("TTL is an integer");
    assert!((98..=100).contains(&ttl), "TTL {ttl}");
    let mut keys: Vec<String> = r(&["KEYS", "*"]).lines().map(String::from).collect();
    keys.sort();
    assert_eq!(keys, ["k1", "n"]);
    assert_eq!(r(&["KEYS", "k*"]), "k1");
    assert_eq!(r(&["DBSIZE"]), "2");
    assert_eq!(r(&["DEL", "k1", "n", "nope"]), "2");
    assert_eq!(r(&["DBSIZE"]), "0");
    assert_eq!(r(&["TTL", "k1"]), "-2");

    let t0 = Instant::now();
    let out = run(
        &bench,
        &[
            "-p",
            &port,
            "-t",
            "set,get,incr",
            // 8 clients, not 50: QEMU's user network accepts forwarded connections from a
            // listen backlog of 1, so on a loaded machine the later of 50 connects wait in
            // SYN retransmission for longer than the guest's idle exit (the TAP test below
            // runs the default 50).
            "-c",
            "8",
            "-P",
            "16",
            "-n",
            "20000",
            "-q",
        ],
        Duration::from_secs(180),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("redis-benchmark ({:?}):\n{text}", t0.elapsed());
    assert!(
        out.status.success(),
        "redis-benchmark: {:?}: {text}",
        out.status
    );
    for t in ["SET:", "GET:", "INCR:"] {
        assert!(text.contains(t), "no {t} result: {text}");
    }
    assert!(
        !text.to_ascii_lowercase().contains("error"),
        "errors: {text}"
    );
    // Every INCR landed (redis-benchmark's INCR key without -r).
    assert_eq!(r(&["GET", "counter:__rand_int__"]), "20000");
    // SET's value: 3 bytes (`-d` default; their content depends on the version).
    assert_eq!(r(&["STRLEN", "key:__rand_int__"]), "3");
    finish(vm, seen, rest);
}

#[test]
fn kv_memcached_ascii_and_binary_clients() {
    let _turn = one_vm_at_a_time();
    let (Some(cp), Some(cat)) = (tool(&["memccp", "memcp"]), tool(&["memccat", "memcat"])) else {
        return;
    };
    let (redis, memcached) = ports(1);
    let (vm, seen, rest) = boot(redis, memcached);

    // ASCII by hand: set, get, incr, delete, and a reply the client reads to the end.
    let mut s = connect(memcached);
    s.write_all(
        b"set a 5 0 3\r\nabc\r\nget a nope\r\nset n 0 0 1\r\n7\r\nincr n 5\r\ndelete a\r\nget a\r\nquit\r\n",
    )
    .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("memcached replies, then close");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nSTORED\r\n12\r\nDELETED\r\nEND\r\n"
    );

    // Redis inline commands on the same port: told from memcached by the first word.
    let mut s = connect(memcached);
    s.write_all(b"PING\r\nSET inl \"two words\"\r\nGET inl\r\nQUIT\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("replies, then close");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "+PONG\r\n+OK\r\n$9\r\ntwo words\r\n+OK\r\n"
    );

    // libmemcached-tools, ASCII and binary.
    let dir = std::env::temp_dir().join(format!("ferrix-kv-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let servers = format!("--servers=127.0.0.1:{memcached}");
    for (proto, file, body) in [
        ("ascii", "kv-ascii.txt", "hello ferrix over ascii\n"),
        ("binary", "kv-binary.txt", "hello ferrix over binary\n"),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, body).unwrap();
        let mut a = vec![servers.as_str()];
        if proto == "binary" {
            a.push("--binary");
        }
        let mut up = a.clone();
        up.push(path.to_str().unwrap());
        let out = run(&cp, &up, Duration::from_secs(30));
        assert!(out.status.success(), "{} {proto}: {out:?}", cp.display());
        let mut down = a.clone();
        down.push(file);
        let out = run(&cat, &down, Duration::from_secs(30));
        assert!(out.status.success(), "{} {proto}: {out:?}", cat.display());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            body.trim_end()
        );
    }
    // What one protocol stored the other reads (one store).
    let out = run(
        &cat,
        &[servers.as_str(), "--binary", "kv-ascii.txt"],
        Duration::from_secs(30),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "hello ferrix over ascii"
    );
    let _ = std::fs::remove_dir_all(&dir);
    finish(vm, seen, rest);
}

#[test]
fn kv_bad_arguments_print_one_line_and_exit_1() {
    for (arg, needle) in [
        ("mem-mb=lots", "kv: bad value mem-mb=lots"),
        ("mem-mb=100000", "kv: bad value mem-mb=100000"),
        ("item-max=10", "kv: bad value item-max=10"),
        ("proto=http", "kv: bad value proto=http"),
        (
            "memcached-port=11211",
            "kv: memcached-port=11211: one listening port only",
        ),
    ] {
        ferrix_tests::boot(
            "kv",
            ferrix_cli::Vmm::Qemu,
            1,
            &[arg],
            Duration::from_secs(60),
        )
        .expect(needle)
        .expect_exit(1);
    }
}

/// A client that pipelines 10,000 commands and never reads, and one that sends binary
/// garbage: the guest keeps serving the others, and the data stays.
#[test]
fn kv_survives_a_client_that_never_reads_and_garbage() {
    let _turn = one_vm_at_a_time();
    let Some(cli) = tool(&["redis-cli"]) else {
        return;
    };
    let (redis, memcached) = ports(2);
    let (vm, seen, rest) = boot(redis, memcached);
    let port = redis.to_string();
    let r = |args: &[&str]| -> String {
        let mut a = vec!["-p", &port];
        a.extend_from_slice(args);
        let out = run(&cli, &a, Duration::from_secs(30));
        cli_reply(args, &out)
    };
    until_pong(&r);
    assert_eq!(r(&["SET", "kept", "yes"]), "OK");

    // Never reads: 10,000 pipelined GETs of a 1000-byte value (10 MB of replies).
    assert_eq!(r(&["SET", "big", &"x".repeat(1000)]), "OK");
    let mut hog = connect(redis);
    hog.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cmds = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(10_000);
    let _ = hog.write_all(&cmds); // may stop when the guest stops reading: that is the point
    // Garbage on both ports (RESP by '*', memcached binary by 0x80, ASCII otherwise).
    for (p, junk) in [
        (redis, &b"*\xff\xfe\r\n$-9\r\n\x00\x01\x02\r\n"[..]),
        (
            memcached,
            &b"\x80\x01\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff"[..],
        ),
        (
            memcached,
            &b"\x01\x02\x03 garbage \xff\r\nget\r\nset x 0 0 -1\r\n"[..],
        ),
    ] {
        let mut g = connect(p);
        let _ = g.write_all(junk);
        let _ = g.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let _ = g.read_to_end(&mut buf); // replies and a close, or a timeout: either way on
    }
    // Clients that each send most of a 1 MB value and never finish: more than the guest's
    // buffer budget (a quarter of its free heap) together, so some are told and closed, and
    // the heap is never run dry.
    let value = vec![b'x'; 950_000];
    let mut partial = Vec::new();
    let mut refused = 0;
    for i in 0..14 {
        let mut c = connect(memcached);
        c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = c.write_all(format!("set part{i} 0 0 1000000\r\n").as_bytes());
        let _ = c.write_all(&value);
        let mut buf = [0u8; 256];
        if let Ok(n) = c.read(&mut buf)
            && buf[..n].starts_with(b"SERVER_ERROR out of memory")
        {
            refused += 1;
        }
        partial.push(c);
    }
    eprintln!("{refused} of 14 partial 1 MB sets refused for want of buffer memory");
    drop(partial);
    // Replies nobody reads: a 900 kB item asked for by a line naming it 1,000 times gets
    // memcached's error, not a 900 MB reply; clients that each ask for it twice and never
    // read hold their replies against the output budget, and past it are told and closed.
    let mut c = connect(memcached);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"set huge 0 0 900000\r\n").unwrap();
    c.write_all(&value[..900_000]).unwrap();
    c.write_all(b"\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STORED\r\n");
    c.write_all(format!("get{}\r\n", " huge".repeat(1000)).as_bytes())
        .unwrap();
    let n = c.read(&mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        "SERVER_ERROR out of memory writing get response\r\n"
    );
    let mut readers = Vec::new();
    for _ in 0..24 {
        let mut g = connect(memcached);
        let _ = g.write_all(b"get huge huge\r\n");
        readers.push(g);
    }
    std::thread::sleep(Duration::from_secs(2));
    // The others are served, the data is intact.
    assert_eq!(r(&["GET", "kept"]), "yes");
    assert_eq!(r(&["STRLEN", "big"]), "1000");
    drop(hog);
    drop(readers);
    assert_eq!(r(&["DBSIZE"]), "3");
    let console = finish(vm, seen, rest);
    let closes: u64 = console
        .lines()
        .find_map(|l| l.split("for want of buffer memory ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no budget count: {console}"));
    assert!(closes > 0, "no connection hit the buffer budget: {console}");
}

/// The first number after `config` in a `ferrix bench` table ("<config> N unit ...") and the
/// rest of its line.
fn bench_row<'a>(table: &'a str, config: &str) -> Option<(f64, &'a str)> {
    table.lines().find_map(|l| {
        let rest = l.strip_prefix(config)?.strip_prefix(' ')?.trim_start();
        let n = rest.split_whitespace().next()?.parse().ok()?;
        Some((n, rest))
    })
}

/// `ferrix bench kv --quick`: Linux and guest throughput rows for every load, positive and
/// without client errors, and positive instruction counts per GET and SET (no timing asserted).
#[test]
fn kv_bench_quick_reports_guest_and_linux_rows() {
    let tools = [
        tool(&["redis-benchmark"]),
        tool(&["redis-server"]),
        tool(&["memcached"]),
        tool(&["memcaslap", "memaslap"]),
    ];
    if tools.iter().any(Option::is_none) {
        return;
    }
    let out = Command::new(FERRIX)
        .args(["bench", "kv", "--quick"])
        .output()
        .expect("run ferrix bench kv");
    let table = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{log}");
    for load in ["resp-set", "resp-get", "mc-ascii", "mc-binary"] {
        for side in ["linux", "ferrix"] {
            let config = format!("{load}-{side}");
            let (rate, rest) =
                bench_row(&table, &config).unwrap_or_else(|| panic!("no {config}:\n{table}"));
            assert!(rate > 0.0, "{config}: {rest}");
            assert!(rest.contains("errors: none"), "{config}: {rest}");
        }
        let (_, rest) = bench_row(&table, &format!("{load}-ferrix")).unwrap();
        assert!(rest.ends_with("x linux)"), "{rest}");
    }
    for config in [
        "icount-resp-get",
        "icount-resp-set",
        "icount-mc-get",
        "icount-mc-set",
        "icount-udp-get",
        "icount-udp-echo",
    ] {
        let (n, rest) =
            bench_row(&table, config).unwrap_or_else(|| panic!("no {config}:\n{table}"));
        assert!(
            n > 0.0 && rest.contains("guest instructions per"),
            "{config}: {rest}"
        );
    }
}

/// Issue 12's goal, guarded like the other instruction budgets (5 % over it fails): a 64-byte
/// memcached GET over UDP costs at most 2x the UDP echo app's received frame, both counted
/// under `-icount` in the same run (`ferrix bench kv --icount-only`).
#[test]
fn kv_udp_get_within_twice_a_udp_echo_frame() {
    let _turn = one_vm_at_a_time();
    let out = Command::new(FERRIX)
        .args(["bench", "kv", "--icount-only", "--icount-ops", "500"])
        .output()
        .expect("run ferrix bench kv");
    let table = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{log}");
    let n = |config: &str| {
        bench_row(&table, config)
            .unwrap_or_else(|| panic!("no {config}:\n{table}"))
            .0
    };
    let (get, echo) = (n("icount-udp-get"), n("icount-udp-echo"));
    assert!(echo > 0.0, "{table}");
    let ratio = get / echo;
    eprintln!("UDP GET {get} instructions, UDP echo frame {echo}: {ratio:.2}x");
    assert!(
        ratio <= 2.0 * 1.05,
        "a memcached UDP GET costs {ratio:.2}x a UDP echo frame (goal 2x, fails beyond 2.1x):\n{table}"
    );
}

/// The guest on a TAP device inside a namespace the test creates (the clients run in it, as
/// a client machine on the guest's segment would): redis-cli and redis-benchmark
/// (`-t set,get,incr,mset -P 16 -n 20000`, no errors), libmemcached-tools (memccp, memccat,
/// memcflush, memcslap) over ASCII and binary, pymemcache, and the datagram frontends
/// (memcached UDP and R2P2, `kv-datagram-client`).
#[test]
fn kv_through_tap_in_a_namespace() {
    let _turn = one_vm_at_a_time();
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let (Some(cli), Some(bench), Some(cp), Some(cat), Some(flush), Some(slap)) = (
        tool(&["redis-cli"]),
        tool(&["redis-benchmark"]),
        tool(&["memccp", "memcp"]),
        tool(&["memccat", "memcat"]),
        tool(&["memcflush", "memflush"]),
        tool(&["memcslap", "memslap"]),
    ) else {
        return;
    };
    let python = python_with_pymemcache();
    let image = ferrix_tests::image("kv");
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("fk0", "10.78.0.1/24");
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let unix_arg = format!("unix-time={unix}");
    let mut child = ns
        .command(&[
            FERRIX,
            "run",
            image.to_str().unwrap(),
            "--net",
            "tap:fk0",
            "--cpus",
            "2",
            "--timeout",
            "300",
            "--",
            "ferrix.ip=10.78.0.2/24",
            "udp-port=11211",
            "idle-exit-ms=8000",
            &unix_arg,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the VM");
    let (seen, rest) = wait_for(&mut child, "kv: listening");
    assert!(seen.contains("kv: listening"), "{seen}");
    let vm = Vm(child);
    let in_ns = |bin: &PathBuf, args: &[&str], secs: u64| -> Output {
        let mut argv = vec![bin.to_str().unwrap()];
        argv.extend_from_slice(args);
        run_cmd(ns.command(&argv), Duration::from_secs(secs))
    };
    let text = |o: &Output| {
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
    };
    let r = |args: &[&str]| -> String {
        let mut a = vec!["-h", "10.78.0.2", "-p", "6379"];
        a.extend_from_slice(args);
        let out = in_ns(&cli, &a, 30);
        cli_reply(args, &out)
    };
    // The guest answers ARP once booted: retry the first PING (bounded).
    until_pong(&r);
    assert_eq!(r(&["MSET", "t1", "one", "t2", "two"]), "OK");
    assert_eq!(r(&["MGET", "t3", "t1", "t2"]), "\none\ntwo");
    assert_eq!(r(&["INCRBY", "tn", "41"]), "41");
    assert_eq!(r(&["SET", "tx", "v", "EX", "100"]), "OK");
    assert_eq!(r(&["EXISTS", "t1", "tx", "nope"]), "2");

    let out = in_ns(
        &bench,
        &[
            "-h",
            "10.78.0.2",
            "-p",
            "6379",
            "-t",
            "set,get,incr,mset",
            "-P",
            "16",
            "-n",
            "20000",
            "-q",
        ],
        240,
    );
    let b = text(&out);
    eprintln!("redis-benchmark through TAP:\n{b}");
    assert!(out.status.success(), "redis-benchmark: {b}");
    for t in ["SET:", "GET:", "INCR:", "MSET (10 keys):"] {
        assert!(b.contains(t), "no {t} result: {b}");
    }
    assert!(!b.to_ascii_lowercase().contains("error"), "errors: {b}");
    assert_eq!(r(&["GET", "counter:__rand_int__"]), "20000");

    // libmemcached-tools: copy up and read back, ASCII and binary, flush, and a load.
    let dir = std::env::temp_dir().join(format!("ferrix-kv-tap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kv-tap.txt");
    std::fs::write(&file, "through the tap\n").unwrap();
    let servers = "--servers=10.78.0.2:6379";
    for binary in [false, true] {
        let mut a = vec![servers];
        if binary {
            a.push("--binary");
        }
        let up = [a.as_slice(), &[file.to_str().unwrap()]].concat();
        let out = in_ns(&cp, &up, 30);
        assert!(
            out.status.success(),
            "memccp binary={binary}: {}",
            text(&out)
        );
        let down = [a.as_slice(), &["kv-tap.txt"]].concat();
        let out = in_ns(&cat, &down, 30);
        assert!(
            out.status.success(),
            "memccat binary={binary}: {}",
            text(&out)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            "through the tap"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    for binary in [false, true] {
        let mut a = vec![
            servers,
            "--concurrency=2",
            "--execute-number=2000",
            "--test=set",
        ];
        if binary {
            a.push("--binary");
        }
        for test in ["--test=set", "--test=get"] {
            a[3] = test;
            let out = in_ns(&slap, &a, 120);
            let t = text(&out);
            eprintln!("memcslap {a:?}: {t}");
            assert!(out.status.success(), "memcslap {a:?}: {t}");
            assert!(!t.contains("Failure"), "memcslap {a:?}: {t}");
        }
    }
    let out = in_ns(&flush, &[servers], 30);
    assert!(out.status.success(), "memcflush: {}", text(&out));
    let out = in_ns(&cat, &[servers, "kv-tap.txt"], 30);
    assert!(
        !out.status.success(),
        "memccat found a key after memcflush: {}",
        text(&out)
    );

    if let Some(py) = &python {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kv_pymemcache.py");
        let out = in_ns(py, &[script, "10.78.0.2", "6379"], 60);
        assert!(out.status.success(), "pymemcache: {}", text(&out));
        assert!(text(&out).contains("pymemcache: ok"), "{}", text(&out));
    }

    let client = PathBuf::from(env!("CARGO_BIN_EXE_kv-datagram-client"));
    let out = in_ns(&client, &["10.78.0.2:11211", "10.78.0.2:8000"], 120);
    assert!(out.status.success(), "kv-datagram-client: {}", text(&out));
    assert!(
        text(&out).contains("kv-datagram-client: ok"),
        "{}",
        text(&out)
    );

    let console = finish(vm, seen, rest);
    // Every datagram frontend counted its requests; nothing failed to send.
    let line = console
        .lines()
        .find(|l| l.starts_with("kv: datagrams:"))
        .unwrap_or_else(|| panic!("no datagram summary: {console}"));
    assert!(line.contains("read-only refused 1 "), "{line}");
    assert!(line.contains("send failures 0"), "{line}");
    drop(ns);
}

/// A Python 3 that has pymemcache (Debian's python3-pymemcache, which .ci/run installs):
/// the system's `/usr/bin/python3` first (a pyenv or venv `python3` on PATH does not see
/// Debian's packages). None (skipped, reason printed) when there is none, unless `CI` is set.
fn python_with_pymemcache() -> Option<PathBuf> {
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py)
            .args(["-c", "import pymemcache"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(py));
        }
    }
    let msg = "no python3 with pymemcache (apt-get install python3-pymemcache)";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping the pymemcache part: {msg}");
    None
}
