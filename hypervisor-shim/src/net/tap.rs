//! The TAP backend: `/dev/net/tun` with IFF_TAP | IFF_NO_PI, non-blocking. TUNSETIFF creates
//! the interface when it does not exist (needs CAP_NET_ADMIN) or attaches to an existing one;
//! the interface is then brought up (IFF_UP). The shim never assigns addresses.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::backend::{Backend, nonblocking};
use crate::error::ShimError;

/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// Needed to attach to a TAP that was created multi-queue (`ip tuntap add ... multi_queue`).
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const TUN_PATH: &str = "/dev/net/tun";

/// `struct ifreq` reduced to the name and the flags member of its union (40 bytes).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> Self {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        let n = name.len().min(libc::IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }
}

/// An open TAP interface.
pub struct Tap {
    file: File,
    name: String,
}

fn tap_err(name: &str, what: &'static str, source: io::Error) -> ShimError {
    ShimError::Tap {
        name: name.to_string(),
        what,
        source,
    }
}

impl Tap {
    /// Opens (creating if needed and permitted) TAP interface `name` and sets it up.
    pub fn open(name: &str) -> Result<Self, ShimError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(TUN_PATH)
            .map_err(|e| tap_err(name, "cannot open /dev/net/tun", e))?;
        let mut req = IfReq::new(name);
        let mut rc = -1;
        // A single-queue open first; a TAP created multi-queue refuses it with EINVAL, so
        // then attach as one of its queues.
        for flags in [IFF_TAP | IFF_NO_PI, IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE] {
            req = IfReq::new(name);
            req.flags = flags;
            // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a live,
            // correctly sized (40-byte) and aligned ifreq for the whole call.
            rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
            if rc >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                break;
            }
        }
        if rc < 0 {
            return Err(tap_err(
                name,
                "cannot create or attach the TAP interface (TUNSETIFF)",
                io::Error::last_os_error(),
            ));
        }
        let actual = CStr::from_bytes_until_nul(&req.name)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_else(|_| name.to_string());
        set_up(&actual).map_err(|e| tap_err(name, "cannot bring the interface up", e))?;
        Ok(Tap { file, name: actual })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Sets IFF_UP on interface `name` through SIOCGIFFLAGS / SIOCSIFFLAGS.
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket(2) call; the returned fd is checked and owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a freshly created socket fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = IfReq::new(name);
    // SAFETY: SIOCGIFFLAGS fills the flags of a live 40-byte `struct ifreq`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req as *mut IfReq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if req.flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags of a live 40-byte `struct ifreq`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req as *mut IfReq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Backend for Tap {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let n = self.file.write(frame)?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other("short write to the TAP device"))
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        nonblocking(self.file.read(buf))
    }

    fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const HELPER: &str = "net::tap::tests::tap_netns_helper";
    const TAP: &str = "ferrixtap0";
    const PARENT_NS_ENV: &str = "FERRIX_SHIMTEST_PARENT_NETNS";

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    fn rx_packets(name: &str) -> u64 {
        std::fs::read_to_string(format!("/sys/class/net/{name}/statistics/rx_packets"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Deletes the namespace when dropped (also when the test fails).
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    /// Creates a namespace and runs [`tap_netns_helper`] inside it.
    #[test]
    fn tap_in_netns() {
        if !is_root() {
            eprintln!("skipping tap_in_netns: not root");
            return;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("skipping tap_in_netns: `ip` (iproute2) is not installed");
            return;
        }
        let ns = Netns(format!("ferrix-shimtest-{}", std::process::id()));
        let st = Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add failed");
        let exe = std::env::current_exe().unwrap();
        let parent_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
        let out = Command::new("ip")
            .env(PARENT_NS_ENV, parent_ns)
            .args(["netns", "exec", &ns.0])
            .arg(exe)
            .args(["--exact", HELPER, "--ignored", "--nocapture"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "helper failed:\n{text}");
        assert!(
            text.contains("tap helper ok"),
            "helper did not run:\n{text}"
        );
    }

    /// Runs inside the test's namespace only (started by [`tap_in_netns`]).
    #[test]
    #[ignore = "run by tap_in_netns inside a fresh network namespace"]
    fn tap_netns_helper() {
        let ns = std::fs::read_link("/proc/self/ns/net").unwrap();
        let parent = std::env::var_os(PARENT_NS_ENV).expect("only run by tap_in_netns");
        assert_ne!(
            ns.as_os_str(),
            parent,
            "refusing to create a TAP in the caller's namespace"
        );
        let mut tap = Tap::open(TAP).expect("open TAP");
        assert_eq!(tap.name(), TAP);
        let flags = std::fs::read_to_string(format!("/sys/class/net/{TAP}/flags")).unwrap();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
        assert_eq!(flags & 1, 1, "interface is up");
        // Frame written by the "guest" reaches the host stack: its rx counter moves.
        let before = rx_packets(TAP);
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&[0x52, 0x54, 0, 1, 2, 3, 0x88, 0xb5]);
        frame.extend_from_slice(&[0u8; 46]);
        tap.send(&frame).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while rx_packets(TAP) <= before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(rx_packets(TAP) > before, "TAP rx_packets did not move");
        // Opening it again attaches to the existing interface.
        drop(tap);
        let mut tap = Tap::open(TAP).expect("reopen TAP");
        let mut buf = [0u8; 2048];
        // Nothing addressed to us in this namespace except what the kernel may emit (IPv6 ND);
        // recv must not block.
        let _ = tap.recv(&mut buf).unwrap();
        println!("tap helper ok");
    }

    #[test]
    fn bad_names_do_not_panic() {
        if is_root() && std::path::Path::new(TUN_PATH).exists() {
            // Creating interfaces in the root namespace is not done by tests.
            return;
        }
        let e = Tap::open("ferrixnope").err().unwrap();
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }
}
