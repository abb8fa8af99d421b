//! The options of a run (what to boot, on which VMM, with which devices) and how a run ended:
//! the types `run`, `qemu_run` and `shim` share, so that the VMM back ends need not import the
//! front end that picks between them.

use crate::error::CliError;
use crate::netspec::NetSpec;
use crate::size::format_size;
use std::path::PathBuf;
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
    /// The NIC's device under the shim: virtio-net, or the emulated Intel 82599 (ixgbe).
    pub nic: ferrix_shim::net::NicModel,
    /// Write every frame the VM sends or receives to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Print network statistics at exit (guest: per core; shim: its device).
    pub stats: bool,
    /// QEMU: offer VIRTIO_NET_F_RSS (the guest then programs Toeplitz RSS). Off by default:
    /// QEMU 7.2 hashes in software and, when it redirects a packet to a queue whose ring is
    /// full, holds it on the queue it came from, which stops that TAP queue until the source
    /// queue's ring is refilled (seen as stalled connections in a 10,000-connection burst).
    pub rss: bool,
    /// Redraw a per-core table of the guest's live statistics in the console stream (only
    /// when stdout is a terminal); turns on the guest's records (`ferrix.stats-ms`).
    pub stats_live: bool,
    /// Write every live statistics record to this file, one JSON object a line; turns on the
    /// guest's records.
    pub stats_json: Option<PathBuf>,
    /// The guest's live record interval (`ferrix.stats-ms`), when records are on.
    pub stats_ms: u32,
    /// A raw disk image for the guest's virtio-blk disk (QEMU microvm profiles only).
    pub disk: Option<PathBuf>,
}

impl RunOptions {
    /// Whether the guest pushes live statistics records.
    pub fn live_stats(&self) -> bool {
        self.stats_live || self.stats_json.is_some()
    }
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
            nic: ferrix_shim::net::NicModel::Virtio,
            pcap: None,
            stats: false,
            rss: false,
            stats_live: false,
            stats_json: None,
            stats_ms: 100,
            disk: None,
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
    let ms = ferrix_abi::stats::INTERVAL_MS;
    if opts.live_stats() && !ms.contains(&opts.stats_ms) {
        return Err(CliError::Usage(format!(
            "--stats-ms must be between {} and {} (got {})",
            ms.start(),
            ms.end(),
            opts.stats_ms
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
        (_, Vmm::Qemu) if opts.nic == ferrix_shim::net::NicModel::Ixgbe => {
            return Err(CliError::Usage(
                "--nic ixgbe needs --vmm shim (QEMU 7.2 has no 82599 model)".into(),
            ));
        }
        _ => {}
    }
    if let Some(d) = &opts.disk {
        if opts.vmm != Vmm::Qemu || opts.profile.as_deref().is_some_and(|p| p.contains("q35")) {
            return Err(CliError::Usage(
                "--disk needs QEMU with a microvm profile (the shim and q35 have no virtio-blk for ferrix yet)".into(),
            ));
        }
        if d.to_string_lossy().contains(',') {
            return Err(CliError::Usage(format!(
                "--disk {}: a path with a comma cannot be passed to QEMU's -drive",
                d.display()
            )));
        }
        if !d.is_file() {
            return Err(CliError::Usage(format!(
                "--disk {}: not a file (create one, e.g. truncate -s 16M {})",
                d.display(),
                d.display()
            )));
        }
    }
    Ok(())
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
    fn stats_interval_is_checked_only_when_records_are_on() {
        let with = |live, ms| RunOptions {
            stats_live: live,
            stats_ms: ms,
            ..RunOptions::default()
        };
        assert!(validate(&with(false, 0)).is_ok());
        assert!(validate(&with(true, 1)).is_ok());
        let e = validate(&with(true, 0)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--stats-ms"), "{e}");
        let json = RunOptions {
            stats_json: Some("s.json".into()),
            stats_ms: 3_600_001,
            ..RunOptions::default()
        };
        assert!(json.live_stats() && validate(&json).is_err());
    }

    #[test]
    fn disks_need_qemu_microvm_and_a_plain_existing_file() {
        let file = std::env::temp_dir().join(format!("ferrix-disk-opt-{}.img", std::process::id()));
        std::fs::write(&file, [0u8; 512]).unwrap();
        let with = |disk: &str, vmm, profile: Option<&str>| RunOptions {
            disk: Some(PathBuf::from(disk)),
            vmm,
            profile: profile.map(str::to_string),
            ..RunOptions::default()
        };
        let f = file.to_str().unwrap();
        assert!(validate(&with(f, Vmm::Qemu, None)).is_ok());
        assert!(validate(&with(f, Vmm::Qemu, Some("microvm-icount"))).is_ok());
        for bad in [
            with(f, Vmm::Shim, None),
            with(f, Vmm::Qemu, Some("q35")),
            with("/nonexistent/ferrix.img", Vmm::Qemu, None),
            with("/tmp/a,b.img", Vmm::Qemu, None),
        ] {
            assert!(
                matches!(validate(&bad), Err(CliError::Usage(_))),
                "{:?}",
                bad.disk
            );
        }
        let _ = std::fs::remove_file(&file);
    }
}
