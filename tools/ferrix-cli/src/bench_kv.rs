//! `ferrix bench kv`: the kv guest (apps/kv) against Linux `redis-server` and `memcached`,
//! the same load in the same run, and the guest's instructions per GET and per SET.
//!
//! * Throughput: `redis-benchmark -t set,get -P 16 -n N --csv` (50 connections, its default)
//!   and libmemcached-tools' `memcaslap` (`memaslap` elsewhere; 4 connections, 64-byte values,
//!   its default 90 % get / 10 % set mix, ASCII and `--binary`) against a `redis-server`
//!   (persistence off) and a `memcached` (one worker thread, no UDP) the bench starts on free
//!   ports of 127.0.0.1 and kills at the end, and against the guest: one vCPU under QEMU (TCG,
//!   microvm) on QEMU's user network, a free host port forwarded to its one port (it tells
//!   the protocols apart by the first byte). [`ROUNDS`] rounds take turns (Linux, then a
//!   freshly booted guest that exits once idle, so no spinning vCPU shares the host while
//!   Linux is measured); a row reports its median round and lists every round's rate, and
//!   each `-ferrix` row gives its rate as a ratio of the Linux row above it. Under TCG the
//!   guest is emulated, so the ratio measures emulation and slirp as much as ferrix: compare
//!   runs with each other, not with hardware. Every error a client reports in any round is in
//!   its row (`errors: none` otherwise): redis-benchmark's error replies (`-e`, which shows at
//!   most one a second, so a lower bound), memcaslap's get misses, missing ops and stderr
//!   lines, a non-zero exit, a run that did not finish.
//! * Instructions (`bench_kv_icount`): the guest under `microvm-icount`, where a guest ns is
//!   one instruction; per GET and per SET of a 64-byte value over one TCP connection, RESP and
//!   memcached ASCII, and the UDP echo app's instructions per echoed frame as the yardstick
//!   (issue 12's goal: a 64-byte GET within 2x of it).

use crate::bench_guest::{GuestSpec, GuestVm, free_tcp_port};
use crate::bench_r2p2::ROUNDS;
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
    /// Skip the throughput rounds (and the Linux servers they need).
    pub icount_only: bool,
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

/// One round of one load: its rate and every error its client reported (shown in the row,
/// never dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub rate: f64,
    pub problems: Vec<String>,
}

/// The loads, in the order [`loads`] returns them: (row name prefix, unit, how it is run).
const TESTS: [(&str, &str); 4] = [
    ("resp-set", "req/s"),
    ("resp-get", "req/s"),
    ("mc-ascii", "ops/s"),
    ("mc-binary", "ops/s"),
];

/// The redis-benchmark load against 127.0.0.1:`port`: (SET, GET).
fn redis_load(bin: &str, port: u16, n: u32) -> [Result<Round, String>; 2] {
    let mut cmd = Command::new(bin);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-P", "16", "-n", &n.to_string()])
        .args(["-q", "--csv", "-e"]);
    let out = match run_limited(cmd, CLIENT_LIMIT) {
        Ok(o) => o,
        Err(e) => return [Err(e.clone()), Err(e)],
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let results = parse_redis_csv(&stdout);
    let mut problems = Vec::new();
    let errors = redis_error_lines(&stdout);
    if errors > 0 {
        problems.push(format!(
            "{errors} error replies shown (redis-benchmark -e shows at most one a second)"
        ));
    }
    if !out.status.success() {
        problems.push(format!("redis-benchmark exited {}", out.status));
    }
    ["SET", "GET"].map(|test| {
        let r = results.iter().find(|r| r.test == test).ok_or_else(|| {
            format!(
                "redis-benchmark ({}) printed no {test} result: {} {}",
                out.status,
                stdout.trim(),
                stderr.trim()
            )
        })?;
        Ok(Round {
            rate: r.rps,
            problems: problems.clone(),
        })
    })
}

/// The memcaslap load against 127.0.0.1:`port`, ASCII or binary.
fn slap_load(bin: &str, port: u16, n: u32, binary: bool) -> Result<Round, String> {
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
    let mut problems = Vec::new();
    if r.get_misses > 0 {
        problems.push(format!("{} get misses", r.get_misses));
    }
    if r.ops < u64::from(n) {
        problems.push(format!("only {} of {n} ops done", r.ops));
    }
    let err_lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if let Some(first) = err_lines.first() {
        problems.push(format!("{} lines on stderr: {first:?}", err_lines.len()));
    }
    if !out.status.success() {
        problems.push(format!("{bin} exited {}", out.status));
    }
    Ok(Round {
        rate: r.tps,
        problems,
    })
}

/// One round of every load (in [`TESTS`] order) against one server on 127.0.0.1:
/// redis-benchmark on `redis`, memcaslap ASCII and binary on `memcached` (the guest serves
/// both on one port).
fn loads(tools: &[&str], redis: u16, memcached: u16, n: u32) -> Vec<Result<Round, String>> {
    let mut m: Vec<_> = redis_load(tools[0], redis, n).into();
    m.push(slap_load(tools[3], memcached, n, false));
    m.push(slap_load(tools[3], memcached, n, true));
    m
}

/// Test `i`'s median round over `rounds`, with every round's rate and every problem any
/// round had: (median rate, the row's text), or the first error when no round ran.
fn median_row(
    rounds: &[Vec<Result<Round, String>>],
    i: usize,
    how: &str,
) -> Result<(f64, String), String> {
    let results: Vec<&Result<Round, String>> = rounds.iter().filter_map(|r| r.get(i)).collect();
    let mut rates: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|r| r.rate))
        .collect();
    if rates.is_empty() {
        return Err(results
            .iter()
            .find_map(|r| r.as_ref().err().cloned())
            .unwrap_or_else(|| "no round ran".into()));
    }
    let listed: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let mut problems = Vec::new();
    for (j, r) in results.iter().enumerate() {
        match r {
            Err(e) => problems.push(format!("round {}: {e}", j + 1)),
            Ok(r) => problems.extend(r.problems.iter().map(|p| format!("round {}: {p}", j + 1))),
        }
    }
    let errors = if problems.is_empty() {
        "none".to_string()
    } else {
        problems.join("; ")
    };
    let unit = TESTS.get(i).map_or("", |t| t.1);
    Ok((
        median,
        format!(
            "{median:.0} {unit}  (median of rounds {}; {how}; errors: {errors})",
            listed.join(", ")
        ),
    ))
}

/// The Linux servers, started on free ports of 127.0.0.1.
fn linux_servers(tools: &[&str]) -> Result<(Server, u16, Server, u16), String> {
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
    // -U 0: no UDP; `-u root` only matters (and is required) when run as root.
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
    Ok((redis, rp, memcached, mp))
}

/// One round against the guest: booted (one vCPU, TCG) with a forwarded port, loaded, and
/// left to exit once idle, so that it does not spin a host core while Linux is measured. A
/// guest that fails fails every load of the round.
fn guest_round(
    tools: &[&str],
    image: &std::path::Path,
    o: &KvBenchOptions,
) -> Vec<Result<Round, String>> {
    let run = GuestVm::boot(&GuestSpec {
        image,
        qemu: &o.qemu,
        cpus: 1,
        icount: false,
        tcp: true,
        guest_port: 6379,
        udp_port: None,
        args: vec![format!("idle-exit-ms={GUEST_IDLE_EXIT_MS}")],
        banner: "kv: listening",
    })
    .and_then(|guest| {
        let m = loads(tools, guest.port, guest.port, o.requests);
        guest.finish().map(|_| m)
    });
    run.unwrap_or_else(|e| TESTS.iter().map(|_| Err(e.clone())).collect())
}

/// The guest's `idle-exit-ms` in the throughput rounds: more than any gap between two loads
/// (starting a client), and the time each round waits for the VM to end.
const GUEST_IDLE_EXIT_MS: u32 = 1500;

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
    // The clients first: a missing one is named before anything is built.
    let tools = if o.icount_only {
        None
    } else {
        Some(find_tools()?)
    };
    let image = resolve_image(&o.app)?;
    let mut rows = Vec::new();
    if let Some(tools) = tools {
        rows = throughput_rows(o, &tools, &image, progress)?;
    }
    let _ = writeln!(
        progress,
        "bench: ferrix kv under QEMU -icount ({} GETs and SETs per protocol)",
        o.icount_ops
    );
    rows.extend(crate::bench_kv_icount::rows(&image, o));
    Ok(rows)
}

/// The throughput half: Linux servers and the guest under the same loads, as ratios.
fn throughput_rows(
    o: &KvBenchOptions,
    tools: &[&'static str],
    image: &std::path::Path,
    progress: &mut dyn std::io::Write,
) -> Result<Vec<TextRow>, CliError> {
    let _ = writeln!(
        progress,
        "bench: Linux redis-server and memcached on 127.0.0.1, ferrix kv under QEMU (TCG, slirp, 1 vCPU)"
    );
    let (redis, rp, memcached, mp) = linux_servers(tools).map_err(CliError::Bench)?;
    let (mut linux, mut ferrix) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let _ = writeln!(
            progress,
            "bench: round {round}/{ROUNDS}: Linux, then the guest"
        );
        linux.push(loads(tools, rp, mp, o.requests));
        ferrix.push(guest_round(tools, image, o));
    }
    drop((redis, memcached));
    let mut rows = Vec::new();
    for (i, (test, _)) in TESTS.iter().enumerate() {
        let how = if i < 2 {
            format!("{} requests, -P 16, 50 connections", o.requests)
        } else {
            format!("{} ops, 90% get, 64 B values, 4 connections", o.requests)
        };
        let l = median_row(&linux, i, &how);
        let base = l.as_ref().map_or(0.0, |(x, _)| *x);
        let g = median_row(&ferrix, i, &how);
        rows.push(TextRow {
            config: names(test).0,
            outcome: l.map(|(_, s)| s),
        });
        rows.push(TextRow {
            config: names(test).1,
            outcome: g.map(|(x, s)| {
                let ratio = if base > 0.0 { x / base } else { 0.0 };
                format!("{s}  ({ratio:.3}x linux)")
            }),
        });
    }
    Ok(rows)
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
    fn median_round_keeps_every_problem() {
        let ok = |rate: f64, p: &[&str]| {
            Ok(Round {
                rate,
                problems: p.iter().map(|s| s.to_string()).collect(),
            })
        };
        let rounds = vec![
            vec![ok(30.0, &[])],
            vec![ok(10.0, &["2 get misses"])],
            vec![Err("timeout".to_string())],
        ];
        let (m, text) = median_row(&rounds, 0, "x").unwrap();
        assert_eq!(m, 30.0);
        assert!(
            text.starts_with("30 req/s  (median of rounds 30, 10; x; errors: "),
            "{text}"
        );
        assert!(
            text.contains("round 2: 2 get misses; round 3: timeout"),
            "{text}"
        );
        let clean = vec![vec![ok(5.0, &[])]];
        assert!(
            median_row(&clean, 0, "x")
                .unwrap()
                .1
                .contains("errors: none")
        );
        let failed: Vec<Vec<Result<Round, String>>> = vec![vec![Err("down".into())]];
        assert_eq!(median_row(&failed, 0, "x"), Err("down".into()));
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
