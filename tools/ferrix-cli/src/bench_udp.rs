//! `ferrix bench udp-echo`: the UDP echo path, measured several ways in one run.
//!
//! * `linux`: a Linux UDP echo server (a thread of this process) on 127.0.0.1: the baseline.
//! * `ferrix-qemu`: `apps/udp-echo` under QEMU (TCG, microvm) on QEMU's user network, the
//!   host port forwarded from 127.0.0.1 (no root needed). The same closed-loop client (one
//!   request outstanding) measures requests/s and p50/p99 latency of both; the report gives the
//!   ratio ferrix / Linux. Under TCG the guest is emulated, so the ratio mostly measures
//!   emulation and slirp, not ferrix: compare runs of the same kind, not absolute numbers.
//! * `ferrix-icount`: the same app under `-icount shift=0`, where one guest nanosecond is one
//!   guest instruction: the guest reports the instructions it spends per received frame in its
//!   poll loop (driver RX, ferrix-net, in-place reply, driver TX and the queue notification).
//!   Deterministic; the target is <= 1,000 per request/reply. On slirp the device
//!   offers no checksum offload, so the guest verifies and computes UDP checksums itself.
//! * With `--tap` (root): `linux-tap` and `ferrix-tap` through a TAP device in a network
//!   namespace, and `ferrix-tap-icount`: the per-frame instructions on TAP, where virtio-net
//!   offers checksum offload (VIRTIO_NET_F_CSUM / GUEST_CSUM) as a deployment would have.

use crate::bench_guest::GuestVm;
use crate::bench_report::LatencyRows;
use crate::error::CliError;
use crate::run::resolve_image;
use ferrix_latplot::DistSeries;
use ferrix_latplot::progress::Steps;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Options of `ferrix bench udp-echo`.
#[derive(Debug, Clone)]
pub struct UdpBenchOptions {
    pub app: String,
    pub requests: u32,
    /// Also measure through TAP in a namespace (root).
    pub tap: bool,
    pub qemu: String,
}

/// Latency statistics of one closed-loop run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopStats {
    pub requests: u32,
    pub lost: u32,
    pub per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// The value at quantile `q` of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Sends `n` requests one at a time to `dst` (each waits for its echo, 200 ms timeout) after
/// `warmup` unmeasured ones.
pub fn closed_loop(dst: &str, n: u32, warmup: u32) -> std::io::Result<LoopStats> {
    closed_loop_samples(dst, n, warmup).map(|(s, _)| s)
}

/// [`closed_loop`], and the latency of every answered request, µs, sorted.
pub fn closed_loop_samples(
    dst: &str,
    n: u32,
    warmup: u32,
) -> std::io::Result<(LoopStats, Vec<f64>)> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    s.connect(dst)?;
    let mut buf = [0u8; 256];
    let mut lat = Vec::with_capacity(n as usize);
    let mut lost = 0;
    let start = Instant::now();
    for i in 0..warmup + n {
        if i == warmup {
            lat.clear();
        }
        let msg = i.to_le_bytes();
        let t = Instant::now();
        s.send(&msg)?;
        loop {
            match s.recv(&mut buf) {
                Ok(k) if buf[..k] == msg => {
                    lat.push(t.elapsed());
                    break;
                }
                Ok(_) => continue, // a late echo of an earlier request
                Err(_) => {
                    lost += u32::from(i >= warmup);
                    break;
                }
            }
        }
    }
    Ok(finish_loop(n, lost, start.elapsed(), lat))
}

/// The statistics of a closed loop of `n` requests over `total` with latencies `lat` (`lost`
/// unanswered), and the latencies in µs, sorted.
pub(crate) fn finish_loop(
    n: u32,
    lost: u32,
    total: Duration,
    mut lat: Vec<Duration>,
) -> (LoopStats, Vec<f64>) {
    lat.sort();
    let stats = LoopStats {
        requests: n,
        lost,
        per_sec: f64::from(n) / total.as_secs_f64().max(1e-9),
        p50_us: quantile(&lat, 0.5).as_secs_f64() * 1e6,
        p99_us: quantile(&lat, 0.99).as_secs_f64() * 1e6,
    };
    (stats, lat.iter().map(|d| d.as_secs_f64() * 1e6).collect())
}

/// Serves UDP echo on `bind` for `count` datagrams (or until 10 s pass without one).
pub fn serve_echo(bind: &str, count: u32) -> std::io::Result<()> {
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 2048];
    for _ in 0..count {
        let (k, from) = s.recv_from(&mut buf)?;
        s.send_to(&buf[..k], from)?;
    }
    Ok(())
}

/// One-line form of [`LoopStats`] passed between the bench and its namespaced client.
pub fn encode_loop(s: &LoopStats) -> String {
    format!(
        "loop {} {} {} {} {}",
        s.requests, s.lost, s.per_sec, s.p50_us, s.p99_us
    )
}

/// Parses [`encode_loop`]'s line.
pub fn decode_loop(line: &str) -> Option<LoopStats> {
    let mut it = line.strip_prefix("loop ")?.split(' ');
    Some(LoopStats {
        requests: it.next()?.parse().ok()?,
        lost: it.next()?.parse().ok()?,
        per_sec: it.next()?.parse().ok()?,
        p50_us: it.next()?.parse().ok()?,
        p99_us: it.next()?.parse().ok()?,
    })
}

/// A Linux UDP echo server on 127.0.0.1 that stops after `n` datagrams; returns its address.
pub(crate) fn linux_echo_server(n: u32) -> std::io::Result<(String, std::thread::JoinHandle<()>)> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    let addr = s.local_addr()?.to_string();
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            match s.recv_from(&mut buf) {
                Ok((k, from)) => {
                    let _ = s.send_to(&buf[..k], from);
                }
                Err(_) => break,
            }
        }
    });
    Ok((addr, h))
}

/// A free UDP port on 127.0.0.1.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One row of the report.
pub type UdpRow = crate::bench_report::TextRow;

/// Runs the benchmark; progress goes to `progress` (and a bar, on a terminal). The `linux`
/// and `ferrix-qemu` rows come with their latency samples (the TAP rows, measured by a client
/// in the namespace, without).
pub fn bench_udp_echo(
    o: &UdpBenchOptions,
    progress: &mut dyn std::io::Write,
) -> Result<LatencyRows, CliError> {
    let image = resolve_image(&o.app)?;
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let warmup = (o.requests / 10).max(10);
    let mut steps = Steps::new(if o.tap { 4 } else { 3 }, progress);

    steps.step("bench: linux echo server");
    let io = |what: &str| {
        let what = what.to_string();
        move |source| CliError::Io { what, source }
    };
    let (addr, h) =
        linux_echo_server(o.requests + warmup).map_err(io("starting the Linux echo server"))?;
    let (linux, samples) = closed_loop_samples(&addr, o.requests, warmup)
        .map_err(io("measuring the Linux echo server"))?;
    let _ = h.join();
    series.push(DistSeries::new("linux", samples));
    rows.push(UdpRow {
        config: "linux",
        outcome: Ok(fmt_loop(&linux)),
    });

    steps.step("bench: ferrix udp-echo under QEMU (TCG, slirp)");
    let ferrix = run_guest(&image, &o.qemu, o.requests, false, |port| {
        closed_loop_samples(&format!("127.0.0.1:{port}"), o.requests, warmup)
    });
    match ferrix {
        Ok(((stats, samples), _)) => {
            series.push(DistSeries::new("ferrix-qemu", samples));
            let ratio = if linux.per_sec > 0.0 {
                stats.per_sec / linux.per_sec
            } else {
                0.0
            };
            rows.push(UdpRow {
                config: "ferrix-qemu",
                outcome: Ok(format!(
                    "{}  ({:.3}x linux requests/s)",
                    fmt_loop(&stats),
                    ratio
                )),
            });
        }
        Err(e) => rows.push(UdpRow {
            config: "ferrix-qemu",
            outcome: Err(e),
        }),
    }

    if o.tap {
        steps.step("bench: through TAP in a namespace (Linux echo, then the guest)");
        match tap_bench(o, &image, warmup) {
            Ok((linux_tap, guest_tap, icount_tap)) => {
                let ratio = if linux_tap.per_sec > 0.0 {
                    guest_tap.per_sec / linux_tap.per_sec
                } else {
                    0.0
                };
                rows.push(UdpRow {
                    config: "linux-tap",
                    outcome: Ok(fmt_loop(&linux_tap)),
                });
                rows.push(UdpRow {
                    config: "ferrix-tap",
                    outcome: Ok(format!(
                        "{}  ({ratio:.3}x linux-tap requests/s)",
                        fmt_loop(&guest_tap)
                    )),
                });
                rows.push(UdpRow {
                    config: "ferrix-tap-icount",
                    outcome: icount_tap.map(|n| {
                        format!(
                            "{n} guest instructions per received frame (TAP: checksums offloaded to the host)"
                        )
                    }),
                });
            }
            Err(e) => rows.push(UdpRow {
                config: "ferrix-tap",
                outcome: Err(e),
            }),
        }
    }

    steps.step("bench: ferrix udp-echo under QEMU -icount");
    rows.push(UdpRow {
        config: "ferrix-icount",
        outcome: icount_per_frame(&image, &o.qemu, o.requests).map(|n| {
            format!("{n} guest instructions per received frame (slirp: checksums in software)")
        }),
    });
    Ok(LatencyRows { rows, series })
}

/// Guest instructions per received frame of the echo app `image` under `microvm-icount` on
/// slirp, over `requests` echoes after a warm-up (also `bench kv`'s yardstick).
pub(crate) fn icount_per_frame(
    image: &std::path::Path,
    qemu: &str,
    requests: u32,
) -> Result<u64, String> {
    let warmup = (requests / 10).max(10);
    let (_, console) = run_guest(image, qemu, requests, true, |port| {
        closed_loop(&format!("127.0.0.1:{port}"), requests, warmup)
    })?;
    per_frame(&console).ok_or_else(|| format!("the guest printed no per-frame figure:\n{console}"))
}

/// Boots the echo app with a forwarded port, runs `client` against it, returns the client's
/// result and the console.
fn run_guest<T>(
    image: &std::path::Path,
    qemu: &str,
    requests: u32,
    icount: bool,
    client: impl FnOnce(u16) -> std::io::Result<T>,
) -> Result<(T, String), String> {
    let warmup = (requests / 10).max(10);
    let guest = GuestVm::start(
        image,
        qemu,
        icount,
        7,
        requests + warmup,
        "udp-echo: serving",
    )?;
    let stats = client(guest.port).map_err(|e| e.to_string())?;
    top_up(
        TOP_UP_EVERY,
        || guest.is_finished(),
        || {
            if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
                let _ = s.send_to(b"top-up", ("127.0.0.1", guest.port));
            }
        },
    );
    Ok((stats, guest.finish()?))
}

/// How long [`top_up`] gives the VM to end before each extra datagram.
const TOP_UP_EVERY: Duration = Duration::from_millis(50);

/// After the client: a request lost on the way never counted towards the guest's
/// `exit-after`, so while the VM runs on, `send` one more datagram (at most 100, `every`
/// apart) instead of leaving the guest up until its timeout.
fn top_up(every: Duration, mut finished: impl FnMut() -> bool, mut send: impl FnMut()) {
    for _ in 0..100 {
        std::thread::sleep(every);
        if finished() {
            return;
        }
        send();
    }
}

/// A network namespace deleted on drop.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// Runs `ip ARGS`; its stderr as the error.
pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e} (install iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespace `ferrix-bench-<pid>` with TAP `fb0` (host side 10.78.0.1/24, guest 10.78.0.2):
/// a Linux echo server on 10.78.0.1 and then the guest are measured by the same client, all
/// inside the namespace (this very binary, run with `ip netns exec`).
fn tap_bench(
    o: &UdpBenchOptions,
    image: &std::path::Path,
    warmup: u32,
) -> Result<(LoopStats, LoopStats, Result<u64, String>), String> {
    let ns = Namespace(format!("ferrix-bench-{}", std::process::id()));
    ip(&["netns", "add", &ns.0])?;
    let inns = |args: &[&str]| -> Result<(), String> {
        let mut v = vec!["netns", "exec", &ns.0, "ip"];
        v.extend_from_slice(args);
        ip(&v)
    };
    inns(&["link", "set", "lo", "up"])?;
    inns(&["tuntap", "add", "dev", "fb0", "mode", "tap"])?;
    inns(&["addr", "add", "10.78.0.1/24", "dev", "fb0"])?;
    inns(&["link", "set", "fb0", "up"])?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let me = me.to_string_lossy().into_owned();
    let total = (o.requests + warmup).to_string();
    let (req, wu) = (o.requests.to_string(), warmup.to_string());
    let exec = |args: &[&str]| {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &ns.0, &me]).args(args);
        c
    };
    let client = |dst: &str| -> Result<LoopStats, String> {
        let out = exec(&["bench", "udp-client", dst, &req, &wu])
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(decode_loop)
            .ok_or_else(|| format!("client failed: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let mut server = exec(&["bench", "udp-server", "10.78.0.1:7007", &total])
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(200));
    let linux = client("10.78.0.1:7007");
    let _ = server.kill();
    let _ = server.wait();
    let linux = linux?;
    let guest = tap_guest(&ns.0, &exec, image, &total, false, &client).map(|(l, _)| l);
    // The same path under -icount: instructions per frame with the offloads a TAP backend
    // gives virtio-net (checksums left to the host), which slirp does not.
    let icount = tap_guest(&ns.0, &exec, image, &total, true, &client).and_then(|(_, console)| {
        per_frame(&console)
            .ok_or_else(|| format!("the guest printed no per-frame figure:\n{console}"))
    });
    Ok((linux, guest?, icount))
}

/// Boots the echo guest on the namespace's TAP (`icount`: under `microvm-icount`), runs
/// `client` against it once ping answers, returns the client's result and the console.
fn tap_guest(
    ns: &str,
    exec: &dyn Fn(&[&str]) -> std::process::Command,
    image: &std::path::Path,
    total: &str,
    icount: bool,
    client: &dyn Fn(&str) -> Result<LoopStats, String>,
) -> Result<(LoopStats, String), String> {
    let exit_after = format!("exit-after={total}");
    let image = image.to_string_lossy();
    let mut args = vec![
        "run",
        &image,
        "--cpus",
        "1",
        "--net",
        "tap:fb0",
        "--timeout",
        "300",
        "--stats",
    ];
    if icount {
        args.extend(["--profile", "microvm-icount"]);
    }
    args.extend(["--", "ferrix.ip=10.78.0.2/24", &exit_after]);
    let mut vm = exec(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = vm.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = std::io::Read::read_to_string(out, &mut text);
        }
        text
    });
    // Wait for the guest: ping answers once its stack runs.
    let up = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-c",
            "1",
            "-i",
            "0.2",
            "-w",
            "60",
            "10.78.0.2",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !up.status.success() {
        let _ = vm.kill();
        let _ = vm.wait();
        return Err("the guest did not answer ping within 60 s".into());
    }
    let stats = client("10.78.0.2:7");
    if stats.is_err() {
        let _ = vm.kill();
    } else {
        top_up(
            TOP_UP_EVERY,
            || !matches!(vm.try_wait(), Ok(None)),
            || {
                let _ = exec(&["bench", "udp-client", "10.78.0.2:7", "1", "0"]).output();
            },
        );
    }
    let _ = vm.wait();
    let console = reader.join().unwrap_or_default();
    Ok((stats?, console))
}

/// The guest's "N ns per received frame" figure.
pub fn per_frame(console: &str) -> Option<u64> {
    console.lines().find_map(|l| {
        l.split(", ")
            .nth(1)?
            .strip_suffix(" ns per received frame in poll")?
            .parse()
            .ok()
    })
}

pub(crate) fn fmt_loop(s: &LoopStats) -> String {
    format!(
        "{:.0} req/s  p50 {:.1} us  p99 {:.1} us  ({} requests, {} lost)",
        s.per_sec, s.p50_us, s.p99_us, s.requests, s.lost
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_up_sends_until_the_vm_ends_and_no_longer() {
        let sent = std::cell::Cell::new(0);
        // The VM ends after the third extra datagram.
        top_up(
            Duration::ZERO,
            || sent.get() >= 3,
            || sent.set(sent.get() + 1),
        );
        assert_eq!(sent.get(), 3);
        // A VM that never ends gets at most 100.
        let sent = std::cell::Cell::new(0);
        top_up(Duration::ZERO, || false, || sent.set(sent.get() + 1));
        assert_eq!(sent.get(), 100);
        // A VM that ended gets none.
        let sent = std::cell::Cell::new(0);
        top_up(Duration::ZERO, || true, || sent.set(sent.get() + 1));
        assert_eq!(sent.get(), 0);
    }

    #[test]
    fn quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(51));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn loop_stats_round_trip() {
        let s = LoopStats {
            requests: 10,
            lost: 1,
            per_sec: 1234.5,
            p50_us: 3.25,
            p99_us: 9.5,
        };
        assert_eq!(decode_loop(&encode_loop(&s)), Some(s));
        assert_eq!(decode_loop("loop 1 2"), None);
    }

    #[test]
    fn parses_the_guest_figure() {
        let c = "x\nudp-echo: 110 echoes, 812 ns per received frame in poll\n";
        assert_eq!(per_frame(c), Some(812));
        assert_eq!(per_frame("udp-echo: 3 echoes"), None);
    }

    #[test]
    fn closed_loop_against_linux_echo() {
        let (addr, h) = linux_echo_server(60).unwrap();
        let s = closed_loop(&addr, 50, 10).unwrap();
        h.join().unwrap();
        assert_eq!((s.requests, s.lost), (50, 0));
        assert!(s.p50_us <= s.p99_us && s.per_sec > 0.0);
    }

    #[test]
    fn the_linux_row_plotted_and_tabled() {
        use ferrix_latplot::inspect;
        let (addr, h) = linux_echo_server(210).unwrap();
        let (s, samples) = closed_loop_samples(&addr, 200, 10).unwrap();
        h.join().unwrap();
        let dir = std::env::temp_dir().join(format!("ferrix-udp-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = crate::bench_plots::PlotFiles {
            png: Some(dir.join("u.png")),
            csv: Some(dir.join("u.csv")),
        };
        let series = [DistSeries::new("linux", samples)];
        files.distributions("udp echo", &series).unwrap();
        let text = std::fs::read_to_string(dir.join("u.csv")).unwrap();
        let rows = inspect::dist_rows(&text).unwrap();
        assert_eq!(
            inspect::check_series(&rows, "linux"),
            Ok(200 - s.lost as usize)
        );
        // The CSV's p50 and p99 are the table's.
        for (pct, want) in [(50.0, s.p50_us), (99.0, s.p99_us)] {
            let got = rows
                .iter()
                .find(|r| r.percentile == pct)
                .unwrap()
                .latency_us;
            assert!((got - want).abs() < 0.001, "p{pct}: {got} vs {want}");
        }
        let png = inspect::png(&dir.join("u.png")).unwrap();
        assert_eq!((png.width, png.height), (800, 500));
        assert!(png.has(ferrix_latplot::color(0)) && png.ink() > 0.005);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
