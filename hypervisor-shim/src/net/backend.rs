//! Where the frames of a virtio-net device go: the [`Backend`] trait (non-blocking send and
//! receive of whole Ethernet frames plus a pollable fd) and opening the configured one.

use std::io;
use std::os::fd::RawFd;

use super::{NetBackend, switch::Switch, tap::Tap};
use crate::error::ShimError;

/// Largest frame a backend carries (no TSO/GSO is offered, so this is generous).
pub const MAX_FRAME: usize = 65535;

/// A non-blocking frame transport.
pub trait Backend: Send {
    /// Sends one Ethernet frame. Errors are counted by the caller and the frame dropped.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// Receives one frame into `buf`; `Ok(None)` when nothing is pending.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
    /// An fd that polls readable when [`Backend::recv`] may return a frame.
    fn raw_fd(&self) -> RawFd;
    /// Whether a received unicast frame for a MAC other than `mac` must be dropped (a switch
    /// port floods unknown unicast; a TAP delivers what the host routes to us).
    fn filters_unicast(&self) -> bool {
        false
    }
}

/// Opens the backend described by `spec`; `mac` is the device's own address.
pub fn open(spec: &NetBackend) -> Result<Box<dyn Backend>, ShimError> {
    Ok(match spec {
        NetBackend::Tap(name) => Box::new(Tap::open(name)?),
        NetBackend::Switch(dir) => Box::new(Switch::open(dir)?),
    })
}

/// Maps a non-blocking result: `WouldBlock` becomes `Ok(None)`.
pub(crate) fn nonblocking(r: io::Result<usize>) -> io::Result<Option<usize>> {
    match r {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(None),
        Err(e) => Err(e),
    }
}
