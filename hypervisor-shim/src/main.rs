//! `ferrix-shim`: boots a PVH ELF image under KVM with the guest console on stdout.
//!
//! Exit status: the guest's exit code (mod 256) when it exits, 124 on timeout, otherwise the
//! error class of [`ShimError::exit_code`] (2 usage, 3 image, 4 KVM unavailable, 5 bad
//! configuration, 125 VM failed). A `--net` spec that does not parse, a TAP that cannot be
//! opened and a switch directory that cannot be created are configuration errors (5).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferrix_shim::error::EXIT_TIMEOUT;
use ferrix_shim::net::{NicModel, parse_hex, parse_mac};
use ferrix_shim::{NetBackend, NetConfig, ShimError, VmConfig, VmOutcome};

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
    /// Give the VM a NIC on this backend: tap:NAME or switch:DIR.
    #[arg(long, value_name = "BACKEND")]
    net: Option<String>,
    /// The NIC's device: virtio (virtio-net over MMIO) or ixgbe (an Intel 82599 on PCI).
    #[arg(long, requires = "net", value_enum, default_value = "virtio")]
    nic: NicModel,
    /// NIC MAC address (default 52:54:00 plus three random bytes).
    #[arg(long, requires = "net", value_parser = parse_mac)]
    mac: Option<[u8; 6]>,
    /// NIC queue pairs, 1..=16 (default: the vCPU count, at most 16).
    #[arg(long, requires = "net")]
    queues: Option<u32>,
    /// Write every frame the VM sends or receives to this pcap file.
    #[arg(long, requires = "net", value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Toeplitz RSS key in hex, 16..=40 bytes (default: Microsoft's standard key).
    #[arg(long = "rss-key", requires = "net", value_name = "HEX", value_parser = parse_key)]
    rss_key: Option<RssKey>,
    /// Kernel command line words (joined with spaces).
    #[arg(last = true)]
    args: Vec<String>,
}

/// A parsed `--rss-key` (a newtype so clap does not treat it as a list).
#[derive(Clone, Debug)]
struct RssKey(Vec<u8>);

fn parse_key(s: &str) -> Result<RssKey, String> {
    parse_hex(s).map(RssKey)
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

/// The VM configuration of `args` (a bad `--net` spec is a configuration error).
fn config(args: Args) -> Result<VmConfig, ShimError> {
    let net = match args.net {
        None => None,
        Some(spec) => Some(NetConfig {
            backend: spec.parse::<NetBackend>()?,
            model: args.nic,
            mac: args.mac,
            queues: args.queues,
            pcap: args.pcap,
            rss_key: args.rss_key.map(|k| k.0),
        }),
    };
    Ok(VmConfig {
        image: args.image,
        cpus: args.cpus,
        mem_bytes: args.mem,
        cmdline: args.args.join(" "),
        timeout: args.timeout,
        net,
        stats_sink: None,
    })
}

fn main() -> ExitCode {
    let cfg = match config(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrix-shim: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
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

    #[test]
    fn net_options() {
        let a = Args::try_parse_from([
            "ferrix-shim",
            "img",
            "--net",
            "switch:/tmp/sw",
            "--mac",
            "52:54:00:aa:bb:cc",
            "--queues",
            "2",
            "--rss-key",
            "00112233445566778899aabbccddeeff",
        ])
        .unwrap();
        let cfg = config(a).unwrap();
        let net = cfg.net.unwrap();
        assert_eq!(net.backend, NetBackend::Switch("/tmp/sw".into()));
        assert_eq!(net.mac, Some([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]));
        assert_eq!(
            (net.queues, net.rss_key.map(|k| k.len())),
            (Some(2), Some(16))
        );
        let bad = Args::try_parse_from(["ferrix-shim", "img", "--net", "eth0"]).unwrap();
        let e = config(bad).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(
            Args::try_parse_from(["ferrix-shim", "img", "--mac", "52:54:00:aa:bb:cc"]).is_err()
        );
        assert!(
            Args::try_parse_from(["ferrix-shim", "img", "--net", "tap:t", "--mac", "zz"]).is_err()
        );
    }
}
