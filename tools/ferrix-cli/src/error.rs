//! The errors of the `ferrix` command and the process exit code each one maps to.
//!
//! Every error displays as one line without the `ferrix: ` prefix (the binary adds it).
//! Exit codes: 2 for a bad argument, 1 for a failed build or an unwritable `--png` / `--csv`, 125
//! ([`ferrix_abi::exit::HOST_VM_FAILED`]) when the VMM could not run the guest to an exit.

use std::path::PathBuf;

/// Exit code for usage and validation errors (same as clap's).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when building the image failed.
pub const EXIT_BUILD: i32 = 1;
/// Exit code when a result file (`--png`, `--csv`) could not be written.
pub const EXIT_OUTPUT: i32 = 1;
/// Exit code when the VMM failed (could not start, guest reset, shim error).
pub const EXIT_VM_FAILED: i32 = ferrix_abi::exit::HOST_VM_FAILED as i32;

/// Everything that can stop `ferrix` before the guest returns an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad command-line value (out of range, unparsable).
    #[error("{0}")]
    Usage(String),
    /// The app named on the command line is not a crate under `apps/`.
    #[error("unknown app '{name}' (apps under {}: {})", dir.display(), list_or_none(known))]
    UnknownApp {
        /// The name given.
        name: String,
        /// The `apps/` directory searched.
        dir: PathBuf,
        /// The crate names found there.
        known: Vec<String>,
    },
    /// A `--profile` that is neither a built-in profile nor a readable file, or a malformed one.
    #[error("profile {name}: {msg}")]
    Profile {
        /// Profile name or file.
        name: String,
        /// What is wrong with it.
        msg: String,
    },
    /// The workspace root (or a crate manifest) could not be found or read.
    #[error("{0}")]
    Workspace(String),
    /// `cargo` could not be started.
    #[error("cannot start cargo ({cargo}): {source}")]
    CargoSpawn {
        /// The cargo binary tried.
        cargo: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// `cargo build` ran and failed.
    #[error("building {app} failed: cargo ended with {status} (its output is above)")]
    BuildFailed {
        /// The crate being built.
        app: String,
        /// Cargo's exit status.
        status: std::process::ExitStatus,
    },
    /// The build succeeded but the expected image is missing.
    #[error("build of {app} did not produce {}", image.display())]
    ImageMissing {
        /// The crate being built.
        app: String,
        /// Where the image was expected.
        image: PathBuf,
    },
    /// The QEMU binary does not exist.
    #[error(
        "QEMU not found ({bin}): install it with `apt-get install qemu-system-x86` or set FERRIX_QEMU"
    )]
    QemuNotFound {
        /// The binary tried.
        bin: String,
    },
    /// A program a benchmark drives (a load generator, a Linux baseline server) is missing.
    #[error("{tool} not found on PATH: install it with `apt-get install {package}`")]
    ToolNotFound {
        /// The program (or the names tried, `a / b`).
        tool: String,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// The QEMU binary exists but could not be started.
    #[error("cannot start QEMU ({bin}): {source}")]
    QemuSpawn {
        /// The binary tried.
        bin: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// QEMU itself failed (bad option, missing kernel, killed by a signal).
    #[error("QEMU failed ({status}): {detail}")]
    QemuFailed {
        /// How QEMU ended, as text.
        status: String,
        /// The first meaningful line QEMU printed on stderr.
        detail: String,
    },
    /// QEMU exited with status 0: the guest reset (`-no-reboot` turns a reset into an exit).
    #[error(
        "the guest reset (triple fault?) or QEMU exited without an exit code{}",
        suffix(detail)
    )]
    GuestReset {
        /// QEMU's stderr, if it said anything.
        detail: String,
    },
    /// The ferrix shim failed.
    #[error("{0}")]
    Shim(#[from] ferrix_shim::ShimError),
    /// An I/O error while running the VM (pipes, threads).
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A benchmark could not run (a part it cannot do without failed).
    #[error("bench: {0}")]
    Bench(String),
    /// `ferrix deploy` could not run its experiment.
    #[error("deploy: {0}")]
    Deploy(String),
    /// A plot or table (`--png`, `--csv`) could not be written.
    #[error("{0}")]
    Output(#[from] ferrix_latplot::WriteError),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::UnknownApp { .. } | CliError::Profile { .. } => {
                EXIT_USAGE
            }
            CliError::Workspace(_)
            | CliError::CargoSpawn { .. }
            | CliError::BuildFailed { .. }
            | CliError::ImageMissing { .. } => EXIT_BUILD,
            CliError::QemuNotFound { .. }
            | CliError::ToolNotFound { .. }
            | CliError::QemuSpawn { .. }
            | CliError::QemuFailed { .. }
            | CliError::GuestReset { .. }
            | CliError::Shim(_)
            | CliError::Io { .. }
            | CliError::Bench(_)
            | CliError::Deploy(_) => EXIT_VM_FAILED,
            CliError::Output(_) => EXIT_OUTPUT,
        }
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_by_kind() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Workspace("x".into()).exit_code(), 1);
        assert_eq!(CliError::QemuNotFound { bin: "q".into() }.exit_code(), 125);
        assert_eq!(
            CliError::GuestReset {
                detail: String::new()
            }
            .exit_code(),
            125
        );
    }

    #[test]
    fn messages_are_one_line() {
        let e = CliError::UnknownApp {
            name: "nope".into(),
            dir: PathBuf::from("/w/apps"),
            known: vec!["hello".into(), "ktest".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown app 'nope' (apps under /w/apps: hello, ktest)"
        );
        let e = CliError::QemuNotFound { bin: "qemu".into() };
        assert!(e.to_string().contains("apt-get install qemu-system-x86"));
        assert!(!e.to_string().contains('\n'));
    }
}
