//! The QEMU runner against fake QEMU scripts: exit status mapping, streaming, timeouts, argv.

mod common;

use common::{fake_image, fake_qemu, retry_busy, temp_dir};
use ferrix_cli::error::CliError;
use ferrix_cli::qemu_run::run_qemu;
use ferrix_cli::run::{RunOptions, RunResult, run_with_qemu};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(d);
        Ok(d.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn is_busy(r: &Result<RunResult, CliError>) -> bool {
    matches!(r, Err(CliError::QemuSpawn { source, .. }) if source.raw_os_error() == Some(26))
}

fn run_fake(bin: &Path, timeout: Option<Duration>) -> (Result<RunResult, CliError>, String) {
    let cap = Capture::default();
    let r = retry_busy(
        || run_qemu(bin.to_str().unwrap(), &[], timeout, Box::new(cap.clone())),
        is_busy,
    );
    (r, cap.text())
}

#[test]
fn odd_status_gives_the_guest_code_and_streams_the_console() {
    let dir = temp_dir("odd");
    let q = fake_qemu(&dir, "echo 'hello from the guest'\nexit 7");
    let (r, out) = run_fake(&q, Some(Duration::from_secs(30)));
    assert_eq!(
        r.unwrap(),
        RunResult {
            exit_code: 3,
            timed_out: false
        }
    );
    assert_eq!(out, "hello from the guest\n");
}

#[test]
fn status_zero_is_a_guest_reset() {
    let dir = temp_dir("zero");
    let q = fake_qemu(&dir, "echo booting\nexit 0");
    let (r, out) = run_fake(&q, Some(Duration::from_secs(30)));
    let e = r.unwrap_err();
    assert!(matches!(e, CliError::GuestReset { .. }), "{e}");
    assert_eq!(e.exit_code(), 125);
    assert_eq!(out, "booting\n");
}

#[test]
fn qemu_startup_error_is_a_failure_not_guest_code_zero() {
    let dir = temp_dir("err");
    let q = fake_qemu(
        &dir,
        "echo \"qemu: could not open kernel file '/x': No such file or directory\" >&2\nexit 1",
    );
    let (r, _) = run_fake(&q, None);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 125);
    assert!(e.to_string().contains("could not open kernel file"), "{e}");
}

#[test]
fn timeout_kills_qemu() {
    let dir = temp_dir("sleep");
    let pidfile = dir.join("pid");
    let q = fake_qemu(
        &dir,
        &format!(
            "echo $$ > {}\necho started\nexec sleep 30",
            pidfile.display()
        ),
    );
    let t0 = Instant::now();
    let (r, out) = run_fake(&q, Some(Duration::from_secs(1)));
    assert_eq!(
        r.unwrap(),
        RunResult {
            exit_code: 124,
            timed_out: true
        }
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(out, "started\n");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "fake QEMU (pid {pid}) still running"
    );
}

#[test]
fn missing_qemu_says_how_to_install_it() {
    let (r, _) = run_fake(Path::new("/nonexistent/qemu-system-x86_64"), None);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 125);
    assert!(
        e.to_string().contains("apt-get install qemu-system-x86"),
        "{e}"
    );
}

#[test]
fn argv_comes_from_the_profile_with_the_cmdline_as_one_argument() {
    let dir = temp_dir("argv");
    let image = fake_image(&dir);
    let q = fake_qemu(&dir, "for a in \"$@\"; do echo \"arg:$a\"; done\nexit 3");
    let opts = RunOptions {
        target: image.to_str().unwrap().to_string(),
        cpus: 3,
        mem_bytes: 64 << 20,
        accel: ferrix_cli::Accel::Kvm,
        args: vec!["x=1".into(), "y".into()],
        ..RunOptions::default()
    };
    let cap = Capture::default();
    let r = retry_busy(
        || run_with_qemu(&opts, q.to_str().unwrap(), Box::new(cap.clone())),
        is_busy,
    );
    assert_eq!(r.unwrap().exit_code, 1);
    let out = cap.text();
    let args: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("arg:")).collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("-append"), "ferrix.cpus=3 x=1 y");
    assert_eq!(after("-kernel"), image.to_str().unwrap());
    assert_eq!(after("-smp"), "3");
    assert_eq!(after("-m"), "64");
    assert_eq!(after("-accel"), "kvm");
    assert_eq!(after("-M"), "microvm,pit=on,pic=on,rtc=on,acpi=off");
}
