//! Helpers for the integration tests in `tests/tests/`: build each guest app once per test
//! process, boot it under QEMU or the shim through the `ferrix` library, capture the console.
#![forbid(unsafe_code)]

pub mod netns;

use ferrix_cli::{Accel, RunOptions, Vmm};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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
