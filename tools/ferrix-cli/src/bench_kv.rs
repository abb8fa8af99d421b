//! `ferrix bench kv`: the kv guest (apps/kv) against Linux `redis-server` and `memcached`,
//! the same load in the same run, and the guest's instructions per GET and per SET.
//!
//! * Throughput: `redis-benchmark -t set,get -P 16 -n N --csv` (50 connections, its default)
//!   and libmemcached-tools' `memcaslap` (`memaslap` elsewhere; 4 connections, 64-byte values,
//!   its default 90 % get / 10 % set mix, ASCII and `--binary`) against a `redis-server`
//!   (persistence off) and a `memcached` (one worker thread) the bench starts on free ports of
//!   127.0.0.1 and kills at the end, then against the guest: one vCPU under QEMU (TCG,
//!   microvm) on QEMU's user network, a free host port forwarded to its one port (it tells
//!   the protocols apart by the first byte). Each `-ferrix` row gives its rate as a ratio of
//!   the Linux row above it. Under TCG the guest is emulated, so the ratio measures emulation
//!   and slirp as much as ferrix: compare runs with each other, not with hardware. Every error
//!   a client reports is in its row: redis-benchmark's error replies (`-e`, which shows at
//!   most one a second, so a count of at least that many), memcaslap's get misses and any
//!   line it printed on stderr, a non-zero exit.
//! * Instructions (`bench_kv_icount`): the guest under `microvm-icount`, where a guest ns is
//!   one instruction; per GET and per SET of a 64-byte value over one TCP connection, RESP and
//!   memcached ASCII, and the UDP echo app's instructions per echoed frame as the yardstick
//!   (issue 12's goal: a 64-byte GET within 2x of it).

use crate::bench_guest::{GuestSpec, GuestVm, free_tcp_port};
use crate::bench_report::TextRow;
use crate::error::CliError;
use crate::qemu_run::{executable_exists, tied_command};
use crate::run::resolve_image;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Options of `ferrix bench kv`.
#[derive(Debug, Clone)]
pub struct KvBenchOptions {
    /// The kv app (name, crate directory or image).
    pub app: String,
    /// The UDP echo app measured as the yardstick.
    pub echo_app: String,
    /// Requests per throughput load (redis-benchmark `-n`, memcaslap `-x`).
    pub requests: u32,
    /// GETs (and SETs) per protocol in the instruction count.
    pub icount_ops: u32,
    pub qemu: String,
}

/// The programs the bench drives: (names tried, Debian package).
const TOOLS: [(&[&str], &str); 4] = [
    (&["redis-benchmark"], "redis-tools"),
    (&["redis-server"], "redis-server"),
    (&["memcached"], "memcached"),
    (&["memcaslap", "memaslap"], "libmemcached-tools"),
];

/// Each tool's binary (the first of its names on PATH), or the error naming its package.
fn find_tools() -> Result<Vec<&'static str>, CliError> {
    TOOLS
        .iter()
        .map(|(names, package)| {
            names
                .iter()
                .copied()
                .find(|n| executable_exists(n))
                .ok_or_else(|| CliError::ToolNotFound {
                    tool: names.join(" / "),
                    package,
                })
        })
        .collect()
}

/// How long one client run may take before it is killed (a guest that stopped answering).
const CLIENT_LIMIT: Duration = Duration::from_secs(300);

/// Runs `cmd` (output captured), killed after `limit`.
fn run_limited(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    // Read both pipes while waiting, so a chatty client never blocks on a full pipe.
    let pipe = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out = pipe(child.stdout.take().map(|p| Box::new(p) as _));
    let err = pipe(child.stderr.take().map(|p| Box::new(p) as _));
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not finish in {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A Linux server of the bench, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin argv` (tied to this thread's life) and waits, 10 s at most, until 127.0.0.1:`port`
/// accepts connections.
fn start_server(bin: &str, argv: &[String], port: u16) -> Result<Server, String> {
    let mut cmd = tied_command(bin, argv);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {bin}: {e}"))?;
    let mut server = Server(child);
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            let mut msg = String::new();
            if let Some(mut e) = server.0.stderr.take() {
                let _ = e.read_to_string(&mut msg);
            }
            return Err(format!("{bin} exited ({status}): {}", msg.trim()));
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("{bin} did not listen on 127.0.0.1:{port} in 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// One redis-benchmark test's result.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisResult {
    pub test: String,
    pub rps: f64,
    pub p50_ms: f64,
}

/// redis-benchmark's `--csv` lines (`"SET","526315.81","1.173","0.296","0.927",...`).
pub fn parse_redis_csv(text: &str) -> Vec<RedisResult> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
            Some(RedisResult {
                test: f.first()?.to_string(),
                rps: f.get(1)?.parse().ok()?,
                p50_ms: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

/// redis-benchmark's `-e` lines: error replies it showed (at most one a second).
fn redis_error_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("Error from server"))
        .count()
}

/// What one memcaslap run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SlapResult {
    pub ops: u64,
    pub tps: f64,
    pub get_misses: u64,
}

/// memcaslap's summary (`get_misses: 0` ... `Run time: 0.6s Ops: 20000 TPS: 34967 ...`).
pub fn parse_slap(text: &str) -> Option<SlapResult> {
    let field = |line: &str, name: &str| -> Option<String> {
        let mut w = line.split_whitespace();
        w.position(|x| x == name)?;
        w.next().map(str::to_string)
    };
    let (mut ops, mut tps, mut misses) = (None, None, None);
    for l in text.lines() {
        if l.starts_with("Run time:") {
            ops = field(l, "Ops:").and_then(|v| v.parse().ok());
            tps = field(l, "TPS:").and_then(|v| v.parse().ok());
        } else if let Some(v) = l.strip_prefix("get_misses:") {
            misses = v.trim().parse().ok();
        }
    }
    Some(SlapResult {
        ops: ops?,
        tps: tps?,
        get_misses: misses?,
    })
}

/// The throughput rows of one server: (test, requests/s, the row's text).
type Measured = Vec<(&'static str, Result<(f64, String), String>)>;

/// The redis-benchmark load against 127.0.0.1:`port`: SET and GET.
fn redis_load(bin: &str, port: u16, n: u32) -> Measured {
    let mut cmd = Command::new(bin);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-P", "16", "-n", &n.to_string()])
        .args(["-q", "--csv", "-e"]);
    let tests = [("SET", "resp-set"), ("GET", "resp-get")];
    let out = match run_limited(cmd, CLIENT_LIMIT) {
        Ok(o) => o,
        Err(e) => return tests.iter().map(|(_, c)| (*c, Err(e.clone()))).collect(),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let results = parse_redis_csv(&stdout);
    let errors = redis_error_lines(&stdout);
    tests
        .iter()
        .map(|(test, config)| {
            let r = results.iter().find(|r| r.test == *test).ok_or_else(|| {
                format!(
                    "redis-benchmark ({}) printed no {test} result: {} {}",
                    out.status,
                    stdout.trim(),
                    stderr.trim()
                )
            });
            let r = r.and_then(|r| {
                let mut text = format!(
                    "{:.0} req/s  p50 {:.3} ms  ({n} requests, -P 16, {errors} error replies shown",
                    r.rps, r.p50_ms
                );
                if !out.status.success() {
                    text += &format!(", redis-benchmark exited {}", out.status);
                }
                text.push(')');
                Ok((r.rps, text))
            });
            (*config, r)
        })
        .collect()
}

/// The memcaslap load against 127.0.0.1:`port`, ASCII or binary.
fn slap_load(bin: &str, port: u16, n: u32, binary: bool) -> Result<(f64, String), String> {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--servers=127.0.0.1:{port}"))
        .args(["--threads=1", "--concurrency=4", "--fixed_size=64"])
        .arg(format!("--execute_number={n}"));
    if binary {
        cmd.arg("--binary");
    }
    let out = run_limited(cmd, CLIENT_LIMIT)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r = parse_slap(&stdout).ok_or_else(|| {
        format!(
            "{bin} ({}) printed no summary: {} {}",
            out.status,
            stdout.trim(),
            stderr.trim()
        )
    })?;
    let err_lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut text = format!(
        "{:.0} ops/s  (90% get, 64 B; {} of {n} ops, {} get misses, {} stderr lines",
        r.tps,
        r.ops,
        r.get_misses,
        err_lines.len()
    );
    if let Some(first) = err_lines.first() {
        text += &format!(": {first:?}");
    }
    if !out.status.success() {
        text += &format!(", exited {}", out.status);
    }
    text.push(')');
    Ok((r.tps, text))
}

/// Every load against one server on 127.0.0.1: redis-benchmark on `redis`, memcaslap ASCII
/// and binary on `memcached` (the guest serves both on one port).
fn loads(tools: &[&str], redis: u16, memcached: u16, n: u32) -> Measured {
    let mut m = redis_load(tools[0], redis, n);
    m.push(("mc-ascii", slap_load(tools[3], memcached, n, false)));
    m.push(("mc-binary", slap_load(tools[3], memcached, n, true)));
    m
}

/// The Linux servers, started, loaded and killed.
fn linux_loads(tools: &[&str], n: u32) -> Result<Measured, String> {
    let e = |e: std::io::Error| e.to_string();
    let (rp, mp) = (free_tcp_port().map_err(e)?, free_tcp_port().map_err(e)?);
    let redis = start_server(
        tools[1],
        &[
            "--port".into(),
            rp.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ],
        rp,
    )?;
    // `-u root` only matters (and is required) when run as root; -U 0: no UDP.
    let memcached = start_server(
        tools[2],
        &[
            "-l",
            "127.0.0.1",
            "-p",
            &mp.to_string(),
            "-U",
            "0",
            "-t",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["-u".into(), "root".into()])
        .collect::<Vec<_>>(),
        mp,
    )?;
    let m = loads(tools, rp, mp, n);
    drop((redis, memcached));
    Ok(m)
}

/// The guest (one vCPU, TCG) with a forwarded port, loaded, then left to exit when idle.
fn guest_loads(tools: &[&str], image: &std::path::Path, o: &KvBenchOptions) -> Measured {
    let spec = GuestSpec {
        image,
        qemu: &o.qemu,
        cpus: 1,
        icount: false,
        tcp: true,
        guest_port: 6379,
        args: vec!["idle-exit-ms=3000".into()],
        banner: "kv: listening",
    };
    let run = GuestVm::boot(&spec).and_then(|guest| {
        let m = loads(tools, guest.port, guest.port, o.requests);
        guest.finish().map(|_| m)
    });
    run.unwrap_or_else(|e| {
        ["resp-set", "resp-get", "mc-ascii", "mc-binary"]
            .into_iter()
            .map(|c| (c, Err(e.clone())))
            .collect()
    })
}

/// Row names of the two sides.
fn names(test: &str) -> (&'static str, &'static str) {
    match test {
        "resp-set" => ("resp-set-linux", "resp-set-ferrix"),
        "resp-get" => ("resp-get-linux", "resp-get-ferrix"),
        "mc-ascii" => ("mc-ascii-linux", "mc-ascii-ferrix"),
        _ => ("mc-binary-linux", "mc-binary-ferrix"),
    }
}

/// Runs the benchmark; progress goes to `progress`.
pub fn bench_kv(
    o: &KvBenchOptions,
    progress: &mut dyn std::io::Write,
) -> Result<Vec<TextRow>, CliError> {
    if o.requests == 0 || o.icount_ops == 0 {
        return Err(CliError::Usage(
            "--requests and --icount-ops must be at least 1".into(),
        ));
    }
    let tools = find_tools()?;
    let image = resolve_image(&o.app)?;
    let _ = writeln!(
        progress,
        "bench: Linux redis-server and memcached on 127.0.0.1 ({}, {})",
        tools[0], tools[3]
    );
    let linux = linux_loads(&tools, o.requests).map_err(CliError::Bench)?;
    let _ = writeln!(progress, "bench: ferrix kv under QEMU (TCG, slirp, 1 vCPU)");
    let guest = guest_loads(&tools, &image, o);
    let mut rows = Vec::new();
    for ((test, l), (_, g)) in linux.into_iter().zip(guest) {
        let (lname, gname) = names(test);
        let base = l.as_ref().map(|(x, _)| *x).unwrap_or(0.0);
        rows.push(TextRow {
            config: lname,
            outcome: l.map(|(_, s)| s),
        });
        rows.push(TextRow {
            config: gname,
            outcome: g.map(|(x, s)| {
                let ratio = if base > 0.0 { x / base } else { 0.0 };
                format!("{s}  ({ratio:.3}x linux)")
            }),
        });
    }
    let _ = writeln!(
        progress,
        "bench: ferrix kv under QEMU -icount ({} GETs and SETs per protocol)",
        o.icount_ops
    );
    rows.extend(crate::bench_kv_icount::rows(&image, o));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_benchmark_csv() {
        let t = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\"\n\
                 \"SET\",\"526315.81\",\"1.173\",\"0.296\",\"0.927\",\"3.663\"\n\
                 Error from server: ERR nope\n\
                 \"GET\",\"689655.19\",\"0.881\",\"0.248\",\"0.847\",\"1.407\"\n";
        let r = parse_redis_csv(t);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!((r[0].test.as_str(), r[0].rps), ("SET", 526315.81));
        assert_eq!((r[1].test.as_str(), r[1].p50_ms), ("GET", 0.847));
        assert_eq!(redis_error_lines(t), 1);
    }

    #[test]
    fn parses_memcaslap_summary() {
        let t = "servers: 127.0.0.1:1\ncmd_get: 18000\ncmd_set: 2000\nget_misses: 3\n\
                 written_bytes: 1546000\n\nRun time: 0.6s Ops: 20000 TPS: 34967 Net_rate: 7.0M/s\n";
        assert_eq!(
            parse_slap(t),
            Some(SlapResult {
                ops: 20000,
                tps: 34967.0,
                get_misses: 3
            })
        );
        assert_eq!(parse_slap("servers: 127.0.0.1:1\n"), None);
    }

    #[test]
    fn a_client_that_hangs_is_killed() {
        let mut c = Command::new("sleep");
        c.arg("30");
        let e = run_limited(c, Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        let mut c = Command::new("echo");
        c.arg("hi");
        let o = run_limited(c, Duration::from_secs(10)).unwrap();
        assert_eq!(o.stdout, b"hi\n");
    }
}
