//! A synthetic service-time server for tests and demos (thesis 3.2 protocol): each 8-byte
//! request names a service time in nanoseconds; the server spins that long and echoes the 8
//! bytes. One global lock around the spin makes it a single FCFS "core" (an M/G/1 server), so
//! expected latencies are known. `grow_us_per_s` adds service time proportional to the time
//! since start: a deliberately non-stationary server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::workload::Transport;

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct SyntheticServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Core {
    start: Instant,
    grow_us_per_s: f64,
    lock: Mutex<()>,
}

impl Core {
    fn serve(&self, req: [u8; 8]) {
        let ns = u64::from_le_bytes(req) as f64
            + self.grow_us_per_s * 1e3 * self.start.elapsed().as_secs_f64();
        let d = Duration::from_nanos(ns as u64);
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let t = Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    }
}

impl SyntheticServer {
    /// Listen on `addr` (e.g. `127.0.0.1:0`).
    pub fn start(addr: &str, transport: Transport, grow_us_per_s: f64) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let core = Arc::new(Core {
            start: Instant::now(),
            grow_us_per_s,
            lock: Mutex::new(()),
        });
        let (addr, thread) = match transport {
            Transport::Tcp => {
                let l = TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                let a = l.local_addr()?;
                let (stop, core) = (stop.clone(), core.clone());
                (a, std::thread::spawn(move || accept_loop(l, &stop, &core)))
            }
            Transport::Udp => {
                let s = UdpSocket::bind(addr)?;
                s.set_read_timeout(Some(Duration::from_millis(20)))?;
                let a = s.local_addr()?;
                let (stop, core) = (stop.clone(), core.clone());
                (a, std::thread::spawn(move || udp_loop(&s, &stop, &core)))
            }
            Transport::R2p2 => {
                return Err(io::Error::other(
                    "no R2P2 server here: run r2p2-server (tools/r2p2-linux) instead",
                ));
            }
        };
        Ok(SyntheticServer {
            addr,
            stop,
            threads: vec![thread],
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for SyntheticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(l: TcpListener, stop: &Arc<AtomicBool>, core: &Arc<Core>) {
    let mut conns = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                let (stop, core) = (stop.clone(), core.clone());
                conns.push(std::thread::spawn(move || {
                    let _ = tcp_conn(s, &stop, &core);
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

fn tcp_conn(mut s: TcpStream, stop: &AtomicBool, core: &Core) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut req = [0u8; 8];
    let mut have = 0;
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut req[have..]) {
            Ok(0) => return Ok(()),
            Ok(n) => have += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
        if have == 8 {
            core.serve(req);
            s.write_all(&req)?;
            have = 0;
        }
    }
    Ok(())
}

fn udp_loop(s: &UdpSocket, stop: &AtomicBool, core: &Core) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = s.recv_from(&mut buf)
            && n >= 8
        {
            let mut req = [0u8; 8];
            req.copy_from_slice(&buf[..8]);
            core.serve(req);
            let _ = s.send_to(&buf[..n], from);
        }
    }
}
