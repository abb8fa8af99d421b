//! The device thread: waits (epoll) on the per-queue notification eventfds, the backend fd
//! and a stop eventfd; serves TX/control notifications and drains the backend into RX queues.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::backend::MAX_FRAME;
use super::device::{NetDevice, NetIo};

/// A running device thread.
pub struct Worker {
    stop: EventFd,
    handle: JoinHandle<NetIo>,
}

impl Worker {
    /// Starts the device thread for `dev` with frame I/O `io`.
    pub fn spawn(dev: Arc<NetDevice>, io: NetIo) -> io::Result<Worker> {
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let epoll = Epoll::new()?;
        let nq = dev.num_queues() as u64;
        let add = |fd, token| {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )
        };
        for (i, k) in dev.kicks().iter().enumerate() {
            add(k.as_raw_fd(), i as u64)?;
        }
        add(io.backend.raw_fd(), nq)?;
        add(stop.as_raw_fd(), nq + 1)?;
        let stop_clone = stop.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("virtio-net".into())
            .spawn(move || run(&dev, io, &epoll, nq, &stop_clone))?;
        Ok(Worker { stop, handle })
    }

    /// Stops the thread and returns the frame I/O (so the backend is closed by the caller).
    pub fn stop(self) -> Option<NetIo> {
        let _ = self.stop.write(1);
        self.handle.join().ok()
    }
}

fn run(dev: &NetDevice, mut io: NetIo, epoll: &Epoll, nq: u64, stop: &EventFd) -> NetIo {
    let mut events = vec![EpollEvent::default(); 64];
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return io,
        };
        for ev in &events[..n] {
            let token = ev.data();
            if token == nq + 1 {
                let _ = stop.read();
                return io;
            } else if token == nq {
                drain_backend(dev, &mut io, &mut buf);
            } else if let Some(k) = dev.kicks().get(token as usize) {
                // Reading resets the counter; every notification since is served below.
                let _ = k.read();
                dev.process_queue(token as usize, &mut io);
            }
        }
    }
}

/// Receives every pending frame (bounded per wake-up so notifications are not starved).
fn drain_backend(dev: &NetDevice, io: &mut NetIo, buf: &mut [u8]) {
    for _ in 0..256 {
        match io.backend.recv(buf) {
            Ok(Some(n)) => {
                let frame = &buf[..n.min(buf.len())];
                dev.receive(frame, io);
            }
            Ok(None) => return,
            Err(_) => {
                dev.count_rx_backend_error();
                // A persistent error (interface gone) must not turn into a busy loop.
                std::thread::sleep(std::time::Duration::from_millis(10));
                return;
            }
        }
    }
}
