//! ferrix-shim: the ferrix VMM on KVM.
//!
//! Public API used by the `ferrix` command (tools/ferrix-cli): [`VmConfig`], [`run`],
//! [`run_with_stats`], [`VmOutcome`], [`ShimError`], and for the NIC [`NetConfig`],
//! [`NetBackend`], [`NetStats`]. The modules below implement it, one concept each.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub mod cpu;
pub mod error;
pub mod hypercall;
pub mod ixgbe;
pub mod loader;
pub mod memory;
pub mod net;
pub mod start_info;
pub mod vcpu;
pub mod vfio;
pub mod virtio;
pub mod vm;

pub use error::ShimError;
pub use hypercall::StatsSink;
pub use net::{NetBackend, NetConfig, NetStats};

/// Largest number of vCPUs (vCPU id = APIC id = index).
pub const MAX_CPUS: u32 = 64;

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Path of the PVH ELF image.
    pub image: PathBuf,
    /// Number of vCPUs (1..=MAX_CPUS).
    pub cpus: u32,
    /// Guest RAM in bytes.
    pub mem_bytes: u64,
    /// Kernel command line given by the user; the shim appends `ferrix.cpus=N`.
    pub cmdline: String,
    /// Stop the VM after this long (None: no limit).
    pub timeout: Option<Duration>,
    /// The virtio-net NIC (None: no NIC).
    pub net: Option<NetConfig>,
    /// Receives the guest's live statistics records (`STATS_PUSH`; None: dropped).
    pub stats_sink: Option<StatsSink>,
}

impl VmConfig {
    /// Boots `image` with 1 vCPU, 128 MiB, an empty command line, no timeout and no NIC.
    pub fn new(image: impl Into<PathBuf>) -> Self {
        VmConfig {
            image: image.into(),
            cpus: 1,
            mem_bytes: 128 << 20,
            cmdline: String::new(),
            timeout: None,
            net: None,
            stats_sink: None,
        }
    }
}

/// How a VM run ended (when the shim itself did not fail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmOutcome {
    /// The guest called exit with this code.
    Exited(u32),
    /// The timeout expired; all vCPUs were stopped.
    TimedOut,
}

/// Boots `cfg.image`, streams the guest console to `console`, returns how the run ended.
pub fn run(cfg: &VmConfig, console: Box<dyn Write + Send>) -> Result<VmOutcome, ShimError> {
    vm::run(cfg, console).map(|(outcome, _)| outcome)
}

/// As [`run`], and also returns the NIC's statistics (when `cfg.net` is set).
pub fn run_with_stats(
    cfg: &VmConfig,
    console: Box<dyn Write + Send>,
) -> Result<(VmOutcome, Option<NetStats>), ShimError> {
    vm::run(cfg, console)
}
