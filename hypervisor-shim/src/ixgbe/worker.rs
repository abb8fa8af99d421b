//! The 82599's device thread: waits (poll) on the backend fd and a stop eventfd and moves
//! received frames into the device.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::IxgbePort;
use crate::net::backend::MAX_FRAME;

/// A running device thread.
pub struct Worker {
    stop: EventFd,
    handle: JoinHandle<()>,
}

impl Worker {
    /// Starts the device thread of `port`.
    pub fn spawn(port: Arc<IxgbePort>) -> io::Result<Worker> {
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let stop_fd = stop.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("ixgbe".into())
            .spawn(move || run(&port, &stop_fd))?;
        Ok(Worker { stop, handle })
    }

    /// Stops the thread.
    pub fn stop(self) {
        let _ = self.stop.write(1);
        let _ = self.handle.join();
    }
}

fn run(port: &IxgbePort, stop: &EventFd) {
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: port.backend_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd structures for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents & libc::POLLIN != 0 && port.poll_backend(&mut buf, 256) == 0 {
            // Readable but nothing read (an error): do not spin.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
