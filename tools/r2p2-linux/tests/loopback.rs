//! `r2p2-client` against `r2p2-server` on 127.0.0.1: single- and multi-packet echoes, and the
//! synthetic mode.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the server when the test ends, also on failure.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server on a free loopback port; returns it and its address.
fn server(extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_r2p2-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start r2p2-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("r2p2-server: listening on ")
        .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
        .to_string();
    (Server(child), addr)
}

fn client(addr: &str, args: &[&str]) -> String {
    common::succeeded(&client_output(addr, args))
}

fn client_output(addr: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_r2p2-client"))
        .args([
            "--server",
            addr,
            "--bind",
            "127.0.0.1:0",
            "--timeout-ms",
            "2000",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn echo_single_and_multi_packet() {
    let (_s, addr) = server(&[]);
    // Reference mode (no SACK): one request at a time, so bursts of multi-packet messages do
    // not overflow the default socket receive buffers (real loss on a busy machine).
    for (size, depth) in [
        ("0", "4"),
        ("64", "4"),
        ("1464", "1"),
        ("1465", "1"),
        ("5000", "1"),
        ("65000", "1"),
    ] {
        let out = client(&addr, &["-n", "50", "--size", size, "--depth", depth]);
        assert!(
            out.contains("ok 50 timeout 0 error 0 mismatch 0"),
            "{size}: {out}"
        );
        assert!(out.contains("p99.9"), "{out}");
    }
}

#[test]
fn sack_lets_bursts_of_large_requests_through() {
    let (_s, addr) = server(&["--sack"]);
    let out = client(
        &addr,
        &["-n", "50", "--size", "65000", "--depth", "4", "--sack"],
    );
    assert!(out.contains("ok 50 timeout 0"), "{out}");
}

#[test]
fn synthetic_spins_and_replies_with_size() {
    let (_s, addr) = server(&["--synthetic-reply", "3000"]);
    let out = client(
        &addr,
        &["-n", "20", "--size", "16", "--service-ns", "20000"],
    );
    assert!(out.contains("ok 20 "), "{out}");
}

#[test]
fn bad_argument_is_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_r2p2-server"))
        .args(["--listen", "203.0.113.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("r2p2-server: cannot bind UDP"), "{err}");
}

#[test]
fn batch_and_poll_flags() {
    let (_s, addr) = server(&["--batch", "1", "--poll", "block"]);
    for size in ["64", "5000"] {
        let out = client(
            &addr,
            &[
                "-n",
                "30",
                "--size",
                size,
                "--batch",
                "32",
                "--poll",
                "busy",
                "--spin-us",
                "10",
            ],
        );
        assert!(
            out.contains("ok 30 timeout 0 error 0 mismatch 0"),
            "{size}: {out}"
        );
    }
    for bad in ["0", "1025"] {
        let out = Command::new(env!("CARGO_BIN_EXE_r2p2-client"))
            .args(["--batch", bad])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("batch size must be 1..=1024"), "{err}");
    }
}

#[test]
fn server_reports_its_batching_counters() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_r2p2-server"))
        .args(["--listen", "127.0.0.1:0", "--count", "10"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start r2p2-server");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("r2p2-server: listening on ")
        .unwrap()
        .to_string();
    client(&addr, &["-n", "10"]);
    let mut last = String::new();
    out.read_line(&mut last).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        last.starts_with("r2p2-server: 10 requests, 0 dropped malformed; rx 10 datagrams in "),
        "{last}"
    );
    assert!(last.contains("tx 10 datagrams in "), "{last}");
}

#[test]
fn plot_and_csv_of_the_run() {
    use ferrix_latplot::inspect;
    let dir = std::env::temp_dir().join(format!("r2p2-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, csv) = (dir.join("lat.png"), dir.join("lat.csv"));
    let (_s, addr) = server(&[]);
    let out = client(
        &addr,
        &[
            "-n",
            "300",
            "--depth",
            "2",
            "--plot",
            png.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    let rows = inspect::dist_rows(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    let series = format!("64 B depth 2 to {addr}");
    assert_eq!(inspect::check_series(&rows, &series), Ok(300), "{rows:?}");
    // The CSV's percentiles are the summary line's (printed to 0.1 µs).
    for (key, pct) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)] {
        let row = rows.iter().find(|r| r.percentile == pct).unwrap();
        let printed: f64 = common::field(&out, key);
        assert!(
            (row.latency_us - printed).abs() <= 0.051,
            "{key}: {row:?} vs {out}"
        );
    }
    let p = inspect::png(&png).unwrap();
    assert_eq!((p.width, p.height), (800, 500));
    assert!(
        p.colours.len() > 4 && p.ink() > 0.005,
        "{} colours, ink {}",
        p.colours.len(),
        p.ink()
    );
    assert!(p.has(ferrix_latplot::color(0)), "the curve");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_plot_fails_in_one_line() {
    let (_s, addr) = server(&[]);
    let out = client_output(&addr, &["-n", "5", "--plot", "/nonexistent-dir/lat.png"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("r2p2-client: cannot write /nonexistent-dir/lat.png"),
        "{err}"
    );
}
