//! Static interface configuration from the kernel command line.
//!
//! Recognised tokens (all others are ignored, so the whole command line can be passed):
//! * `ferrix.ip=A.B.C.D/N`: our address and prefix length (required);
//! * `ferrix.gw=A.B.C.D`: default gateway, on our subnet (optional: without it only the local
//!   subnet is reachable);
//! * `ferrix.mac=aa:bb:cc:dd:ee:ff`: overrides the NIC's MAC (optional).
//!
//! The MTU is the NIC's (default [`ETH_MTU`]).

use crate::eth::{ETH_MTU, MacAddr};
use core::fmt;
use core::net::Ipv4Addr;

/// The configuration of one interface, shared by every core's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfConfig {
    /// Our MAC address.
    pub mac: MacAddr,
    /// Our IPv4 address.
    pub ip: Ipv4Addr,
    /// Subnet prefix length, 0..=32.
    pub prefix_len: u8,
    /// Next hop for destinations off the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Largest IP datagram, header included.
    pub mtu: usize,
}

/// A malformed or missing network option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `ferrix.ip` is not `A.B.C.D/N`.
    InvalidIp,
    /// The prefix length is not a number in 0..=32.
    InvalidPrefix,
    /// `ferrix.gw` is not `A.B.C.D`.
    InvalidGateway,
    /// `ferrix.mac` is not six hex pairs separated by `:` or is a group address.
    InvalidMac,
    /// An option appears twice.
    Duplicate,
    /// No `ferrix.ip` (and no other source of an address).
    MissingIp,
    /// The gateway is not on our subnet.
    GatewayOffSubnet,
    /// The address is unspecified, broadcast or multicast.
    UnusableIp,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::InvalidIp => "ferrix.ip must be A.B.C.D/N",
            ConfigError::InvalidPrefix => "ferrix.ip prefix length must be 0..=32",
            ConfigError::InvalidGateway => "ferrix.gw must be A.B.C.D",
            ConfigError::InvalidMac => "ferrix.mac must be a unicast aa:bb:cc:dd:ee:ff",
            ConfigError::Duplicate => "a ferrix.ip/gw/mac option is given twice",
            ConfigError::MissingIp => "no ferrix.ip=A.B.C.D/N on the command line",
            ConfigError::GatewayOffSubnet => "ferrix.gw is not on the ferrix.ip subnet",
            ConfigError::UnusableIp => "ferrix.ip is unspecified, broadcast or multicast",
        })
    }
}

impl core::error::Error for ConfigError {}

impl IfConfig {
    /// Builds the configuration from command-line `tokens`; `nic_mac` is used unless
    /// `ferrix.mac` overrides it, and the MTU is [`ETH_MTU`].
    pub fn from_cmdline<'a, I>(tokens: I, nic_mac: MacAddr) -> Result<IfConfig, ConfigError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut ip = None;
        let mut gateway = None;
        let mut mac = None;
        for tok in tokens {
            let Some((key, value)) = tok.split_once('=') else {
                continue;
            };
            match key {
                "ferrix.ip" => set_once(&mut ip, parse_cidr(value)?)?,
                "ferrix.gw" => set_once(
                    &mut gateway,
                    value.parse().map_err(|_| ConfigError::InvalidGateway)?,
                )?,
                "ferrix.mac" => set_once(&mut mac, parse_mac(value)?)?,
                _ => {}
            }
        }
        let (ip, prefix_len) = ip.ok_or(ConfigError::MissingIp)?;
        let cfg = IfConfig {
            mac: mac.unwrap_or(nic_mac),
            ip,
            prefix_len,
            gateway,
            mtu: ETH_MTU,
        };
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return Err(ConfigError::UnusableIp);
        }
        if let Some(gw) = gateway
            && !cfg.on_subnet(gw)
        {
            return Err(ConfigError::GatewayOffSubnet);
        }
        Ok(cfg)
    }

    /// The subnet mask as a 32-bit number.
    pub fn netmask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    /// True if `addr` is on our subnet (reachable without the gateway).
    pub fn on_subnet(&self, addr: Ipv4Addr) -> bool {
        (addr.to_bits() ^ self.ip.to_bits()) & self.netmask() == 0
    }

    /// The directed broadcast address of our subnet (RFC 919), if the prefix leaves host bits
    /// (/31 and /32 have none, RFC 3021).
    pub fn subnet_broadcast(&self) -> Option<Ipv4Addr> {
        (self.prefix_len < 31).then(|| Ipv4Addr::from_bits(self.ip.to_bits() | !self.netmask()))
    }

    /// The next hop for `dst`: `dst` itself on the subnet, else the gateway (None: no route).
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.on_subnet(dst) {
            Some(dst)
        } else {
            self.gateway
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T) -> Result<(), ConfigError> {
    if slot.is_some() {
        return Err(ConfigError::Duplicate);
    }
    *slot = Some(v);
    Ok(())
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), ConfigError> {
    let (addr, prefix) = s.split_once('/').ok_or(ConfigError::InvalidIp)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| ConfigError::InvalidIp)?;
    let prefix: u8 = match prefix.parse() {
        Ok(p) if p <= 32 && !prefix.starts_with('+') => p,
        _ => return Err(ConfigError::InvalidPrefix),
    };
    Ok((addr, prefix))
}

fn parse_mac(s: &str) -> Result<MacAddr, ConfigError> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next().ok_or(ConfigError::InvalidMac)?;
        if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ConfigError::InvalidMac);
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| ConfigError::InvalidMac)?;
    }
    let mac = MacAddr(out);
    if parts.next().is_some() || mac.is_multicast() {
        return Err(ConfigError::InvalidMac);
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIC: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    fn parse(s: &str) -> Result<IfConfig, ConfigError> {
        IfConfig::from_cmdline(s.split_ascii_whitespace(), NIC)
    }

    #[test]
    fn full() {
        let c = parse(
            "console=ttyS0 ferrix.cpus=4 ferrix.ip=10.0.0.2/24 ferrix.gw=10.0.0.1 \
                       ferrix.mac=02:00:00:aa:BB:cc foo",
        )
        .unwrap();
        assert_eq!(c.ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(c.prefix_len, 24);
        assert_eq!(c.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(c.mac, MacAddr([2, 0, 0, 0xaa, 0xbb, 0xcc]));
        assert_eq!(c.mtu, 1500);
        assert_eq!(c.netmask(), 0xffff_ff00);
        assert!(c.on_subnet(Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!c.on_subnet(Ipv4Addr::new(10, 0, 1, 1)));
        assert_eq!(c.subnet_broadcast(), Some(Ipv4Addr::new(10, 0, 0, 255)));
        assert_eq!(c.next_hop(Ipv4Addr::new(8, 8, 8, 8)), c.gateway);
    }

    #[test]
    fn defaults_and_prefix_edges() {
        let c = parse("ferrix.ip=192.168.1.5/32").unwrap();
        assert_eq!((c.mac, c.gateway, c.netmask()), (NIC, None, u32::MAX));
        assert_eq!(c.subnet_broadcast(), None);
        assert_eq!(c.next_hop(Ipv4Addr::new(192, 168, 1, 6)), None);
        let c = parse("ferrix.ip=192.168.1.5/0").unwrap();
        assert_eq!(c.netmask(), 0);
        assert!(c.on_subnet(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn errors() {
        use ConfigError::*;
        for (s, e) in [
            ("", MissingIp),
            ("ferrix.gw=10.0.0.1", MissingIp),
            ("ferrix.ip=10.0.0.2", InvalidIp),
            ("ferrix.ip=10.0.0/24", InvalidIp),
            ("ferrix.ip=10.0.0.256/24", InvalidIp),
            ("ferrix.ip=10.0.0.2/33", InvalidPrefix),
            ("ferrix.ip=10.0.0.2/", InvalidPrefix),
            ("ferrix.ip=10.0.0.2/+8", InvalidPrefix),
            ("ferrix.ip=10.0.0.2/24 ferrix.gw=x", InvalidGateway),
            ("ferrix.ip=10.0.0.2/24 ferrix.gw=10.0.1.1", GatewayOffSubnet),
            ("ferrix.ip=10.0.0.2/24 ferrix.ip=10.0.0.3/24", Duplicate),
            ("ferrix.ip=255.255.255.255/24", UnusableIp),
            (
                "ferrix.ip=10.0.0.2/24 ferrix.mac=01:00:5e:00:00:01",
                InvalidMac,
            ),
            (
                "ferrix.ip=10.0.0.2/24 ferrix.mac=02:00:00:00:00",
                InvalidMac,
            ),
            (
                "ferrix.ip=10.0.0.2/24 ferrix.mac=02:00:00:00:00:00:00",
                InvalidMac,
            ),
            (
                "ferrix.ip=10.0.0.2/24 ferrix.mac=02:00:00:00:00:+1",
                InvalidMac,
            ),
            (
                "ferrix.ip=10.0.0.2/24 ferrix.mac=02-00-00-00-00-01",
                InvalidMac,
            ),
        ] {
            assert_eq!(parse(s), Err(e), "{s}");
            assert!(!e.to_string().is_empty());
        }
    }
}
