//! The shim's error type, one variant per failure, each with a one-line message (a triple
//! fault adds a register dump on the following lines) and a process exit code.

use std::path::PathBuf;

/// Exit code of `ferrix-shim` for a command-line usage error (clap's own code).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for an image error: not found, unreadable, not an ELF, no PVH note, too big.
pub const EXIT_IMAGE: i32 = 3;
/// Exit code when `/dev/kvm` cannot be opened.
pub const EXIT_KVM_UNAVAILABLE: i32 = 4;
/// Exit code for a bad configuration: memory size, vCPU count, command line, NIC setup
/// (bad `--net`, TAP or switch directory unusable, pcap file not creatable).
pub const EXIT_CONFIG: i32 = 5;
/// Exit code when the VM was stopped by the timeout (as coreutils `timeout`).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code when the VM failed: triple fault, KVM entry failure or another KVM error.
pub const EXIT_VM_FAILED: i32 = 125;

/// Errors of the shim. Each displays as one clear line (except [`ShimError::VmFailed`], whose
/// first line says what happened and whose following lines dump the vCPU registers).
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// `/dev/kvm` is missing or not accessible.
    #[error(
        "cannot open /dev/kvm: {0}: KVM is not available or you lack permission (add yourself to group kvm)"
    )]
    KvmUnavailable(std::io::Error),

    /// Guest memory below the minimum.
    #[error("guest memory of {bytes} bytes is too small: the minimum is 16 MiB ({min} bytes)")]
    MemoryTooSmall {
        /// Requested size.
        bytes: u64,
        /// The minimum.
        min: u64,
    },

    /// Guest memory above the maximum.
    #[error("guest memory of {bytes} bytes is too large: the maximum is 3 GiB ({max} bytes)")]
    MemoryTooLarge {
        /// Requested size.
        bytes: u64,
        /// The maximum.
        max: u64,
    },

    /// vCPU count outside `1..=MAX_CPUS`.
    #[error("invalid vCPU count {cpus}: must be between 1 and {max}")]
    BadCpuCount {
        /// Requested count.
        cpus: u32,
        /// The maximum.
        max: u32,
    },

    /// The final command line does not fit its 2047-byte slot.
    #[error("command line is {len} bytes long: the maximum is {max} bytes")]
    CmdlineTooLong {
        /// Length of the final command line (with ` ferrix.cpus=N`).
        len: usize,
        /// The maximum.
        max: usize,
    },

    /// The command line contains a NUL byte.
    #[error("command line contains a NUL byte")]
    CmdlineNul,

    /// A `--net` specification that cannot be parsed.
    #[error(transparent)]
    NetSpec(#[from] crate::net::NetSpecError),

    /// Queue pair count outside `1..=16`.
    #[error("invalid queue pair count {queues}: must be between 1 and {max}")]
    BadQueueCount {
        /// Requested count.
        queues: u32,
        /// The maximum.
        max: u32,
    },

    /// An RSS key shorter than 16 or longer than 40 bytes.
    #[error("invalid RSS key of {len} bytes: it must have 16 to 40 bytes (40 is standard)")]
    BadRssKey {
        /// Its length.
        len: usize,
    },

    /// The TAP backend cannot be used.
    #[error("--net tap:{name}: {what}: {source}")]
    Tap {
        /// Interface name.
        name: String,
        /// What failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },

    /// The switch backend cannot be used.
    #[error("--net switch:{}: {what}: {source}", dir.display())]
    Switch {
        /// The switch directory.
        dir: PathBuf,
        /// What failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },

    /// The pcap file cannot be created.
    #[error("--pcap {}: cannot create the capture file: {source}", path.display())]
    Pcap {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The image file does not exist.
    #[error("image {}: file not found", path.display())]
    ImageNotFound {
        /// Image path.
        path: PathBuf,
    },

    /// The image file cannot be read.
    #[error("image {}: cannot read: {source}", path.display())]
    ImageRead {
        /// Image path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The image is not an ELF file.
    #[error("image {}: not an ELF file (bad magic number)", path.display())]
    NotElf {
        /// Image path.
        path: PathBuf,
    },

    /// The ELF image carries no PVH entry note.
    #[error(
        "image {}: no PVH note: the ELF has no Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18), so it cannot be booted with PVH",
        path.display()
    )]
    NoPvhNote {
        /// Image path.
        path: PathBuf,
    },

    /// A loadable segment does not fit guest memory.
    #[error(
        "image {}: a segment at {addr:#x}..{end:#x} does not fit guest memory of {mem:#x} bytes (raise --mem)",
        path.display()
    )]
    ImageTooBig {
        /// Image path.
        path: PathBuf,
        /// Segment start (guest-physical).
        addr: u64,
        /// Segment end (guest-physical, exclusive).
        end: u64,
        /// Guest memory size.
        mem: u64,
    },

    /// The ELF is malformed in another way.
    #[error("image {}: invalid ELF: {reason}", path.display())]
    BadImage {
        /// Image path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A KVM or host operation needed to set up or run the VM failed.
    #[error("{op} failed: {source}")]
    Host {
        /// What the shim was doing.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },

    /// The guest made the VM unusable (triple fault, entry failure, KVM internal error).
    #[error("{reason} on vCPU {vcpu}\n{regs}")]
    VmFailed {
        /// vCPU index.
        vcpu: u32,
        /// What happened, e.g. "guest triple-faulted".
        reason: String,
        /// Register dump of that vCPU.
        regs: String,
    },
}

impl ShimError {
    /// The process exit code `ferrix-shim` uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShimError::KvmUnavailable(_) => EXIT_KVM_UNAVAILABLE,
            ShimError::MemoryTooSmall { .. }
            | ShimError::MemoryTooLarge { .. }
            | ShimError::BadCpuCount { .. }
            | ShimError::CmdlineTooLong { .. }
            | ShimError::CmdlineNul
            | ShimError::NetSpec(_)
            | ShimError::BadQueueCount { .. }
            | ShimError::BadRssKey { .. }
            | ShimError::Tap { .. }
            | ShimError::Switch { .. }
            | ShimError::Pcap { .. } => EXIT_CONFIG,
            ShimError::ImageNotFound { .. }
            | ShimError::ImageRead { .. }
            | ShimError::NotElf { .. }
            | ShimError::NoPvhNote { .. }
            | ShimError::ImageTooBig { .. }
            | ShimError::BadImage { .. } => EXIT_IMAGE,
            ShimError::Host { .. } | ShimError::VmFailed { .. } => EXIT_VM_FAILED,
        }
    }

    /// Wraps a KVM ioctl error.
    pub(crate) fn kvm(op: &'static str, e: kvm_ioctls::Error) -> Self {
        ShimError::Host {
            op,
            source: std::io::Error::from_raw_os_error(e.errno()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_unavailable_message_and_code() {
        let e = ShimError::KvmUnavailable(std::io::Error::from_raw_os_error(libc::EACCES));
        let msg = e.to_string();
        assert!(msg.starts_with("cannot open /dev/kvm: "), "{msg}");
        assert!(
            msg.contains("os error 13") && msg.contains("group kvm"),
            "{msg}"
        );
        assert_eq!(e.exit_code(), EXIT_KVM_UNAVAILABLE);
    }

    #[test]
    fn one_line_messages() {
        let p = PathBuf::from("/img");
        for e in [
            ShimError::ImageNotFound { path: p.clone() },
            ShimError::NotElf { path: p.clone() },
            ShimError::NoPvhNote { path: p.clone() },
            ShimError::BadCpuCount { cpus: 0, max: 64 },
            ShimError::CmdlineTooLong {
                len: 3000,
                max: 2047,
            },
        ] {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
        }
        let failed = ShimError::VmFailed {
            vcpu: 1,
            reason: "guest triple-faulted".into(),
            regs: "  RIP=0".into(),
        };
        assert_eq!(
            failed.to_string().lines().next(),
            Some("guest triple-faulted on vCPU 1")
        );
        assert_eq!(failed.exit_code(), EXIT_VM_FAILED);
    }
}
