//! The inter-VM switch backend: an L2 segment shared by several shim processes without a
//! daemon. Each shim binds a unix datagram socket `DIR/<pid>-<random>.sock`; one datagram is
//! one Ethernet frame.
//!
//! * Learning: the source MAC of every received frame maps to the sender's socket path.
//! * Forwarding: a unicast frame to a learned MAC goes to that socket only; anything else
//!   (unknown unicast, broadcast, multicast) is flooded to every other `*.sock` in DIR.
//! * A peer that is gone (ECONNREFUSED: a socket file nobody is bound to, or ENOENT) is
//!   forgotten; a stale socket file (ECONNREFUSED, left by a killed shim) is also deleted.
//! * A full peer (EAGAIN) loses the frame, as a congested switch port would.
//! * Our own socket file is removed when the backend is dropped.
//! * Hub mode: if `DIR/hub.sock` exists when the backend opens, every frame goes to it and
//!   nowhere else (no learning, no flooding): a process bound there is the segment's switch,
//!   e.g. a P4 program in p4sim (`p4sim hub`, tools/p4sim/src/hub.rs), which delivers to our
//!   socket what its program sends out of our port. Start it before the VMs. A hub that is
//!   gone makes sends fail (counted by the device as lost frames), as an unplugged cable would.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::backend::{Backend, nonblocking};
use super::random_bytes;
use crate::error::ShimError;

/// The socket file that puts a directory in hub mode.
pub const HUB_SOCKET: &str = "hub.sock";

/// One port of the switch.
pub struct Switch {
    sock: UnixDatagram,
    dir: PathBuf,
    path: PathBuf,
    learned: HashMap<[u8; 6], PathBuf>,
    /// Hub mode: the hub's socket, where every frame goes.
    hub: Option<PathBuf>,
    /// Frames that could not be delivered to one peer (full, gone) while flooding.
    pub flood_misses: u64,
}

fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED) | Some(libc::ENOENT)
    )
}

impl Switch {
    /// Creates DIR if needed and binds this VM's socket in it.
    pub fn open(dir: &Path) -> Result<Self, ShimError> {
        let err = |what, source| ShimError::Switch {
            dir: dir.to_path_buf(),
            what,
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| err("cannot create the directory", e))?;
        let r: [u8; 4] = random_bytes();
        let name = format!("{}-{:08x}.sock", std::process::id(), u32::from_le_bytes(r));
        let path = dir.join(name);
        let sock = UnixDatagram::bind(&path).map_err(|e| err("cannot bind a socket", e))?;
        sock.set_nonblocking(true)
            .map_err(|e| err("cannot make the socket non-blocking", e))?;
        let hub = dir.join(HUB_SOCKET);
        Ok(Switch {
            sock,
            dir: dir.to_path_buf(),
            path,
            learned: HashMap::new(),
            hub: hub.exists().then_some(hub),
            flood_misses: 0,
        })
    }

    /// This port's socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hub every frame goes to (hub mode), if any.
    pub fn hub(&self) -> Option<&Path> {
        self.hub.as_deref()
    }

    /// How many MAC addresses have been learned.
    pub fn learned(&self) -> usize {
        self.learned.len()
    }

    /// Sends to every other socket in the directory.
    fn flood(&mut self, frame: &[u8]) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let Ok(entry) = entry else { continue };
            let p = entry.path();
            if p == self.path || p.extension().is_none_or(|x| x != "sock") {
                continue;
            }
            match self.sock.send_to(frame, &p) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    // Nobody is bound to it: a leftover of a shim that was killed.
                    let _ = std::fs::remove_file(&p);
                    self.learned.retain(|_, v| *v != p);
                }
                Err(_) => self.flood_misses += 1,
            }
        }
        Ok(())
    }
}

impl Backend for Switch {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let Some(dst) = frame.get(..6) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "runt frame"));
        };
        let dst: [u8; 6] = dst.try_into().unwrap_or_default();
        if let Some(hub) = &self.hub {
            return self.sock.send_to(frame, hub).map(|_| ());
        }
        if dst[0] & 1 == 0
            && let Some(peer) = self.learned.get(&dst).cloned()
        {
            match self.sock.send_to(frame, &peer) {
                Ok(_) => return Ok(()),
                Err(e) if gone(&e) => {
                    self.learned.remove(&dst);
                }
                Err(e) => return Err(e),
            }
        }
        self.flood(frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            let (n, addr) = match self.sock.recv_from(buf) {
                Ok(x) => x,
                Err(e) => return nonblocking(Err(e)),
            };
            if n < 14 {
                continue; // not an Ethernet frame: ignore
            }
            if let (Some(src), Some(path)) = (buf.get(6..12), addr.as_pathname())
                && src[0] & 1 == 0
                && self.hub.is_none()
            {
                let src: [u8; 6] = src.try_into().unwrap_or_default();
                self.learned.insert(src, path.to_path_buf());
            }
            return Ok(Some(n));
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn filters_unicast(&self) -> bool {
        true
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x88, 0xb5, 1, 2, 3]);
        f
    }

    fn recv_all(s: &mut Switch) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Some(n) = s.recv(&mut buf).unwrap() {
            out.push(buf[..n].to_vec());
        }
        out
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const BCAST: [u8; 6] = [0xff; 6];

    #[test]
    fn flood_learn_forget() {
        let dir = tempfile::tempdir().unwrap();
        let sw = dir.path().join("sw");
        let mut a = Switch::open(&sw).unwrap();
        let mut b = Switch::open(&sw).unwrap();
        let mut c = Switch::open(&sw).unwrap();
        // Broadcast from A floods to B and C, not back to A.
        a.send(&frame(BCAST, A)).unwrap();
        assert_eq!(recv_all(&mut b).len(), 1);
        assert_eq!(recv_all(&mut c).len(), 1);
        assert!(recv_all(&mut a).is_empty());
        // B learned A: B's reply goes to A only.
        b.send(&frame(A, B)).unwrap();
        assert_eq!(recv_all(&mut a).len(), 1);
        assert!(recv_all(&mut c).is_empty());
        assert_eq!(a.learned(), 1);
        // A gone: B forgets it and floods instead.
        let a_path = a.path().to_path_buf();
        drop(a);
        assert!(!a_path.exists(), "socket removed on drop");
        b.send(&frame(A, B)).unwrap();
        assert_eq!(b.learned(), 0);
        assert_eq!(recv_all(&mut c).len(), 1);
        // A stale socket file (bound by nobody) is cleaned up by flooding.
        let stale = sw.join("1-deadbeef.sock");
        drop(UnixDatagram::bind(&stale).unwrap());
        b.send(&frame(BCAST, B)).unwrap();
        assert!(!stale.exists());
        assert!(b.send(&[1, 2]).is_err());
    }

    #[test]
    fn a_hub_socket_gets_every_frame() {
        let dir = tempfile::tempdir().unwrap();
        let sw = dir.path().join("sw");
        std::fs::create_dir_all(&sw).unwrap();
        let hub = UnixDatagram::bind(sw.join(HUB_SOCKET)).unwrap();
        hub.set_nonblocking(true).unwrap();
        let mut a = Switch::open(&sw).unwrap();
        let mut b = Switch::open(&sw).unwrap();
        assert_eq!(a.hub(), Some(sw.join(HUB_SOCKET).as_path()));
        // Broadcast and unicast from A: both to the hub, none to B.
        a.send(&frame(BCAST, A)).unwrap();
        a.send(&frame(B, A)).unwrap();
        assert!(recv_all(&mut b).is_empty());
        let mut buf = [0u8; 64];
        let (n, from) = hub.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &frame(BCAST, A)[..]);
        assert_eq!(from.as_pathname(), Some(a.path()));
        assert_eq!(hub.recv_from(&mut buf).unwrap().0, n);
        // The hub delivers to B; B learns nothing (the hub decides).
        hub.send_to(&frame(B, A), b.path()).unwrap();
        assert_eq!(recv_all(&mut b).len(), 1);
        assert_eq!(b.learned(), 0);
        // The hub gone: a send fails.
        drop(hub);
        std::fs::remove_file(sw.join(HUB_SOCKET)).unwrap();
        assert!(a.send(&frame(B, A)).is_err());
    }

    #[test]
    fn dir_errors_are_one_line() {
        let e = Switch::open(Path::new("/proc/ferrix-no/sw")).err().unwrap();
        assert!(matches!(e, ShimError::Switch { .. }));
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }
}
