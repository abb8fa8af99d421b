//! QEMU machine profiles: parsing a profile file and rendering it into QEMU's argv.
//!
//! A profile is text: `#` starts a comment (at the start of a token) running to the end of
//! the line; everything else is whitespace-separated tokens, one argv element each. Tokens may
//! contain the placeholders `{kernel}`, `{cpus}`, `{mem}` (MiB), `{cmdline}` and `{accel}`;
//! `{{` and `}}` stand for literal braces. Substitution happens after splitting, so a command
//! line with spaces stays one argv element. Pure code: the runner lives in `qemu_run.rs`.
//! The built-in profiles are the files in the workspace's `qemu/` directory, embedded here.

use crate::error::CliError;

/// The profile used when none is given.
pub const DEFAULT_PROFILE: &str = "microvm";

/// The built-in profiles: (name, text).
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("microvm", include_str!("../../../qemu/microvm.profile")),
    ("q35", include_str!("../../../qemu/q35.profile")),
    (
        "microvm-icount",
        include_str!("../../../qemu/microvm-icount.profile"),
    ),
];

/// Device fragments (`--net`, `--pcap`, `--stats-live`/`--stats-json`), appended to the machine profile: (name, text).
pub const NET_FRAGMENTS: &[(&str, &str)] = &[
    ("net-user", include_str!("../../../qemu/net-user.profile")),
    ("net-tap", include_str!("../../../qemu/net-tap.profile")),
    (
        "net-stream-listen",
        include_str!("../../../qemu/net-stream-listen.profile"),
    ),
    (
        "net-stream-connect",
        include_str!("../../../qemu/net-stream-connect.profile"),
    ),
    ("nic-mmio", include_str!("../../../qemu/nic-mmio.profile")),
    ("nic-pci", include_str!("../../../qemu/nic-pci.profile")),
    ("nic-pci", include_str!("../../../qemu/nic-pci.profile")),
    ("nic-pci", include_str!("../../../qemu/nic-pci.profile")),
    ("net-pcap", include_str!("../../../qemu/net-pcap.profile")),
    ("disk-mmio", include_str!("../../../qemu/disk-mmio.profile")),
    ("stats", include_str!("../../../qemu/stats.profile")),
];

/// The placeholders a profile may use (the last ones only in network fragments).
pub const PLACEHOLDERS: &[&str] = &[
    "kernel", "cpus", "mem", "cmdline", "accel", "hostfwd", "ifname", "queues", "path", "mac",
    "pcap", "vectors", "rss", "stats", "disk",
];

/// A parsed profile: QEMU's argv (without the binary) with placeholders still in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    tokens: Vec<String>,
}

/// The values substituted into a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileVars {
    /// Path of the image.
    pub kernel: String,
    /// Number of vCPUs.
    pub cpus: u32,
    /// Guest RAM in MiB.
    pub mem_mib: u64,
    /// The kernel command line.
    pub cmdline: String,
    /// `tcg` or `kvm`.
    pub accel: String,
    /// Values of the network placeholders (`hostfwd`, `ifname`, `queues`, `path`, `mac`, `pcap`).
    pub extra: Vec<(&'static str, String)>,
}

/// One piece of a token: literal text or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

impl Profile {
    /// Parses profile text; every placeholder must be known.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let mut tokens = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            for tok in line.split_whitespace() {
                if tok.starts_with('#') {
                    break;
                }
                let pieces = split_token(tok).map_err(|e| format!("line {}: {e}", lineno + 1))?;
                for p in pieces {
                    if let Piece::Var(v) = p
                        && !PLACEHOLDERS.contains(&v)
                    {
                        return Err(format!(
                            "line {}: unknown placeholder {{{v}}} (known: {})",
                            lineno + 1,
                            PLACEHOLDERS.join(", ")
                        ));
                    }
                }
                tokens.push(tok.to_string());
            }
        }
        if tokens.is_empty() {
            return Err("the profile is empty".to_string());
        }
        Ok(Profile { tokens })
    }

    /// Loads a profile by built-in name, or else from a file.
    pub fn load(name_or_file: &str) -> Result<Profile, CliError> {
        let err = |msg: String| CliError::Profile {
            name: name_or_file.to_string(),
            msg,
        };
        let text = match BUILTIN_PROFILES.iter().find(|(n, _)| *n == name_or_file) {
            Some((_, text)) => (*text).to_string(),
            None => std::fs::read_to_string(name_or_file).map_err(|e| {
                let names: Vec<&str> = BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect();
                err(format!(
                    "not a built-in profile ({}) nor a readable file: {e}",
                    names.join(", ")
                ))
            })?,
        };
        Profile::parse(&text).map_err(err)
    }

    /// A built-in network fragment.
    pub fn fragment(name: &str) -> Profile {
        let text = NET_FRAGMENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, t)| *t);
        // The fragments are part of the binary and covered by a unit test.
        Profile::parse(text).unwrap_or(Profile { tokens: Vec::new() })
    }

    /// The argv for QEMU with every placeholder replaced.
    pub fn render(&self, vars: &ProfileVars) -> Vec<String> {
        self.tokens
            .iter()
            .map(|tok| {
                // Tokens were validated by `parse`, so splitting cannot fail here.
                let pieces = split_token(tok).unwrap_or_default();
                pieces
                    .into_iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.to_string(),
                        Piece::Var("kernel") => vars.kernel.clone(),
                        Piece::Var("cpus") => vars.cpus.to_string(),
                        Piece::Var("mem") => vars.mem_mib.to_string(),
                        Piece::Var("cmdline") => vars.cmdline.clone(),
                        Piece::Var("accel") => vars.accel.clone(),
                        Piece::Var(v) => vars
                            .extra
                            .iter()
                            .find(|(k, _)| *k == v)
                            .map(|(_, val)| val.clone())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .collect()
    }
}

/// Splits a token into literal text and `{placeholder}` pieces.
fn split_token(tok: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = tok;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in token '{tok}'"))?;
            pieces.push(Piece::Var(&r[..end]));
            rest = &r[end + 1..];
        } else if rest.starts_with('}') {
            return Err(format!("stray '}}' in token '{tok}' (write '}}}}')"));
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            pieces.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> ProfileVars {
        ProfileVars {
            kernel: "/img/hello".into(),
            cpus: 2,
            mem_mib: 128,
            cmdline: "ferrix.cpus=2 a b".into(),
            accel: "tcg".into(),
            extra: Vec::new(),
        }
    }

    #[test]
    fn cmdline_with_spaces_stays_one_argument() {
        let p = Profile::parse("-kernel {kernel} -append {cmdline}").unwrap();
        assert_eq!(
            p.render(&vars()),
            ["-kernel", "/img/hello", "-append", "ferrix.cpus=2 a b"]
        );
    }

    #[test]
    fn placeholders_inside_tokens() {
        let p = Profile::parse("-accel {accel} -smp {cpus},sockets=1 -m size={mem}M").unwrap();
        assert_eq!(
            p.render(&vars()),
            ["-accel", "tcg", "-smp", "2,sockets=1", "-m", "size=128M"]
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# a comment {bogus}\n\n-nodefaults # trailing {also bogus}\n  -m {mem}\n";
        let p = Profile::parse(text).unwrap();
        assert_eq!(p.render(&vars()), ["-nodefaults", "-m", "128"]);
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let e = Profile::parse("-m {mem}\n-foo {memory}").unwrap_err();
        assert!(e.contains("line 2") && e.contains("{memory}"), "{e}");
    }

    #[test]
    fn malformed_braces_are_errors() {
        assert!(Profile::parse("-x {kernel").is_err());
        assert!(Profile::parse("-x a}b").is_err());
        assert!(Profile::parse("# only a comment\n").is_err());
        let p = Profile::parse("-x {{literal}}").unwrap();
        assert_eq!(p.render(&vars()), ["-x", "{literal}"]);
    }

    #[test]
    fn builtin_profiles_parse_and_boot_with_debug_exit() {
        for (name, _) in BUILTIN_PROFILES {
            let argv = Profile::load(name).unwrap().render(&vars());
            let joined = argv.join(" ");
            assert!(joined.contains("-kernel /img/hello"), "{name}: {joined}");
            assert!(argv.contains(&"ferrix.cpus=2 a b".to_string()), "{name}");
            assert!(joined.contains("isa-debug-exit,iobase=0xf4"), "{name}");
            assert!(joined.contains("-no-reboot"), "{name}");
        }
        let icount = Profile::load("microvm-icount").unwrap().render(&vars());
        assert!(icount.join(" ").contains("-icount shift=0"));
    }

    #[test]
    fn net_fragments_parse_and_fill_in() {
        for (name, text) in NET_FRAGMENTS {
            assert!(Profile::parse(text).is_ok(), "{name}");
        }
        let mut v = vars();
        v.extra = vec![("ifname", "ft0".to_string()), ("queues", "4".to_string())];
        let argv = Profile::fragment("net-tap").render(&v);
        assert_eq!(
            argv,
            [
                "-netdev",
                "tap,id=net0,ifname=ft0,script=no,downscript=no,queues=4"
            ]
        );
    }

    #[test]
    fn disk_fragment_attaches_a_virtio_blk_mmio_device() {
        let mut v = vars();
        v.extra = vec![("disk", "/tmp/r0.img".to_string())];
        let argv = Profile::fragment("disk-mmio").render(&v);
        assert_eq!(
            argv,
            [
                "-drive",
                "file=/tmp/r0.img,format=raw,if=none,id=disk0,cache=writeback",
                "-device",
                "virtio-blk-device,drive=disk0"
            ]
        );
    }

    #[test]
    fn stats_fragment_is_a_debugcon_on_the_stats_port() {
        let mut v = vars();
        v.extra = vec![("stats", "/tmp/s.sock".to_string())];
        let argv = Profile::fragment("stats").render(&v);
        let port = format!("iobase={:#x}", ferrix_abi::stats::QEMU_STATS_PORT);
        assert_eq!(
            argv,
            [
                "-chardev",
                "socket,id=fxstats,path=/tmp/s.sock",
                "-device",
                &format!("isa-debugcon,{port},chardev=fxstats")
            ]
        );
    }

    #[test]
    fn unknown_profile_name_is_a_usage_error() {
        let e = Profile::load("no-such-profile").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("microvm"), "{e}");
    }
}
