//! A simulated network and clock for R2P2 tests: every endpoint's transport appends datagrams
//! to one shared wire; the test delivers (or loses, reorders, duplicates) them.
#![allow(dead_code)]

use ferrix_net::r2p2::{Clock, SendFailed, Transport};
use std::cell::{Cell, RefCell};
use std::net::SocketAddrV4;
use std::rc::Rc;

/// Simulated time, shared by every endpoint.
#[derive(Clone, Default)]
pub struct SimClock(pub Rc<Cell<u64>>);

impl SimClock {
    pub fn advance(&self, ns: u64) {
        self.0.set(self.0.get() + ns);
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
}

/// One datagram in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dgram {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub bytes: Vec<u8>,
}

/// The shared wire.
pub type Wire = Rc<RefCell<Vec<Dgram>>>;

/// An endpoint's transport: sends from `local` onto the wire.
pub struct SimTransport {
    pub local: SocketAddrV4,
    pub wire: Wire,
    /// Fail every send (to test send failures).
    pub fail: bool,
}

impl SimTransport {
    pub fn new(local: SocketAddrV4, wire: &Wire) -> Self {
        SimTransport {
            local,
            wire: wire.clone(),
            fail: false,
        }
    }
}

impl Transport for SimTransport {
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
        if self.fail {
            return Err(SendFailed);
        }
        self.wire.borrow_mut().push(Dgram {
            src: self.local,
            dst,
            bytes: parts.concat(),
        });
        Ok(())
    }
}

/// Takes everything on the wire.
pub fn drain(wire: &Wire) -> Vec<Dgram> {
    std::mem::take(&mut *wire.borrow_mut())
}

pub fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

/// Parses a hex string with spaces ("cc 08 00").
pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}
