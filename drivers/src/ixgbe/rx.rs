//! The receive side of a queue pair: posts pool buffers (read format), takes write-backs
//! with DD, checks every field the device wrote before trusting it.
//!
//! Distrust: a write-back with EOP clear (the driver configures frames to fit one buffer),
//! a zero length or one beyond the buffer, or DD on a descriptor the driver had not posted
//! is counted in `device_errors` and its buffer recycled; the frame is never delivered.

use super::ring::DescRing;
use crate::buf::{BUF_SIZE, BufPool, HEADROOM, PacketBuf};
use alloc::vec::Vec;
use ferrix_ixgbe_regs::desc::{RxWriteBack, rx_error, rx_read, rx_status};

/// Offset of the status dword in a receive write-back.
const STATUS_AT: usize = 8;
/// Largest frame a posted buffer takes (the device writes at HEADROOM).
pub const RX_BUF_LEN: usize = BUF_SIZE - HEADROOM;
/// Buffers are reposted once this many descriptors are free (one tail write per batch).
pub const RX_REFILL_BATCH: u16 = 32;

pub struct RxRing {
    ring: DescRing,
    /// The pool token posted under each descriptor.
    tokens: Vec<Option<u32>>,
    /// Next descriptor to take back from the device.
    next_clean: u16,
    /// Next descriptor to post.
    next_use: u16,
    in_flight: u16,
    pub device_errors: u64,
    pub dropped: u64,
}

/// What the tail register should become after a refill (None: nothing posted).
pub type NewTail = Option<u16>;

impl RxRing {
    pub fn new(ring: DescRing) -> RxRing {
        let n = usize::from(ring.len());
        RxRing {
            ring,
            tokens: (0..n).map(|_| None).collect(),
            next_clean: 0,
            next_use: 0,
            in_flight: 0,
            device_errors: 0,
            dropped: 0,
        }
    }

    fn step(&self, i: u16) -> u16 {
        (i + 1) % self.ring.len()
    }

    /// Free descriptors (one always stays unposted: head == tail means empty).
    fn room(&self) -> u16 {
        self.ring.len() - 1 - self.in_flight
    }

    /// Posts buffers from `pool` into every free descriptor (if at least `min` are free).
    pub fn refill(&mut self, pool: &mut BufPool, min: u16) -> NewTail {
        if self.room() < min.max(1) {
            return None;
        }
        let mut posted = false;
        while self.room() > 0 {
            let Some(token) = pool.alloc_parked() else {
                break;
            };
            let i = self.next_use;
            if self.ring.status(i, STATUS_AT) & rx_status::DD != 0 {
                // The device wrote back a descriptor the driver never gave it.
                self.device_errors += 1;
            }
            let addr = pool.slot_phys_of(token) + HEADROOM as u64;
            self.ring.write(i, &rx_read(addr, 0));
            self.tokens[usize::from(i)] = Some(token);
            self.next_use = self.step(i);
            self.in_flight += 1;
            posted = true;
        }
        // The descriptors must be visible before the device sees the new tail.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        posted.then_some(self.next_use)
    }

    /// Whether a write-back is waiting.
    pub fn pending(&self) -> bool {
        self.in_flight > 0 && self.ring.status(self.next_clean, STATUS_AT) & rx_status::DD != 0
    }

    /// Takes up to `max` received frames into `out`; returns (frames, bytes).
    pub fn take(
        &mut self,
        pool: &mut BufPool,
        out: &mut Vec<PacketBuf>,
        max: usize,
    ) -> (usize, u64) {
        let (mut n, mut bytes) = (0, 0);
        if self.in_flight == 0 {
            // Nothing posted: a DD here is the device writing where it was not allowed to.
            if self.ring.status(self.next_clean, STATUS_AT) & rx_status::DD != 0 {
                self.device_errors += 1;
                self.ring.clear_status(self.next_clean, STATUS_AT);
            }
            return (0, 0);
        }
        // Bounded: at most the descriptors in flight.
        for _ in 0..self.in_flight {
            if n == max {
                break;
            }
            let i = self.next_clean;
            if self.ring.status(i, STATUS_AT) & rx_status::DD == 0 {
                break;
            }
            let wb = RxWriteBack::decode(&self.ring.read(i));
            self.ring.clear_status(i, STATUS_AT);
            self.next_clean = self.step(i);
            self.in_flight -= 1;
            let Some(token) = self.tokens[usize::from(i)].take() else {
                self.device_errors += 1; // unreachable while in_flight is right; never trusted
                continue;
            };
            let len = usize::from(wb.length);
            let se = wb.status_error;
            if se & rx_error::RXE != 0 {
                self.dropped += 1;
                // SAFETY: the token was posted under descriptor i and is taken back once.
                unsafe { pool.release(token) };
                continue;
            }
            if se & rx_status::EOP == 0 || len == 0 || len > RX_BUF_LEN {
                self.device_errors += 1;
                // SAFETY: as above.
                unsafe { pool.release(token) };
                continue;
            }
            // SAFETY: as above: the token is parked, no other handle to its slot exists.
            let mut buf = unsafe { pool.unpark(token) };
            buf.set_window(HEADROOM, len);
            let l4_ok = se & rx_status::L4CS != 0
                && se & rx_error::TCPE == 0
                && (se & rx_status::IPCS == 0 || se & rx_error::IPE == 0);
            buf.set_l4_checksum_ok(l4_ok);
            bytes += len as u64;
            out.push(buf);
            n += 1;
        }
        (n, bytes)
    }
}
