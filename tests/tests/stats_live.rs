//! Live statistics (`ferrix run --stats-json / --stats-live`): a udp-echo client VM pings a
//! udp-echo server VM (QEMU: a stream link; shim: its switch) and pushes a record every
//! interval; the series arrives whole, at the interval by the guest's clock, and its final
//! record holds exactly the counters `--stats` prints at exit. A pseudo-terminal (`script`)
//! shows the redrawn table; a pipe shows nothing extra.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");
/// The guest's record interval in these tests.
const INTERVAL_MS: u64 = 10;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a udp-echo server VM on `net_a` and a client VM on `net_b` with `--stats` and
/// `--stats-json json`; returns the client's console.
fn client_with_stats(vmm: &str, net_a: &str, net_b: &str, json: &Path) -> String {
    let image = ferrix_tests::image("udp-echo");
    let start = |net: &str, mac: &str, extra: &[&str], args: &[&str]| {
        Command::new(FERRIX)
            .args(["run", image.to_str().unwrap(), "--vmm", vmm, "--cpus", "1"])
            .args(["--net", net, "--mac", mac, "--timeout", "90"])
            .args(extra)
            .arg("--")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a VM")
    };
    let mut a = start(net_a, "52:54:00:89:00:01", &[], &["ferrix.ip=10.89.0.1/24"]);
    // The listening end must exist before the connecting one starts.
    std::thread::sleep(Duration::from_millis(500));
    let ms = INTERVAL_MS.to_string();
    let b = start(
        net_b,
        "52:54:00:89:00:02",
        &[
            "--stats",
            "--stats-json",
            json.to_str().unwrap(),
            "--stats-ms",
            &ms,
        ],
        &["ferrix.ip=10.89.0.2/24", "peer=10.89.0.1:7", "count=5"],
    )
    .wait_with_output()
    .expect("VM B");
    let _ = a.kill();
    let a = a.wait_with_output().expect("VM A");
    assert!(b.status.success(), "B:\n{}\nA:\n{}", text(&b), text(&a));
    text(&b).replace('\r', "")
}

/// Counters by core, then by key.
type Counters = BTreeMap<u64, BTreeMap<String, u64>>;

/// The exit-time counters on the console, per core, under the record's key names.
fn console_counters(console: &str) -> Counters {
    let mut m: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    for l in console.lines() {
        if let Some(rest) = l.strip_prefix("ferrix-sched: core ") {
            // core N policy P: events A local B ... app_ns I
            let (core, pairs) = rest.split_once(": ").unwrap_or_else(|| panic!("{l}"));
            let core: u64 = core.split(' ').next().unwrap().parse().unwrap();
            let t: Vec<&str> = pairs.split_whitespace().collect();
            let c = m.entry(core).or_default();
            for kv in t.chunks(2) {
                c.insert(
                    kv[0].to_string(),
                    kv[1].parse().unwrap_or_else(|_| panic!("{l}")),
                );
            }
            continue;
        }
        let Some(rest) = l.strip_prefix("ferrix-stats: core ") else {
            continue;
        };
        let t: Vec<&str> = rest
            .split([' ', ',', ':'])
            .filter(|s| !s.is_empty())
            .collect();
        let n = |i: usize| t[i].parse::<u64>().unwrap_or_else(|_| panic!("{l}"));
        let core = m.entry(n(0)).or_default();
        if t[1] == "drop" {
            core.insert(format!("drop.{}", t[2]), n(3));
            continue;
        }
        // core Q queue Q: rx A frames B bytes, tx C frames D bytes, drops E, driver
        // rx_dropped F tx_ring_full G device_errors H
        let at = |name: &str| {
            t.iter()
                .position(|x| *x == name)
                .unwrap_or_else(|| panic!("{l}"))
        };
        for (key, i) in [
            ("queue", at("queue") + 1),
            ("rx", at("rx") + 1),
            ("rx_bytes", at("rx") + 3),
            ("tx", at("tx") + 1),
            ("tx_bytes", at("tx") + 3),
            ("drops", at("drops") + 1),
            ("rx_dropped", at("rx_dropped") + 1),
            ("tx_ring_full", at("tx_ring_full") + 1),
            ("device_errors", at("device_errors") + 1),
        ] {
            core.insert(key.to_string(), n(i));
        }
    }
    m
}

/// Checks the series in `json` against the exit-time counters on `console`. `dense`: records
/// must not be much rarer than the interval (core 0 takes its timer interrupts, or, in
/// `serve_tcp`, which polls with them off, its idle turns push them).
fn check_series(json: &Path, console: &str, dense: bool) -> (Counters, Value) {
    let series = std::fs::read_to_string(json).expect("the --stats-json file");
    let _ = std::fs::remove_file(json);
    let recs: Vec<Value> = series
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let u = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let (last, periodic) = recs.split_last().expect("at least the final record");
    assert_eq!(last["final"], true, "{series}");
    assert!(periodic.iter().all(|r| r["final"] == false), "{series}");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(
            u(r, "seq"),
            i as u64,
            "no record lost or repeated:\n{series}"
        );
        assert_eq!(u(r, "host_dropped"), 0, "{r}");
        assert!(r["unix_ms"].as_u64().is_some() && r["host_ms"].as_f64().is_some());
    }
    // At the interval, by the guest's clock (a periodic record is stamped when it fell due):
    // never closer than the interval, and not much rarer either (a tenth of the intervals the
    // run spanned: a host that starves the vCPU makes the guest miss timer ticks).
    let interval_ns = INTERVAL_MS * 1_000_000;
    for w in periodic.windows(2) {
        let d = u(&w[1], "t_ns") - u(&w[0], "t_ns");
        assert!(d >= interval_ns, "records {d} ns apart:\n{series}");
    }
    let t_final = u(last, "t_ns");
    let first = periodic.first().map_or(t_final, |r| u(r, "t_ns"));
    let expected = (t_final - first) / interval_ns;
    assert!(
        !dense || periodic.len() as u64 >= expected / 10,
        "{} periodic records over {} ns:\n{series}",
        periodic.len(),
        t_final - first
    );
    assert!(
        periodic.len() as u64 <= t_final / interval_ns + 1,
        "{series}"
    );
    assert!(
        !periodic.is_empty(),
        "no periodic record over {t_final} ns:\n{series}"
    );
    // The final record's counters are the ones printed at exit.
    let printed = console_counters(console);
    let cores = last["cores"].as_array().expect("cores");
    assert_eq!(printed.len(), cores.len(), "{console}\n{last}");
    for (core, want) in &printed {
        let got = &cores[*core as usize];
        assert_eq!(u(got, "core"), *core);
        for (k, v) in want {
            assert_eq!(
                u(got, k),
                *v,
                "core {core} {k}: {got} vs console:\n{console}"
            );
        }
        let drops: Vec<&String> = got
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("drop."))
            .collect();
        assert_eq!(
            drops.len(),
            want.keys().filter(|k| k.starts_with("drop.")).count(),
            "{got}"
        );
    }
    (printed, last.clone())
}

/// [`client_with_stats`] on the networks `nets` makes from a fresh directory, then
/// [`check_series`]; the client sent and received its 5 pings (and ARP).
fn ping_with_stats(vmm: &str, nets: impl FnOnce(&Path) -> (String, String)) {
    let dir = std::env::temp_dir().join(format!("ferrix-live-{vmm}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (net_a, net_b) = nets(&dir);
    let json = dir.join("series.json");
    let console = client_with_stats(vmm, &net_a, &net_b, &json);
    let (printed, _) = check_series(&json, &console, true);
    assert!(
        printed[&0]["rx"] >= 5 && printed[&0]["tx"] >= 5,
        "{console}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stats_json_under_qemu() {
    ping_with_stats("qemu", |dir| {
        let sock = dir.join("link.sock").display().to_string();
        (
            format!("stream-listen:{sock}"),
            format!("stream-connect:{sock}"),
        )
    });
}

#[test]
fn stats_json_under_the_shim() {
    if !ferrix_tests::kvm_available() {
        return;
    }
    ping_with_stats("shim", |dir| {
        let net = format!("switch:{}", dir.join("switch").display());
        (net.clone(), net)
    });
}

/// synthetic serving TCP on 2 vCPUs (ZygOS: every connection homed on core 0, core 1
/// steals): the final record carries the scheduler counters of the `ferrix-sched:` lines.
#[test]
fn stats_json_carries_the_scheduler_counters() {
    let port = 26000 + (std::process::id() % 10000) as u16;
    let json = std::env::temp_dir().join(format!("ferrix-live-t-{}.json", std::process::id()));
    let (conns, depth) = (4, 10);
    let ms = INTERVAL_MS.to_string();
    let opts = [
        "--stats",
        "--stats-json",
        json.to_str().unwrap(),
        "--stats-ms",
        &ms,
    ];
    let exit_after = format!("exit-after={}", 2 * conns * depth);
    let mut vm = ferrix_tests::synthetic_tcp_vm(FERRIX, port, 2, &opts, &[&exit_after]);
    let (seen, rest) = ferrix_tests::wait_for(&mut vm, "synthetic: serving TCP");
    ferrix_tests::pipelined(port, conns, depth, 300_000);
    // An idle stretch: serve_tcp polls with interrupts off, and its idle turns must still
    // push records (checked below: no gap of 1 s in the series).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    ferrix_tests::pipelined(port, conns, depth, 300_000);
    let out = vm.wait_with_output().expect("VM");
    let console = seen + &rest.join().unwrap_or_default();
    assert!(out.status.success(), "{console}");
    // Dense too: serve_tcp's idle turns push records while interrupts are off.
    let series = std::fs::read_to_string(&json).expect("the --stats-json file");
    let stamps: Vec<u64> = series
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["t_ns"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let widest = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        widest < 1_000_000_000,
        "records {widest} ns apart across the idle stretch:\n{series}"
    );
    let (printed, last) = check_series(&json, &console, true);
    // The queue depths are live-only (not printed at exit), present once serve_tcp runs.
    for c in last["cores"].as_array().unwrap() {
        assert!(
            c["ready_depth"].is_u64() && c["remote_depth"].is_u64(),
            "{c}"
        );
    }
    assert!(
        printed.values().all(|c| c.contains_key("steals")),
        "{console}"
    );
    let events: u64 = printed.values().map(|c| c["events"]).sum();
    assert!(events > 0, "{console}");
}

/// `ferrix run hello --cpus 2 --stats-live` with `how` as stdout: a pty through util-linux
/// `script`, or a pipe.
fn hello_live(through_script: bool) -> String {
    let image = ferrix_tests::image("hello");
    let argv = [
        FERRIX,
        "run",
        image.to_str().unwrap(),
        "--cpus",
        "2",
        "--stats-live",
        "--stats-ms",
        "20",
        "--timeout",
        "60",
    ];
    let out = if through_script {
        Command::new("script")
            .args(["-qec", &argv.join(" "), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("run script (util-linux)")
    } else {
        Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .expect("ferrix")
    };
    assert!(out.status.success(), "{}", text(&out));
    text(&out).replace('\r', "")
}

#[test]
fn stats_live_table_on_a_terminal_only() {
    let tty = hello_live(true);
    assert!(tty.contains("hello from core 1"), "{tty}");
    let title = ferrix_cli::stats_live::TABLE_TITLE;
    let header = tty
        .lines()
        .find(|l| l.trim_start().starts_with("core") && l.contains("steals"))
        .unwrap_or_else(|| panic!("no table header:\n{tty}"));
    assert!(
        header.contains("rx") && header.contains("ipis_sent"),
        "{header}"
    );
    assert!(tty.contains(&format!("{title}: record")), "{tty}");
    assert!(tty.contains("(final)"), "the final record is drawn:\n{tty}");
    for core in ["0", "1"] {
        assert!(
            tty.lines().any(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                // core, the counters, rx/s and tx/s
                t.len() == ferrix_cli::stats_live::COLUMNS.len() + 3
                    && t[0] == core
                    && t[1..].iter().all(|x| x.parse::<u64>().is_ok())
            }),
            "no row for core {core}:\n{tty}"
        );
    }
    let piped = hello_live(false);
    assert!(piped.contains("hello from core 1"), "{piped}");
    assert!(!piped.contains(title), "a table on a pipe:\n{piped}");
}
