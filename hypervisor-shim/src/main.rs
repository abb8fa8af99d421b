//! `ferrix-shim`: boots a PVH ELF image under KVM with the guest console on stdout.
//!
//! Exit status: the guest's exit code (mod 256) when it exits, 124 on timeout, otherwise the
//! error class of [`ShimError::exit_code`] (2 usage, 3 image, 4 KVM unavailable, 5 bad
//! configuration, 125 VM failed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferrix_shim::error::EXIT_TIMEOUT;
use ferrix_shim::{VmConfig, VmOutcome};

/// Boot a ferrix PVH image under KVM.
#[derive(Parser, Debug)]
#[command(name = "ferrix-shim", version, about)]
struct Args {
    /// The PVH ELF image to boot.
    image: PathBuf,
    /// Number of vCPUs (1..=64).
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Guest RAM: plain bytes or with a K/M/G suffix (64M, 1G).
    #[arg(long, default_value = "128M", value_parser = parse_size)]
    mem: u64,
    /// Stop the VM after this many seconds (exit status 124).
    #[arg(long, value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// Kernel command line words (joined with spaces).
    #[arg(last = true)]
    args: Vec<String>,
}

/// Parses `123`, `64K`, `64M`, `1G` (binary units, optional trailing `B`/`iB`).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: use bytes or a K/M/G suffix, e.g. 64M or 1G"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a positive number of seconds (fractions allowed).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("invalid number of seconds {s:?}"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("timeout must be a positive number of seconds, not {s:?}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = VmConfig {
        image: args.image,
        cpus: args.cpus,
        mem_bytes: args.mem,
        cmdline: args.args.join(" "),
        timeout: args.timeout,
    };
    match ferrix_shim::run(&cfg, Box::new(std::io::stdout())) {
        Ok(VmOutcome::Exited(code)) => ExitCode::from(code as u8),
        Ok(VmOutcome::TimedOut) => {
            eprintln!(
                "ferrix-shim: timed out after {:?}; all vCPUs stopped",
                cfg.timeout.unwrap_or_default()
            );
            ExitCode::from(EXIT_TIMEOUT as u8)
        }
        Err(e) => {
            eprintln!("ferrix-shim: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(
            parse_seconds("0").is_err()
                && parse_seconds("-1").is_err()
                && parse_seconds("x").is_err()
        );
    }

    #[test]
    fn cli_parses() {
        let a = Args::try_parse_from([
            "ferrix-shim",
            "img",
            "--cpus",
            "2",
            "--mem",
            "64M",
            "--",
            "a",
            "b=c",
        ])
        .unwrap();
        assert_eq!(
            (a.cpus, a.mem, a.args.join(" ")),
            (2, 64 << 20, "a b=c".to_string())
        );
    }
}
