//! `--net SPEC`: what network the VM gets, and how each VMM provides it.
//!
//! | spec | QEMU | shim |
//! |---|---|---|
//! | `user[:FWD,...]` with FWD = `udp:HOST:GUEST` or `tcp:HOST:GUEST` | slirp, host ports bound to 127.0.0.1 (no root) | – |
//! | `tap:NAME` | TAP device NAME, one queue per vCPU | TAP device NAME |
//! | `stream-listen:PATH` / `stream-connect:PATH` | a two-VM L2 link over a unix socket | – |
//! | `switch:DIR` | – | the shim's inter-VM switch in DIR (through `DIR/hub.sock` when a hub, e.g. `p4sim hub`, holds it) |
//!
//! Under QEMU the NIC is virtio-net-device (microvm, MMIO) or virtio-net-pci (q35); the
//! fragments live in `qemu/net-*.profile` and `qemu/nic-*.profile`.

use std::path::PathBuf;

/// A forwarded host port (slirp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub udp: bool,
    pub host: u16,
    pub guest: u16,
}

/// A parsed `--net` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetSpec {
    User(Vec<Forward>),
    Tap(String),
    StreamListen(PathBuf),
    StreamConnect(PathBuf),
    Switch(PathBuf),
}

impl NetSpec {
    /// Parses `--net`.
    pub fn parse(s: &str) -> Result<NetSpec, String> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        let need = |what: &str| {
            if arg.is_empty() {
                Err(format!(
                    "--net {kind}: needs {what} (e.g. {kind}:{})",
                    example(kind)
                ))
            } else {
                Ok(arg.to_string())
            }
        };
        match kind {
            "user" => {
                let mut fwds = Vec::new();
                for f in arg.split(',').filter(|f| !f.is_empty()) {
                    fwds.push(parse_forward(f)?);
                }
                Ok(NetSpec::User(fwds))
            }
            "tap" => {
                let name = need("an interface name")?;
                if name.len() > 15
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                {
                    return Err(format!(
                        "--net tap:{name}: not a valid interface name (at most 15 of [A-Za-z0-9._-])"
                    ));
                }
                Ok(NetSpec::Tap(name))
            }
            "stream-listen" => Ok(NetSpec::StreamListen(need("a socket path")?.into())),
            "stream-connect" => Ok(NetSpec::StreamConnect(need("a socket path")?.into())),
            "switch" => Ok(NetSpec::Switch(need("a directory")?.into())),
            _ => Err(format!(
                "--net {s}: unknown kind {kind:?} (user[:udp:HOST:GUEST,...], tap:NAME, stream-listen:PATH, stream-connect:PATH, switch:DIR)"
            )),
        }
    }

    /// Whether QEMU can provide this network.
    pub fn qemu_ok(&self) -> bool {
        !matches!(self, NetSpec::Switch(_))
    }

    /// Whether the shim can provide this network.
    pub fn shim_ok(&self) -> bool {
        matches!(self, NetSpec::Tap(_) | NetSpec::Switch(_))
    }

    /// The built-in netdev fragment for QEMU and its placeholder values.
    pub fn qemu_netdev(&self, cpus: u32) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            NetSpec::User(fwds) => {
                let hostfwd: String = fwds
                    .iter()
                    .map(|f| {
                        format!(
                            ",hostfwd={}:127.0.0.1:{}-:{}",
                            if f.udp { "udp" } else { "tcp" },
                            f.host,
                            f.guest
                        )
                    })
                    .collect();
                ("net-user", vec![("hostfwd", hostfwd)])
            }
            NetSpec::Tap(name) => (
                "net-tap",
                vec![("ifname", name.clone()), ("queues", cpus.to_string())],
            ),
            NetSpec::StreamListen(p) => (
                "net-stream-listen",
                vec![("path", p.to_string_lossy().into_owned())],
            ),
            NetSpec::StreamConnect(p) => (
                "net-stream-connect",
                vec![("path", p.to_string_lossy().into_owned())],
            ),
            NetSpec::Switch(_) => ("", vec![]),
        }
    }

    /// Queue pairs the QEMU backend offers.
    pub fn qemu_queues(&self, cpus: u32) -> u32 {
        if matches!(self, NetSpec::Tap(_)) {
            cpus
        } else {
            1
        }
    }
}

fn example(kind: &str) -> &'static str {
    match kind {
        "tap" => "ferrix0",
        "switch" => "/tmp/ferrix-switch",
        _ => "/tmp/ferrix-l2.sock",
    }
}

fn parse_forward(f: &str) -> Result<Forward, String> {
    let bad = || {
        format!(
            "--net user: bad forward {f:?} (want udp:HOSTPORT:GUESTPORT or tcp:HOSTPORT:GUESTPORT)"
        )
    };
    let mut it = f.split(':');
    let udp = match it.next() {
        Some("udp") => true,
        Some("tcp") => false,
        _ => return Err(bad()),
    };
    let host = it.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let guest = it.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(Forward { udp, host, guest })
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "--mac {s}: want six hex bytes like 52:54:00:12:34:56"
        ));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m =
            u8::from_str_radix(p, 16).map_err(|_| format!("--mac {s}: {p:?} is not a hex byte"))?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "--mac {s}: a multicast address cannot be a NIC's address"
        ));
    }
    Ok(mac)
}

/// Formats a MAC address.
pub fn format_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(NetSpec::parse("user"), Ok(NetSpec::User(vec![])));
        assert_eq!(
            NetSpec::parse("user:udp:5555:7,tcp:8080:80"),
            Ok(NetSpec::User(vec![
                Forward {
                    udp: true,
                    host: 5555,
                    guest: 7
                },
                Forward {
                    udp: false,
                    host: 8080,
                    guest: 80
                }
            ]))
        );
        assert_eq!(NetSpec::parse("tap:ft0"), Ok(NetSpec::Tap("ft0".into())));
        assert_eq!(
            NetSpec::parse("switch:/tmp/s"),
            Ok(NetSpec::Switch("/tmp/s".into()))
        );
        assert_eq!(
            NetSpec::parse("stream-listen:/tmp/l"),
            Ok(NetSpec::StreamListen("/tmp/l".into()))
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "wifi",
            "tap",
            "tap:way-too-long-interface",
            "tap:a b",
            "user:udp:1",
            "user:sctp:1:2",
            "user:udp:1:2:3",
            "user:udp:70000:1",
            "switch:",
        ] {
            assert!(NetSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vmm_support() {
        assert!(NetSpec::Tap("t".into()).qemu_ok() && NetSpec::Tap("t".into()).shim_ok());
        assert!(!NetSpec::User(vec![]).shim_ok());
        assert!(!NetSpec::Switch("/d".into()).qemu_ok());
    }

    #[test]
    fn user_forwards_render_to_loopback() {
        let spec = NetSpec::parse("user:udp:5555:7").unwrap();
        let (frag, vars) = spec.qemu_netdev(4);
        assert_eq!(frag, "net-user");
        assert_eq!(
            vars,
            vec![("hostfwd", ",hostfwd=udp:127.0.0.1:5555-:7".to_string())]
        );
        assert_eq!(spec.qemu_queues(4), 1);
        assert_eq!(NetSpec::Tap("t".into()).qemu_queues(4), 4);
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("52:54:00:ab:cd:ef"),
            Ok([0x52, 0x54, 0, 0xab, 0xcd, 0xef])
        );
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("52:54:00:ab:cd").is_err());
        assert!(parse_mac("52:54:00:ab:cd:zz").is_err());
        assert_eq!(
            format_mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
            "52:54:00:ab:cd:ef"
        );
    }
}
