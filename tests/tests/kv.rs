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
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", cmd.display()));
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{} {args:?}: no exit within {limit:?}; stdout {:?} stderr {:?}",
                cmd.display(),
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
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    };
    // Wait for the forward (slirp answers the connect itself; PING proves the guest).
    let deadline = Instant::now() + Duration::from_secs(60);
    while r(&["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "no PONG");
        std::thread::sleep(Duration::from_millis(200));
    }
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
    assert!(out.status.success(), "redis-benchmark: {text}");
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
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while r(&["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "no PONG");
        std::thread::sleep(Duration::from_millis(200));
    }
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
    // The others are served, the data is intact.
    assert_eq!(r(&["GET", "kept"]), "yes");
    assert_eq!(r(&["STRLEN", "big"]), "1000");
    drop(hog);
    assert_eq!(r(&["DBSIZE"]), "2");
    finish(vm, seen, rest);
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
