//! The virtio-net device of the shim: its configuration ([`NetConfig`], [`NetBackend`]), the
//! device model (virtio-mmio at [`NET_MMIO_BASE`], multi-queue, Toeplitz RSS), its backends
//! (TAP, inter-VM switch), the pcap capture and the device thread.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub mod backend;
pub mod ctrl;
pub mod device;
pub mod header;
pub mod pcap;
pub mod rss;
pub mod setup;
pub mod stats;
pub mod switch;
pub mod tap;
pub mod worker;

#[cfg(test)]
mod device_tests;
#[cfg(test)]
pub(crate) mod test_driver;

pub use stats::{Drops, NetStats, QueueStats};

/// Guest-physical base of the virtio-mmio register page.
pub const NET_MMIO_BASE: u64 = 0xd000_0000;
/// Size of the register page.
pub const NET_MMIO_SIZE: u64 = 0x1000;
/// IOAPIC pin (GSI) of the device interrupt.
pub const NET_GSI: u32 = 5;
/// The kernel command line word that describes the device (Linux `virtio_mmio.device=`).
pub const NET_CMDLINE: &str = "virtio_mmio.device=4K@0xd0000000:5";
/// Most queue pairs the device offers.
pub const MAX_QUEUE_PAIRS: u32 = 16;
/// QueueNumMax of every queue.
pub const QUEUE_NUM_MAX: u16 = 256;

/// Where the NIC's frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetBackend {
    /// A TAP interface of this name (created if missing and permitted).
    Tap(String),
    /// An inter-VM switch: a directory of unix datagram sockets, one per VM.
    Switch(PathBuf),
}

/// A `--net` specification that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid --net {spec:?}: {reason}")]
pub struct NetSpecError {
    /// The specification given.
    pub spec: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl FromStr for NetBackend {
    type Err = NetSpecError;

    /// Parses `tap:NAME` (NAME: 1..=15 bytes, no `/`, whitespace or NUL) or `switch:DIR`.
    fn from_str(spec: &str) -> Result<Self, NetSpecError> {
        let err = |reason| NetSpecError {
            spec: spec.to_string(),
            reason,
        };
        if let Some(name) = spec.strip_prefix("tap:") {
            if name.is_empty() {
                return Err(err("the TAP interface name is empty (use tap:NAME)"));
            }
            if name.len() > 15 {
                return Err(err("a TAP interface name has at most 15 bytes"));
            }
            if name
                .bytes()
                .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
            {
                return Err(err(
                    "a TAP interface name cannot contain '/', ':', NUL or spaces",
                ));
            }
            Ok(NetBackend::Tap(name.to_string()))
        } else if let Some(dir) = spec.strip_prefix("switch:") {
            if dir.is_empty() {
                return Err(err("the switch directory is empty (use switch:DIR)"));
            }
            Ok(NetBackend::Switch(PathBuf::from(dir)))
        } else {
            Err(err("expected tap:NAME or switch:DIR"))
        }
    }
}

impl fmt::Display for NetBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetBackend::Tap(n) => write!(f, "tap:{n}"),
            NetBackend::Switch(d) => write!(f, "switch:{}", d.display()),
        }
    }
}

/// Which device the VM's NIC is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NicModel {
    /// virtio-net over MMIO (multi-queue, Toeplitz RSS).
    #[default]
    Virtio,
    /// An Intel 82599 on PCI (`crate::ixgbe`): the guest's ixgbe driver.
    Ixgbe,
}

/// The VM's NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Where frames go.
    pub backend: NetBackend,
    /// The device model (default virtio-net).
    pub model: NicModel,
    /// MAC address (default: 52:54:00 and three random bytes).
    pub mac: Option<[u8; 6]>,
    /// Queue pairs, 1..=16 (default: the vCPU count, at most 16).
    pub queues: Option<u32>,
    /// Capture every frame into this pcap file.
    pub pcap: Option<PathBuf>,
    /// Toeplitz key, at least 16 bytes (default: [`rss::MICROSOFT_RSS_KEY`]).
    pub rss_key: Option<Vec<u8>>,
}

impl NetConfig {
    /// A NIC on `backend` with every other setting at its default.
    pub fn new(backend: NetBackend) -> Self {
        NetConfig {
            backend,
            model: NicModel::Virtio,
            mac: None,
            queues: None,
            pcap: None,
            rss_key: None,
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `-` separators); refuses multicast addresses.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("invalid MAC address {s:?}: use six hex bytes like 52:54:00:12:34:56");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "invalid MAC address {s:?}: it is a multicast address (lowest bit of the first byte set)"
        ));
    }
    Ok(mac)
}

/// Parses a hex string (optional `0x`, `:` separators allowed) into bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if t.is_empty() || !t.len().is_multiple_of(2) {
        return Err(format!(
            "invalid hex string {s:?}: need an even number of hex digits"
        ));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&t[i..i + 2], 16).map_err(|_| format!("invalid hex string {s:?}"))
        })
        .collect()
}

/// `n` random bytes from the kernel (getrandom); falls back to time and pid bits.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // SAFETY: `b` is a valid, writable buffer of exactly `N` bytes for the duration of the call.
    let got = unsafe { libc::getrandom(b.as_mut_ptr().cast(), N, 0) };
    if usize::try_from(got).ok() != Some(N) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
            ^ u64::from(std::process::id()) << 40;
        for (i, x) in b.iter_mut().enumerate() {
            *x = (seed >> ((i % 8) * 8)) as u8 ^ (i as u8);
        }
    }
    b
}

/// The default MAC address: 52:54:00 followed by three random bytes.
pub fn default_mac() -> [u8; 6] {
    let r: [u8; 3] = random_bytes();
    [0x52, 0x54, 0x00, r[0], r[1], r[2]]
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs() {
        assert_eq!("tap:ftap0".parse(), Ok(NetBackend::Tap("ftap0".into())));
        assert_eq!(
            "switch:/tmp/sw".parse(),
            Ok(NetBackend::Switch(PathBuf::from("/tmp/sw")))
        );
        for bad in [
            "",
            "tap:",
            "tap:a/b",
            "tap:0123456789abcdef",
            "switch:",
            "vde:x",
        ] {
            let e = bad.parse::<NetBackend>().unwrap_err();
            assert_eq!(e.to_string().lines().count(), 1);
            assert!(e.to_string().starts_with("invalid --net"), "{e}");
        }
        assert_eq!(NetBackend::Tap("t".into()).to_string(), "tap:t");
    }

    #[test]
    fn macs_and_hex() {
        assert_eq!(
            parse_mac("aa:bb:cc:dd:ee:fe").unwrap(),
            [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xfe]
        );
        assert!(
            parse_mac("01:00:5e:00:00:01")
                .unwrap_err()
                .contains("multicast")
        );
        assert!(parse_mac("aa:bb:cc:dd:ee").is_err());
        assert!(parse_mac("aa:bb:cc:dd:ee:fff").is_err());
        assert!(parse_mac("aa:bb:cc:dd:ee:gg").is_err());
        let m = default_mac();
        assert_eq!(&m[..3], &[0x52, 0x54, 0x00]);
        assert_eq!(
            format_mac(&[0x52, 0x54, 0, 1, 0xab, 3]),
            "52:54:00:01:ab:03"
        );
        assert_eq!(parse_hex("0x0aff").unwrap(), vec![10, 255]);
        assert_eq!(parse_hex("0a:ff").unwrap(), vec![10, 255]);
        assert!(parse_hex("abc").is_err() && parse_hex("zz").is_err());
    }
}
