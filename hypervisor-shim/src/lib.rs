//! ferrix-shim: the ferrix VMM on KVM.
//!
//! Public API used by the `ferrix` command (tools/ferrix-cli). The implementation lives in the
//! modules below; this file only fixes the contract.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

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
}

/// How a VM run ended (when the shim itself did not fail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmOutcome {
    /// The guest called exit with this code.
    Exited(u32),
    /// The timeout expired; all vCPUs were stopped.
    TimedOut,
}

/// Errors of the shim. Each displays as one clear line.
#[derive(Debug)]
pub enum ShimError {
    /// Placeholder until the implementation lands.
    Unavailable(String),
}

impl std::fmt::Display for ShimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShimError::Unavailable(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for ShimError {}

/// Boots `cfg.image`, streams the guest console to `console`, returns how the run ended.
pub fn run(cfg: &VmConfig, console: Box<dyn Write + Send>) -> Result<VmOutcome, ShimError> {
    let _ = console;
    Err(ShimError::Unavailable(format!(
        "ferrix-shim: cannot run {}: the shim is not built yet",
        cfg.image.display()
    )))
}
