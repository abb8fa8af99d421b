//! Network namespaces for tests: every test that reaches a guest through TAP creates its own
//! namespace, puts the TAP device and the Linux peer in it, and deletes it when done (also when
//! the test fails: `Drop`). Nothing is ever sent from the root namespace to a guest address.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace owned by a test.
pub struct NetNs {
    pub name: String,
}

/// Why a namespace could not be used here.
pub fn unavailable() -> Option<String> {
    // `id -u` instead of geteuid(): no libc dependency, no unsafe.
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    None
}

impl NetNs {
    /// Creates `ferrix-test-<pid>-<n>` with loopback up.
    pub fn create() -> NetNs {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ferrix-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ns = NetNs { name };
        run_ok(Command::new("ip").args(["netns", "add", &ns.name]));
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        c
    }

    /// Runs `argv` inside the namespace; panics with its output if it fails.
    pub fn run(&self, argv: &[&str]) -> Output {
        run_ok(&mut self.command(argv))
    }

    /// Creates TAP device `dev` (multi-queue) with `cidr` on the host side, up.
    pub fn tap(&self, dev: &str, cidr: &str) {
        self.run(&[
            "ip",
            "tuntap",
            "add",
            "dev",
            dev,
            "mode",
            "tap",
            "multi_queue",
        ]);
        self.run(&["ip", "addr", "add", cidr, "dev", dev]);
        self.run(&["ip", "link", "set", dev, "up"]);
    }
}

impl NetNs {
    /// Creates Linux bridge `br` with `cidr` (the Linux peer's address), up. With
    /// [`NetNs::bridged_tap`] it joins several VMs and that peer on one segment.
    pub fn bridge(&self, br: &str, cidr: &str) {
        self.run(&["ip", "link", "add", br, "type", "bridge"]);
        self.run(&["ip", "addr", "add", cidr, "dev", br]);
        self.run(&["ip", "link", "set", br, "up"]);
    }

    /// Bridge `br` with `cidr` and `taps` TAP ports named `{prefix}0`, `{prefix}1`, ...: one
    /// segment for that many VMs and the Linux peer.
    pub fn segment(&self, br: &str, cidr: &str, prefix: &str, taps: usize) {
        self.bridge(br, cidr);
        for i in 0..taps {
            self.bridged_tap(&format!("{prefix}{i}"), br);
        }
    }

    /// Creates single-queue TAP device `dev` as a port of bridge `br`, up.
    pub fn bridged_tap(&self, dev: &str, br: &str) {
        self.run(&["ip", "tuntap", "add", "dev", dev, "mode", "tap"]);
        self.run(&["ip", "link", "set", dev, "master", br]);
        self.run(&["ip", "link", "set", dev, "up"]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
