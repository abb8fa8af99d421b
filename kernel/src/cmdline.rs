//! The kernel command line: `ferrix.*` tokens configure the kernel, every other token is an
//! argument for the app (`ferrix::args()`).
//!
//! Recognised kernel options:
//! * `ferrix.cpus=N`: number of CPUs to start (the VMM knows it; both the `ferrix` command and
//!   the shim pass it). Default 1.
//! * `ferrix.bootstats`: print TSC timestamps at entry and exit (used by `ferrix bench boot`).
//! * `ferrix.stats`: print per-core network statistics at exit (`ferrix run --stats`).
//! * `ferrix.netcost`: time every busy poll in stages (driver receive, stack and app, TCP,
//!   transmit) and print the per-frame figures at exit (`net/cost.rs`).
//! * `ferrix.stats-ms=N`: push a live statistics record (`ferrix_abi::stats`) every N ms, and
//!   a final one at exit (`ferrix run --stats-live / --stats-json`). Default 0: off.
//! * `ferrix.profile=HZ`: sample every core's instruction pointer HZ times a second and print
//!   the hottest addresses at exit (`ferrix profile`).
//! * `ferrix.ip=A.B.C.D/N`, `ferrix.gw=A.B.C.D`, `ferrix.mac=..`: the network interface
//!   (parsed and checked by `ferrix_net::IfConfig`).
//! * `ferrix.sched=zygos|zygos-noipi|partitioned`: how cores share TCP work in
//!   `ferrix::net::serve_tcp` (default `zygos`; see `ferrix_sched::Policy`).
//! * `ferrix.ipi-interval-ns=N`: at most one scheduler IPI per core per N ns (default 4000,
//!   the reference's rate limit; 0: no limit).
//! * `ferrix.idle-halt-us=N`: in `serve_tcp`, a core that found nothing to do for N µs halts
//!   (for up to 100 µs, or until an interrupt) instead of polling, giving its CPU back to the
//!   host (default 0: always poll, as ZygOS does).

use ferrix_sched::Policy;

/// Parsed kernel options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Requested CPU count (`ferrix.cpus`).
    pub cpus: usize,
    /// Print boot statistics (`ferrix.bootstats`).
    pub bootstats: bool,
    /// Print network statistics at exit (`ferrix.stats`).
    pub stats: bool,
    /// Live statistics interval in ms (`ferrix.stats-ms=N`; 0: off).
    pub stats_ms: u32,
    /// Time busy polls in stages (`ferrix.netcost`).
    pub netcost: bool,
    /// Sampling profiler rate in Hz (`ferrix.profile=HZ`; 0: off).
    pub profile_hz: u32,
    /// The scheduling policy (`ferrix.sched`).
    pub sched: Policy,
    /// Minimum interval between scheduler IPIs to one core (`ferrix.ipi-interval-ns`).
    pub ipi_interval_ns: u64,
    /// Idle time before a serving core halts, µs (`ferrix.idle-halt-us`; 0: never).
    pub idle_halt_us: u64,
    /// Probe PCI bus 0 even under the ferrix shim (`ferrix.pci=1`: the shim emulates a PCI
    /// device, the 82599; otherwise every probe would be a VM exit for nothing).
    pub pci: bool,
}

/// A problem in a `ferrix.*` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// `ferrix.cpus` is not a number in 1..=max.
    BadCpus(&'a str),
    /// `ferrix.profile` is not a rate in 1..=1,000,000 Hz.
    BadProfile(&'a str),
    /// `ferrix.stats-ms` is not an interval in `ferrix_abi::stats::INTERVAL_MS`.
    BadStatsMs(&'a str),
    /// `ferrix.sched` names no policy.
    BadSched(&'a str),
    /// `ferrix.ipi-interval-ns` is not a number of nanoseconds.
    BadIpiInterval(&'a str),
    /// `ferrix.idle-halt-us` is not a number of microseconds.
    BadIdleHalt(&'a str),
    /// An unknown `ferrix.` option.
    Unknown(&'a str),
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            cpus: 1,
            bootstats: false,
            stats: false,
            stats_ms: 0,
            netcost: false,
            profile_hz: 0,
            sched: Policy::default(),
            ipi_interval_ns: ferrix_sched::ipi::REFERENCE_MIN_INTERVAL_NS,
            idle_halt_us: 0,
            pci: false,
        }
    }
}

/// Parses the kernel options out of `cmdline`; `max_cpus` bounds `ferrix.cpus`.
pub fn parse(cmdline: &str, max_cpus: usize) -> Result<KernelOptions, CmdlineError<'_>> {
    let mut opts = KernelOptions::default();
    for tok in cmdline.split_ascii_whitespace() {
        let Some(opt) = tok.strip_prefix("ferrix.") else {
            continue;
        };
        match opt.split_once('=') {
            Some(("cpus", v)) => match v.parse::<usize>() {
                Ok(n) if (1..=max_cpus).contains(&n) => opts.cpus = n,
                _ => return Err(CmdlineError::BadCpus(tok)),
            },
            None if opt == "bootstats" => opts.bootstats = true,
            None if opt == "stats" => opts.stats = true,
            None if opt == "netcost" => opts.netcost = true,
            Some(("stats-ms", v)) => match v.parse::<u32>() {
                Ok(ms) if ferrix_abi::stats::INTERVAL_MS.contains(&ms) => opts.stats_ms = ms,
                _ => return Err(CmdlineError::BadStatsMs(tok)),
            },
            Some(("profile", v)) => match v.parse::<u32>() {
                Ok(hz) if (1..=ferrix_abi::MAX_PROFILE_HZ).contains(&hz) => opts.profile_hz = hz,
                _ => return Err(CmdlineError::BadProfile(tok)),
            },
            Some(("sched", v)) => match v.parse::<Policy>() {
                Ok(p) => opts.sched = p,
                Err(_) => return Err(CmdlineError::BadSched(tok)),
            },
            Some(("ipi-interval-ns", v)) => match v.parse::<u64>() {
                Ok(ns) => opts.ipi_interval_ns = ns,
                Err(_) => return Err(CmdlineError::BadIpiInterval(tok)),
            },
            Some(("idle-halt-us", v)) => match v.parse::<u64>() {
                Ok(us) => opts.idle_halt_us = us,
                Err(_) => return Err(CmdlineError::BadIdleHalt(tok)),
            },
            Some(("pci", "1")) => opts.pci = true,
            Some(("ip" | "gw" | "mac", _)) => {} // the network's, checked by ferrix-net
            _ => return Err(CmdlineError::Unknown(tok)),
        }
    }
    Ok(opts)
}

/// Whether a token is for the kernel or the VMM rather than the app.
fn is_kernel_token(t: &str) -> bool {
    t.starts_with("ferrix.") || t.starts_with("virtio_mmio.")
}

/// The app's arguments: every token that is not a kernel option (`ferrix.*`) or a device
/// description from the VMM (`virtio_mmio.device=...`).
pub fn app_args(cmdline: &str) -> impl Iterator<Item = &str> {
    cmdline
        .split_ascii_whitespace()
        .filter(|t| !is_kernel_token(t))
}

/// A virtio-mmio device announced on the command line (Linux syntax, as QEMU's microvm and
/// the ferrix shim write it): `virtio_mmio.device=<size>@<base>:<irq>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmioDevice {
    pub base: u64,
    pub size: u64,
    pub irq: u32,
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    parse_u64(num)?.checked_mul(mult)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The virtio-mmio devices on the command line: `Err(token)` for a malformed description.
pub fn virtio_mmio_devices(cmdline: &str) -> impl Iterator<Item = Result<VirtioMmioDevice, &str>> {
    cmdline.split_ascii_whitespace().filter_map(|t| {
        let spec = t.strip_prefix("virtio_mmio.device=")?;
        let parsed = (|| {
            let (size, rest) = spec.split_once('@')?;
            let (base, irq) = rest.split_once(':')?;
            let irq = irq.split(':').next()?;
            let dev = VirtioMmioDevice {
                base: parse_u64(base)?,
                size: parse_size(size)?,
                irq: irq.parse().ok()?,
            };
            (dev.size > 0 && dev.base.checked_add(dev.size).is_some()).then_some(dev)
        })();
        Some(parsed.ok_or(t))
    })
}

/// Parses an app argument's value `v` of `key=v`; the error is the one line apps print.
pub fn arg_value<T: core::str::FromStr>(key: &str, v: &str) -> Result<T, alloc::string::String> {
    v.parse()
        .map_err(|_| alloc::format!("bad value for {key}: {v:?}"))
}

/// [`arg_value`] for a UDP or TCP port: 1 to 65535.
pub fn arg_port(key: &str, v: &str) -> Result<u16, alloc::string::String> {
    match arg_value::<u16>(key, v)? {
        0 => Err(alloc::format!("bad value for {key}: port 0")),
        p => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        assert_eq!(parse("", 64), Ok(KernelOptions::default()));
    }

    #[test]
    fn cpus_and_bootstats() {
        let o = parse(
            "x=1 ferrix.cpus=4  ferrix.bootstats y ferrix.ip=10.0.0.2/24 ferrix.stats",
            64,
        )
        .unwrap();
        assert_eq!(
            o,
            KernelOptions {
                cpus: 4,
                bootstats: true,
                stats: true,
                ..KernelOptions::default()
            }
        );
        assert_eq!(parse("ferrix.profile=997", 64).unwrap().profile_hz, 997);
        assert_eq!(
            parse("ferrix.profile=0", 64),
            Err(CmdlineError::BadProfile("ferrix.profile=0"))
        );
    }

    #[test]
    fn stats_interval() {
        assert_eq!(parse("ferrix.stats-ms=250", 64).unwrap().stats_ms, 250);
        assert_eq!(parse("", 64).unwrap().stats_ms, 0);
        for bad in [
            "ferrix.stats-ms=0",
            "ferrix.stats-ms=x",
            "ferrix.stats-ms=3600001",
        ] {
            assert_eq!(parse(bad, 64), Err(CmdlineError::BadStatsMs(bad)));
        }
    }

    #[test]
    fn bad_cpus_rejected() {
        assert_eq!(
            parse("ferrix.cpus=0", 64),
            Err(CmdlineError::BadCpus("ferrix.cpus=0"))
        );
        assert_eq!(
            parse("ferrix.cpus=65", 64),
            Err(CmdlineError::BadCpus("ferrix.cpus=65"))
        );
        assert_eq!(
            parse("ferrix.cpus=x", 64),
            Err(CmdlineError::BadCpus("ferrix.cpus=x"))
        );
    }

    #[test]
    fn scheduler_options() {
        let o = parse(
            "ferrix.sched=partitioned ferrix.ipi-interval-ns=0 ferrix.idle-halt-us=200",
            64,
        )
        .unwrap();
        assert_eq!(
            (o.sched, o.ipi_interval_ns, o.idle_halt_us),
            (Policy::Partitioned, 0, 200)
        );
        assert_eq!(
            parse("ferrix.idle-halt-us=x", 64),
            Err(CmdlineError::BadIdleHalt("ferrix.idle-halt-us=x"))
        );
        assert_eq!(parse("", 64).unwrap().sched, Policy::Zygos);
        assert_eq!(
            parse("ferrix.sched=fifo", 64),
            Err(CmdlineError::BadSched("ferrix.sched=fifo"))
        );
        assert_eq!(
            parse("ferrix.ipi-interval-ns=-1", 64),
            Err(CmdlineError::BadIpiInterval("ferrix.ipi-interval-ns=-1"))
        );
    }

    #[test]
    fn unknown_option_rejected() {
        assert_eq!(
            parse("ferrix.nope", 64),
            Err(CmdlineError::Unknown("ferrix.nope"))
        );
        assert!(parse("ferrix.pci=1", 64).unwrap().pci);
        assert!(parse("ferrix.netcost", 64).unwrap().netcost);
        assert!(!parse("", 64).unwrap().netcost);
        assert!(!parse("", 64).unwrap().pci);
        assert_eq!(
            parse("ferrix.pci=yes", 64),
            Err(CmdlineError::Unknown("ferrix.pci=yes"))
        );
    }

    #[test]
    fn virtio_mmio_tokens() {
        let c = "a virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=512@0xfeb00e00:12:3 \
                 virtio_mmio.device=oops b";
        let v: Vec<_> = virtio_mmio_devices(c).collect();
        assert_eq!(
            v[0],
            Ok(VirtioMmioDevice {
                base: 0xd000_0000,
                size: 4096,
                irq: 5
            })
        );
        assert_eq!(
            v[1],
            Ok(VirtioMmioDevice {
                base: 0xfeb0_0e00,
                size: 512,
                irq: 12
            })
        );
        assert_eq!(v[2], Err("virtio_mmio.device=oops"));
        assert_eq!(app_args(c).collect::<Vec<_>>(), ["a", "b"]);
        assert!(
            virtio_mmio_devices("virtio_mmio.device=0@0x1000:1")
                .next()
                .unwrap()
                .is_err()
        );
        assert!(
            virtio_mmio_devices("virtio_mmio.device=1K@0xffffffffffffffff:1")
                .next()
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn app_args_skip_kernel_options() {
        let v: Vec<_> = app_args(" a ferrix.cpus=2 b=c  ").collect();
        assert_eq!(v, ["a", "b=c"]);
    }
}
