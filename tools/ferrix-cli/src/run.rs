//! `ferrix run`: boot an image (building the app first if needed) under QEMU or the shim.
//!
//! The options are validated here, not only in the CLI, so library callers get the same
//! one-line errors. The target is an image if it names an existing file; otherwise it is an
//! app name or crate directory, built in release mode first.

use crate::error::CliError;
use crate::netspec::format_mac;
pub use crate::options::{
    Accel, CPUS_RANGE, MEM_MAX, MEM_MIN, RunOptions, RunResult, Vmm, validate,
};
use crate::qemu::{DEFAULT_PROFILE, Profile, ProfileVars};
use crate::qemu_run::{qemu_binary, run_qemu};
use crate::stats_live::{LiveStats, StatsSocket};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The NIC fragment for a machine profile: virtio-net-pci on PCI machines (the q35 profile,
/// or a profile file whose name contains "q35"), virtio-net-device (MMIO) otherwise.
fn nic_fragment(profile: Option<&str>) -> &'static str {
    let name = profile
        .map(|p| {
            Path::new(p)
                .file_name()
                .map_or(p.to_string(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    if name.contains("q35") {
        "nic-pci"
    } else {
        "nic-mmio"
    }
}

/// QEMU arguments for the network: backend fragment, NIC and optional packet capture.
fn qemu_net_args(opts: &RunOptions, base: &ProfileVars) -> Vec<String> {
    let Some(net) = &opts.net else {
        return Vec::new();
    };
    let (frag, mut extra) = net.qemu_netdev(opts.cpus);
    let mac = opts.mac.unwrap_or([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    extra.push(("mac", format_mac(mac)));
    if let Some(p) = &opts.pcap {
        extra.push(("pcap", p.to_string_lossy().into_owned()));
    }
    let vars = ProfileVars {
        extra,
        ..base.clone()
    };
    let mut vars = vars;
    let queues = net.qemu_queues(opts.cpus);
    vars.extra.push(("vectors", (2 * queues + 2).to_string()));
    vars.extra
        .push(("rss", if opts.rss { "on" } else { "off" }.to_string()));
    let mut argv = Profile::fragment(frag).render(&vars);
    argv.extend(Profile::fragment(nic_fragment(opts.profile.as_deref())).render(&vars));
    if opts.pcap.is_some() {
        argv.extend(Profile::fragment("net-pcap").render(&vars));
    }
    argv
}

/// The guest arguments: the user's, plus `ferrix.stats` for `--stats` and
/// `ferrix.stats-ms=N` for live statistics.
fn guest_args(opts: &RunOptions) -> Vec<String> {
    let mut args = opts.args.clone();
    if opts.stats {
        args.push("ferrix.stats".to_string());
    }
    if opts.live_stats() {
        args.push(format!("ferrix.stats-ms={}", opts.stats_ms));
    }
    args
}

/// The live statistics receiver of a run (None: records off) and the console to give the
/// VMM (wrapped when the table is drawn into it: only with `--stats-live` on a terminal).
fn live_stats(
    opts: &RunOptions,
    console: Box<dyn Write + Send>,
) -> Result<(Option<LiveStats>, Box<dyn Write + Send>), CliError> {
    use std::io::IsTerminal;
    if !opts.live_stats() {
        return Ok((None, console));
    }
    let table = opts.stats_live && std::io::stdout().is_terminal();
    let (live, console) =
        LiveStats::new(opts.stats_json.as_deref(), table, console).map_err(|source| {
            CliError::Io {
                what: format!(
                    "creating {}",
                    opts.stats_json
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                ),
                source,
            }
        })?;
    Ok((Some(live), console))
}

/// Ends a run's live statistics: flushes the JSON file, reports dropped records on stderr.
fn finish_live(live: Option<LiveStats>) -> Result<(), CliError> {
    let Some(live) = live else { return Ok(()) };
    let s = live.finish().map_err(|source| CliError::Io {
        what: "writing the --stats-json file".to_string(),
        source,
    })?;
    if s.dropped > 0 {
        eprintln!(
            "ferrix: live statistics: {} records, {} malformed dropped",
            s.records, s.dropped
        );
    }
    Ok(())
}

/// The kernel command line QEMU passes: `ferrix.cpus=N` then the user's arguments.
pub fn qemu_cmdline(cpus: u32, args: &[String]) -> String {
    std::iter::once(format!("ferrix.cpus={cpus}"))
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The image to boot: the target itself if it is a file, else the built app.
pub fn resolve_image(target: &str) -> Result<PathBuf, CliError> {
    let p = Path::new(target);
    if p.is_file() {
        Ok(p.to_path_buf())
    } else {
        crate::build::build(target, true)
    }
}

/// Builds (if needed) and boots `opts.target`, streaming its console to `console`.
pub fn run(opts: &RunOptions, console: Box<dyn Write + Send>) -> Result<RunResult, CliError> {
    run_with_qemu(opts, &qemu_binary(), console)
}

/// [`run`] with an explicit QEMU binary instead of `$FERRIX_QEMU` (used by the bench and by
/// tests, which must not change the process environment).
pub fn run_with_qemu(
    opts: &RunOptions,
    qemu_bin: &str,
    console: Box<dyn Write + Send>,
) -> Result<RunResult, CliError> {
    validate(opts)?;
    // Load the profile before building, so a typo fails fast.
    let profile = match opts.vmm {
        Vmm::Qemu => Some(Profile::load(
            opts.profile.as_deref().unwrap_or(DEFAULT_PROFILE),
        )?),
        Vmm::Shim => None,
    };
    let image = resolve_image(&opts.target)?;
    let (live, console) = live_stats(opts, console)?;
    let result = match profile {
        Some(profile) => {
            let vars = ProfileVars {
                kernel: image.to_string_lossy().into_owned(),
                cpus: opts.cpus,
                mem_mib: opts.mem_bytes.div_ceil(1 << 20),
                cmdline: qemu_cmdline(opts.cpus, &guest_args(opts)),
                accel: opts.accel.as_str().to_string(),
                extra: Vec::new(),
            };
            let mut argv = profile.render(&vars);
            argv.extend(qemu_net_args(opts, &vars));
            if let Some(d) = &opts.disk {
                let vars = ProfileVars {
                    extra: vec![("disk", d.to_string_lossy().into_owned())],
                    ..vars.clone()
                };
                argv.extend(Profile::fragment("disk-mmio").render(&vars));
            }
            let socket = live
                .clone()
                .map(StatsSocket::listen)
                .transpose()
                .map_err(|source| CliError::Io {
                    what: "creating the statistics socket".to_string(),
                    source,
                })?;
            if let Some(sock) = &socket {
                let vars = ProfileVars {
                    extra: vec![("stats", sock.path().to_string_lossy().into_owned())],
                    ..vars.clone()
                };
                argv.extend(Profile::fragment("stats").render(&vars));
            }
            let r = run_qemu(qemu_bin, &argv, opts.timeout, console);
            if let Some(sock) = socket {
                sock.close();
            }
            r
        }
        None => {
            let opts = RunOptions {
                args: guest_args(opts),
                ..opts.clone()
            };
            crate::shim::run_shim(&image, &opts, console, live.clone())
        }
    };
    finish_live(live)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_starts_with_cpus() {
        assert_eq!(qemu_cmdline(2, &[]), "ferrix.cpus=2");
        let args = vec!["a=1".to_string(), "b".to_string()];
        assert_eq!(qemu_cmdline(4, &args), "ferrix.cpus=4 a=1 b");
    }
}
