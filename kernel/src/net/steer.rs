//! Software flow steering, for NICs with fewer queue pairs than cores (no multi-queue, or a
//! backend with one queue such as QEMU's user network): the core that owns queue pair `q`
//! hashes each received IPv4 TCP/UDP flow onto the cores of its group `{q, q + pairs, ...}`
//! and hands frames for another core to that core's mailbox. The receiving core processes
//! them with its own stack and gives the frames back to the owner: replies to transmit on the
//! owner's queue (the buffers belong to the owner's pool), frames it is done with to free, and
//! frames its stack generated (ARP, ICMP) as bytes to copy into the owner's buffers. Every
//! frame of one flow goes to one core, so a flow's datagrams stay in order.

pub use crate::flow::{flow_hash, group, owner_of, pick};
use crate::percpu::MAX_CPUS;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrix_drivers::PacketBuf;

/// Frames a steered core may have waiting; beyond this its owner drops (and counts) them.
pub const INBOX_DEPTH: usize = 1024;

/// What cores hand each other.
pub struct Mailbox {
    /// Frames for this core to process (it has no queue pair of its own).
    pub rx: VecDeque<PacketBuf>,
    /// Replies for this core's queue to transmit.
    pub tx: Vec<PacketBuf>,
    /// Frames that steered cores' stacks built (ARP, ICMP), to copy into buffers and send.
    pub raw: Vec<Vec<u8>>,
    /// Buffers of this core's pool that steered cores are done with.
    pub free: Vec<PacketBuf>,
}

pub static MAILBOX: [spin::Mutex<Mailbox>; MAX_CPUS] = [const {
    spin::Mutex::new(Mailbox {
        rx: VecDeque::new(),
        tx: Vec::new(),
        raw: Vec::new(),
        free: Vec::new(),
    })
}; MAX_CPUS];

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Frames dropped because a steered core's inbox was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Hands `buf` to core `core`'s inbox; gives it back if the inbox is full (counted).
pub fn hand_over(core: usize, buf: PacketBuf) -> Result<(), PacketBuf> {
    let mut m = MAILBOX[core].lock();
    if m.rx.len() >= INBOX_DEPTH {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return Err(buf);
    }
    m.rx.push_back(buf);
    Ok(())
}
