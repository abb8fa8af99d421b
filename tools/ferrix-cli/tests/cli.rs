//! The `ferrix` binary end to end: validation errors, exit codes, timeout message, bench.

mod common;

use common::{fake_image, fake_qemu, retry_busy, temp_dir};
use std::process::{Command, Output};

fn ferrix(args: &[&str], qemu: Option<&std::path::Path>) -> Output {
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrix"));
        cmd.args(args);
        if let Some(q) = qemu {
            cmd.env("FERRIX_QEMU", q);
        }
        cmd.output().unwrap()
    };
    retry_busy(run, |o| {
        String::from_utf8_lossy(&o.stderr).contains("Text file busy")
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("ferrix: ") && err.contains(needle), "{err}");
}

#[test]
fn cpus_zero_is_rejected() {
    let o = ferrix(&["run", "hello", "--cpus", "0"], None);
    assert_one_line_error(&o, 2, "--cpus must be between 1 and 64");
}

#[test]
fn too_little_memory_is_rejected() {
    let o = ferrix(&["run", "hello", "--mem", "1M"], None);
    assert_one_line_error(&o, 2, "--mem must be between 16M and 3G");
    let o = ferrix(&["run", "hello", "--mem", "4G"], None);
    assert_one_line_error(&o, 2, "--mem");
    let o = ferrix(&["run", "hello", "--mem", "12X"], None);
    assert_one_line_error(&o, 2, "unknown unit");
}

#[test]
fn profile_rate_beyond_the_kernel_limit_is_rejected_before_boot() {
    let o = ferrix(&["run", "hello", "--profile-hz", "4000000"], None);
    assert_one_line_error(&o, 2, "--profile-hz");
    let o = ferrix(&["run", "hello", "--profile-hz", "0"], None);
    assert_one_line_error(&o, 2, "--profile-hz");
}

#[test]
fn clap_errors_are_one_line_too() {
    let o = ferrix(&["run", "hello", "--cpus", "-1"], None);
    assert_one_line_error(&o, 2, "--cpus");
    let o = ferrix(&["run", "hello", "--vmm", "xen"], None);
    assert_one_line_error(&o, 2, "xen");
}

#[test]
fn unknown_app_lists_the_apps() {
    let o = ferrix(&["build", "no-such-app"], None);
    assert_one_line_error(&o, 2, "unknown app 'no-such-app'");
    assert!(stderr(&o).contains("hello"));
}

#[test]
fn unknown_profile_is_a_usage_error() {
    let o = ferrix(&["run", "hello", "--profile", "nope"], None);
    assert_one_line_error(&o, 2, "profile nope");
}

#[test]
fn run_exits_with_the_guest_code() {
    let dir = temp_dir("cli-run");
    let image = fake_image(&dir);
    let q = fake_qemu(&dir, "echo 'guest says hi'\nexit 7");
    let o = ferrix(&["run", image.to_str().unwrap()], Some(&q));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "guest says hi\n");
}

#[test]
fn run_reports_a_reset() {
    let dir = temp_dir("cli-reset");
    let image = fake_image(&dir);
    let q = fake_qemu(&dir, "exit 0");
    let o = ferrix(&["run", image.to_str().unwrap()], Some(&q));
    assert_one_line_error(&o, 125, "the guest reset (triple fault?)");
}

#[test]
fn run_times_out_with_124() {
    let dir = temp_dir("cli-timeout");
    let image = fake_image(&dir);
    let q = fake_qemu(&dir, "exec sleep 30");
    let t0 = std::time::Instant::now();
    let o = ferrix(
        &["run", image.to_str().unwrap(), "--timeout", "1"],
        Some(&q),
    );
    assert_one_line_error(&o, 124, "ferrix: timeout after 1 s: VM stopped");
    assert!(t0.elapsed().as_secs() < 10);
}

#[test]
fn missing_qemu_is_125_with_install_hint() {
    let dir = temp_dir("cli-noqemu");
    let image = fake_image(&dir);
    let o = ferrix(
        &["run", image.to_str().unwrap()],
        Some(std::path::Path::new("/nonexistent/qemu")),
    );
    assert_one_line_error(&o, 125, "apt-get install qemu-system-x86");
}

#[test]
fn shim_failure_is_one_line_125() {
    let dir = temp_dir("cli-shim");
    let image = fake_image(&dir);
    let o = ferrix(&["run", image.to_str().unwrap(), "--vmm", "shim"], None);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("ferrix: "), "{}", stderr(&o));
}

#[test]
fn bench_boot_parses_bootstats_and_writes_json() {
    let dir = temp_dir("cli-bench");
    let image = fake_image(&dir);
    let q = fake_qemu(
        &dir,
        "echo 'ferrix-bootstats: start_tsc=1000 entry_tsc=5000 tsc_hz=1000000000'\n\
         echo hello\n\
         echo 'ferrix-bootstats: exit_tsc=9000'\n\
         exit 1",
    );
    let json = dir.join("bench.json");
    let o = ferrix(
        &[
            "bench",
            "boot",
            "--runs",
            "2",
            "--app",
            image.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        Some(&q),
    );
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}\n{table}", stderr(&o));
    let row = |prefix: &str| {
        table
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} row in\n{table}"))
            .split_whitespace()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("qemu-icount        insns to app entry"),
        ["2", "4000", "4000", "4000"]
    );
    assert_eq!(
        row("qemu-icount        insns to exit"),
        ["2", "8000", "8000", "8000"]
    );
    assert!(
        table.contains("qemu-tcg-microvm   wall ms to exit"),
        "{table}"
    );
    // The shim cannot boot a fake image (or is not built): its row says why.
    assert!(
        table.contains("shim               unavailable: "),
        "{table}"
    );
    let j = std::fs::read_to_string(&json).unwrap();
    assert!(
        j.contains("\"id\":\"insns_to_entry\",\"label\":\"insns to app entry\",\"median\":4000"),
        "{j}"
    );
    assert!(j.contains("\"config\":\"shim\",\"ok\":false"), "{j}");
}

#[test]
fn bench_kv_names_the_package_of_a_missing_client() {
    // An empty PATH: the first program it drives, redis-benchmark, is missing (checked before
    // anything is built or started).
    let dir = temp_dir("cli-bench-kv");
    let o = Command::new(env!("CARGO_BIN_EXE_ferrix"))
        .args(["bench", "kv", "--quick"])
        .env("PATH", &dir)
        .output()
        .unwrap();
    assert_one_line_error(
        &o,
        125,
        "redis-benchmark not found on PATH: install it with `apt-get install redis-tools`",
    );
    let o = ferrix(&["bench", "kv", "--requests", "0"], None);
    assert_one_line_error(&o, 2, "--requests and --icount-ops must be at least 1");
}
