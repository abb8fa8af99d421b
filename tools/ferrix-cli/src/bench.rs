//! `ferrix bench boot`: how long an app takes to boot and exit, under each VMM.
//!
//! The app is built once, then booted `runs` times per configuration with one vCPU and the
//! kernel argument `ferrix.bootstats`, which makes the guest print its TSC at the PVH entry,
//! at the app entry and at the exit (see `bootstats.rs`). Configurations:
//!
//! * `qemu-tcg-microvm`: host wall-clock time from spawning QEMU to its exit.
//! * `qemu-icount`: the `microvm-icount` profile, where the guest TSC counts instructions;
//!   reports instructions from the PVH entry to the app entry and to the exit. Deterministic,
//!   so comparable across noisy machines.
//! * `shim`: host wall-clock time to exit, and guest TSC cycles to app entry and to exit.
//!
//! A configuration that cannot run (no QEMU, no /dev/kvm, a shim error, a guest that failed or
//! printed no bootstats) gets a row saying why; the others are still measured.

use crate::bench_report::{Metric, Row};
use crate::bootstats::{self, BOOTSTATS_ARG};
use crate::error::CliError;
use crate::run::{Accel, RunOptions, Vmm, resolve_image, run_with_qemu};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `ferrix bench boot`.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// App name, crate directory or image path.
    pub app: String,
    /// Boots per configuration.
    pub runs: u32,
    /// Per-boot timeout.
    pub timeout: Option<Duration>,
    /// The QEMU binary.
    pub qemu: String,
}

/// What one configuration measures.
struct Config {
    name: &'static str,
    vmm: Vmm,
    profile: Option<&'static str>,
    wall: bool,
    /// (id, label) of the TSC deltas to app entry and to exit, if reported.
    tsc: Option<[(&'static str, &'static str); 2]>,
}

const CONFIGS: &[Config] = &[
    Config {
        name: "qemu-tcg-microvm",
        vmm: Vmm::Qemu,
        profile: Some("microvm"),
        wall: true,
        tsc: None,
    },
    Config {
        name: "qemu-icount",
        vmm: Vmm::Qemu,
        profile: Some("microvm-icount"),
        wall: false,
        tsc: Some([
            ("insns_to_entry", "insns to app entry"),
            ("insns_to_exit", "insns to exit"),
        ]),
    },
    Config {
        name: "shim",
        vmm: Vmm::Shim,
        profile: None,
        wall: true,
        tsc: Some([
            ("tsc_to_entry", "tsc cycles to app entry"),
            ("tsc_to_exit", "tsc cycles to exit"),
        ]),
    },
];

/// A console writer that keeps everything in memory.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub(crate) fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds the app and measures every configuration; progress lines go to `progress`.
pub fn bench_boot(opts: &BenchOptions, progress: &mut dyn Write) -> Result<Vec<Row>, CliError> {
    if opts.runs == 0 {
        return Err(CliError::Usage("--runs must be at least 1".to_string()));
    }
    let image = resolve_image(&opts.app)?;
    let mut rows = Vec::new();
    for cfg in CONFIGS {
        let outcome = measure(cfg, &image, opts, progress);
        if let Err(why) = &outcome {
            let _ = writeln!(progress, "bench: {}: {why}", cfg.name);
        }
        rows.push(Row {
            config: cfg.name.to_string(),
            outcome,
        });
    }
    Ok(rows)
}

fn measure(
    cfg: &Config,
    image: &Path,
    opts: &BenchOptions,
    progress: &mut dyn Write,
) -> Result<Vec<Metric>, String> {
    if cfg.vmm == Vmm::Shim && !Path::new("/dev/kvm").exists() {
        return Err("no /dev/kvm on this host".to_string());
    }
    let run_opts = RunOptions {
        target: image.to_string_lossy().into_owned(),
        vmm: cfg.vmm,
        cpus: 1,
        timeout: opts.timeout,
        accel: Accel::Tcg,
        profile: cfg.profile.map(str::to_string),
        args: vec![BOOTSTATS_ARG.to_string()],
        ..RunOptions::default()
    };
    let (mut wall, mut entry, mut exit) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=opts.runs {
        let _ = writeln!(progress, "bench: {} run {i}/{}", cfg.name, opts.runs);
        let capture = Capture::default();
        let t0 = Instant::now();
        let res = run_with_qemu(&run_opts, &opts.qemu, Box::new(capture.clone()))
            .map_err(|e| e.to_string())?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if res.timed_out {
            let secs = opts.timeout.map(|t| t.as_secs()).unwrap_or(0);
            return Err(format!("timeout after {secs} s"));
        }
        if res.exit_code != 0 {
            return Err(format!("the guest exited with code {}", res.exit_code));
        }
        wall.push(ms);
        if cfg.tsc.is_some() {
            let stats = bootstats::parse(&capture.text())
                .ok_or_else(|| format!("no `{}` lines in the console output", bootstats::PREFIX))?;
            let to_exit = stats
                .to_exit()
                .ok_or_else(|| "the guest printed no exit_tsc".to_string())?;
            entry.push(stats.to_entry() as f64);
            exit.push(to_exit as f64);
        }
    }
    let mut metrics = Vec::new();
    if cfg.wall {
        metrics.push(Metric {
            id: "wall_ms_to_exit",
            label: "wall ms to exit",
            values: wall,
        });
    }
    if let Some([(entry_id, entry_label), (exit_id, exit_label)]) = cfg.tsc {
        metrics.push(Metric {
            id: entry_id,
            label: entry_label,
            values: entry,
        });
        metrics.push(Metric {
            id: exit_id,
            label: exit_label,
            values: exit,
        });
    }
    Ok(metrics)
}
