//! `ferrix run`: boot an image (building the app first if needed) under QEMU or the shim.
//!
//! The options are validated here, not only in the CLI, so library callers get the same
//! one-line errors. The target is an image if it names an existing file; otherwise it is an
//! app name or crate directory, built in release mode first.

use crate::error::CliError;
use crate::netspec::{NetSpec, format_mac};
use crate::qemu::{DEFAULT_PROFILE, Profile, ProfileVars};
use crate::qemu_run::{qemu_binary, run_qemu};
use crate::size::format_size;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Smallest and largest vCPU counts accepted.
pub const CPUS_RANGE: std::ops::RangeInclusive<u32> = 1..=64;
/// Smallest guest RAM accepted.
pub const MEM_MIN: u64 = 16 << 20;
/// Largest guest RAM accepted (stays below the 32-bit PCI hole of the machines we use).
pub const MEM_MAX: u64 = 3 << 30;

/// Which VMM boots the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Vmm {
    /// `qemu-system-x86_64` (or `$FERRIX_QEMU`) with a machine profile.
    Qemu,
    /// The ferrix KVM shim, in process.
    Shim,
}

/// QEMU's accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Emulation; works everywhere.
    Tcg,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
}

impl Accel {
    /// The name QEMU's `-accel` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// App name, crate directory or image path.
    pub target: String,
    /// The VMM.
    pub vmm: Vmm,
    /// vCPUs.
    pub cpus: u32,
    /// Guest RAM in bytes.
    pub mem_bytes: u64,
    /// Stop the VM after this long (None: never).
    pub timeout: Option<Duration>,
    /// QEMU accelerator (QEMU only).
    pub accel: Accel,
    /// QEMU profile name or file (QEMU only; None: `microvm`).
    pub profile: Option<String>,
    /// Extra kernel command-line arguments.
    pub args: Vec<String>,
    /// The VM's network (None: no NIC).
    pub net: Option<NetSpec>,
    /// The NIC's MAC address (None: the VMM's default).
    pub mac: Option<[u8; 6]>,
    /// Write every frame the VM sends or receives to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Print network statistics at exit (guest: per core; shim: its device).
    pub stats: bool,
    /// QEMU: offer VIRTIO_NET_F_RSS (the guest then programs Toeplitz RSS). Off by default:
    /// QEMU 7.2 hashes in software and, when it redirects a packet to a queue whose ring is
    /// full, holds it on the queue it came from, which stops that TAP queue until the source
    /// queue's ring is refilled (seen as stalled connections in a 10,000-connection burst).
    pub rss: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            target: "hello".to_string(),
            vmm: Vmm::Qemu,
            cpus: 2,
            mem_bytes: 128 << 20,
            timeout: Some(Duration::from_secs(60)),
            accel: Accel::Tcg,
            profile: None,
            args: Vec::new(),
            net: None,
            mac: None,
            pcap: None,
            stats: false,
            rss: false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// The guest's exit code, or 124 on timeout.
    pub exit_code: i32,
    /// The timeout stopped the VM.
    pub timed_out: bool,
}

/// Checks the numeric options.
pub fn validate(opts: &RunOptions) -> Result<(), CliError> {
    if !CPUS_RANGE.contains(&opts.cpus) {
        return Err(CliError::Usage(format!(
            "--cpus must be between {} and {} (got {})",
            CPUS_RANGE.start(),
            CPUS_RANGE.end(),
            opts.cpus
        )));
    }
    if !(MEM_MIN..=MEM_MAX).contains(&opts.mem_bytes) {
        return Err(CliError::Usage(format!(
            "--mem must be between {} and {} (got {})",
            format_size(MEM_MIN),
            format_size(MEM_MAX),
            format_size(opts.mem_bytes)
        )));
    }
    match (&opts.net, opts.vmm) {
        (Some(n), Vmm::Qemu) if !n.qemu_ok() => {
            return Err(CliError::Usage(
                "--net switch:DIR needs --vmm shim (QEMU: use user, tap or stream-listen/stream-connect)".into(),
            ));
        }
        (Some(n), Vmm::Shim) if !n.shim_ok() => {
            return Err(CliError::Usage(
                "the shim supports --net tap:NAME and --net switch:DIR (use --vmm qemu for user and stream)".into(),
            ));
        }
        (None, _) if opts.pcap.is_some() || opts.mac.is_some() => {
            return Err(CliError::Usage("--pcap and --mac need --net".into()));
        }
        _ => {}
    }
    Ok(())
}

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

/// The guest arguments: the user's, plus `ferrix.stats` for `--stats`.
fn guest_args(opts: &RunOptions) -> Vec<String> {
    let mut args = opts.args.clone();
    if opts.stats {
        args.push("ferrix.stats".to_string());
    }
    args
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
    match profile {
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
            run_qemu(qemu_bin, &argv, opts.timeout, console)
        }
        None => {
            let opts = RunOptions {
                args: guest_args(opts),
                ..opts.clone()
            };
            crate::shim::run_shim(&image, &opts, console)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_cli() {
        let o = RunOptions::default();
        assert_eq!(o.target, "hello");
        assert_eq!((o.cpus, o.mem_bytes), (2, 128 << 20));
        assert_eq!(o.timeout, Some(Duration::from_secs(60)));
        assert_eq!((o.vmm, o.accel, o.profile), (Vmm::Qemu, Accel::Tcg, None));
        assert!(validate(&RunOptions::default()).is_ok());
    }

    #[test]
    fn validation_bounds() {
        let with = |cpus, mem_bytes| RunOptions {
            cpus,
            mem_bytes,
            ..RunOptions::default()
        };
        assert!(validate(&with(1, MEM_MIN)).is_ok());
        assert!(validate(&with(64, MEM_MAX)).is_ok());
        for (c, m) in [
            (0, MEM_MIN),
            (65, MEM_MIN),
            (1, MEM_MIN - 1),
            (1, MEM_MAX + 1),
        ] {
            let e = validate(&with(c, m)).unwrap_err();
            assert_eq!(e.exit_code(), 2);
        }
        let e = validate(&with(2, 1 << 20)).unwrap_err();
        assert_eq!(e.to_string(), "--mem must be between 16M and 3G (got 1M)");
    }

    #[test]
    fn cmdline_starts_with_cpus() {
        assert_eq!(qemu_cmdline(2, &[]), "ferrix.cpus=2");
        let args = vec!["a=1".to_string(), "b".to_string()];
        assert_eq!(qemu_cmdline(4, &args), "ferrix.cpus=4 a=1 b");
    }
}
