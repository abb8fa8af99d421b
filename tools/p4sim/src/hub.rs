//! p4sim as the switch between ferrix VMs: the hub of a shim `--net switch:DIR` segment.
//!
//! The shim's switch backend is a directory of unix datagram sockets, one per VM, one
//! datagram per Ethernet frame (hypervisor-shim/src/net/switch.rs). When `DIR/hub.sock`
//! exists as a shim opens the directory, that shim sends every frame to it instead of to its
//! peers, so the segment becomes a star around whoever bound `hub.sock`: here, a P4 program.
//!
//! - Ports: the switch's port numbers are the program's (`ingress_port`, `egress_spec`).
//!   Which VM is behind which port is given by MAC ([`Hub::new`]'s `ports`): a frame whose
//!   source MAC names port N teaches the hub that N is the sending socket. A frame from an
//!   unknown source MAC is dropped and counted (`unknown_source`).
//! - Every frame goes through the program at once; recirculated packets wait in a queue and
//!   re-enter one pass at a time between arrivals (a parked JBSQ REQ0 waits for FEEDBACK),
//!   at most `max_passes` passes per packet (then dropped, `pass_limit`).
//! - A frame for a port whose VM has not sent yet is dropped and counted (`unknown_port`), as
//!   is one the peer's socket refuses (`send_failed`; a gone peer is forgotten).
//! - Timestamps are microseconds since the hub started.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::switch::{Output, Recirculated, Switch};

/// The socket the shims look for in their switch directory.
pub const HUB_SOCKET: &str = "hub.sock";

/// What the hub counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Frames received from the VMs.
    pub rx: u64,
    /// Frames sent to the VMs.
    pub tx: u64,
    /// Received frames from a MAC no port is configured for.
    pub unknown_source: u64,
    /// Frames for a port no VM has spoken from yet.
    pub unknown_port: u64,
    /// Frames a peer's socket refused (full, gone).
    pub send_failed: u64,
    /// Frames the program could not take (`PacketError`: too short, too long, ...).
    pub packet_errors: u64,
    /// Recirculated packets dropped after `max_passes` passes.
    pub pass_limit: u64,
    /// Frames sent, by (ingress port, egress port) of the packet.
    pub paths: BTreeMap<(u16, u16), u64>,
}

/// The P4 switch of one directory.
pub struct Hub {
    sw: Switch,
    sock: UnixDatagram,
    path: PathBuf,
    port_of: HashMap<[u8; 6], u16>,
    peer: HashMap<u16, PathBuf>,
    recirc: VecDeque<(Recirculated, u16, usize)>,
    max_passes: usize,
    start: Instant,
    buf: Vec<u8>,
    out: Vec<Output>,
    stats: HubStats,
}

fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
    )
}

impl Hub {
    /// Binds `DIR/hub.sock` (creating DIR) for `sw`; `ports` maps each VM's MAC to its port.
    /// Fails if another live hub holds the directory; a stale socket file is replaced.
    pub fn new(dir: &Path, sw: Switch, ports: &[([u8; 6], u16)]) -> io::Result<Hub> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(HUB_SOCKET);
        if path.exists() {
            // Connecting sends nothing: a live hub is not disturbed.
            match UnixDatagram::unbound()?.connect(&path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{}: another hub is running", path.display()),
                    ));
                }
                Err(e) if gone(&e) => std::fs::remove_file(&path)?,
                Err(e) => return Err(e),
            }
        }
        let sock = UnixDatagram::bind(&path)?;
        Ok(Hub {
            sw,
            sock,
            path,
            port_of: ports.iter().copied().collect(),
            peer: HashMap::new(),
            recirc: VecDeque::new(),
            max_passes: 100_000,
            start: Instant::now(),
            buf: vec![0u8; crate::switch::MAX_PACKET + 1],
            out: Vec::new(),
            stats: HubStats::default(),
        })
    }

    /// At most `n` passes per packet (default 100,000).
    pub fn set_max_passes(&mut self, n: usize) {
        self.max_passes = n.max(1);
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The switch (its registers and counters).
    pub fn switch(&self) -> &Switch {
        &self.sw
    }

    /// The counters.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes the frames that arrive within `wait` (not waiting while recirculated packets
    /// are queued), runs them and one pass of each queued recirculation; returns how many
    /// frames came in.
    pub fn poll(&mut self, wait: Duration) -> io::Result<usize> {
        let mut got = 0;
        let idle_wait = if self.recirc.is_empty() {
            Some(wait.max(Duration::from_micros(1)))
        } else {
            None
        };
        self.sock.set_nonblocking(idle_wait.is_none())?;
        self.sock.set_read_timeout(idle_wait)?;
        loop {
            let (n, from) = match self.sock.recv_from(&mut self.buf) {
                Ok(x) => x,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            };
            got += 1;
            self.sock.set_nonblocking(true)?;
            self.stats.rx += 1;
            let src: Option<[u8; 6]> = self.buf.get(6..12).and_then(|m| m.try_into().ok());
            let Some(&port) = src.and_then(|m| self.port_of.get(&m)) else {
                self.stats.unknown_source += 1;
                continue;
            };
            if let Some(p) = from.as_pathname() {
                self.peer.insert(port, p.to_path_buf());
            }
            let frame = self.buf[..n].to_vec();
            let now = self.now_ns();
            let mut out = std::mem::take(&mut self.out);
            if self.sw.inject(port, &frame, now, &mut out).is_err() {
                self.stats.packet_errors += 1;
            }
            self.deliver(port, 1, &mut out);
            self.out = out;
        }
        for _ in 0..self.recirc.len() {
            let Some((r, ingress, passes)) = self.recirc.pop_front() else {
                break;
            };
            let now = self.now_ns();
            let mut out = std::mem::take(&mut self.out);
            if self.sw.reinject(&r, now, &mut out).is_err() {
                self.stats.packet_errors += 1;
            }
            self.deliver(ingress, passes + 1, &mut out);
            self.out = out;
        }
        Ok(got)
    }

    /// Sends what one pass produced; queues its recirculations.
    fn deliver(&mut self, ingress: u16, passes: usize, out: &mut Vec<Output>) {
        for o in out.drain(..) {
            match o {
                Output::Tx { port, bytes } => self.send(ingress, port, &bytes),
                Output::Recirculate(r) if passes < self.max_passes => {
                    self.recirc.push_back((r, ingress, passes));
                }
                Output::Recirculate(_) => self.stats.pass_limit += 1,
            }
        }
    }

    fn send(&mut self, ingress: u16, port: u16, bytes: &[u8]) {
        let Some(peer) = self.peer.get(&port) else {
            self.stats.unknown_port += 1;
            return;
        };
        match self.sock.send_to(bytes, peer) {
            Ok(_) => {
                self.stats.tx += 1;
                *self.stats.paths.entry((ingress, port)).or_default() += 1;
            }
            Err(e) => {
                if gone(&e) {
                    self.peer.remove(&port);
                }
                self.stats.send_failed += 1;
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
