//! One stored item: key, value, memcached client flags, CAS id, deadline, and the bookkeeping
//! the store needs (the hash, when it was stored, CLOCK's reference bit).

use crate::expiry::{Clock, Deadline};
use alloc::boxed::Box;
use alloc::vec::Vec;

/// A stored item.
#[derive(Debug, Clone)]
pub struct Item {
    /// The key.
    pub key: Box<[u8]>,
    /// The value.
    pub value: Vec<u8>,
    /// memcached's opaque 32-bit client flags (0 for Redis strings).
    pub flags: u32,
    /// The CAS unique id, changed by every modification.
    pub cas: u64,
    /// When the item expires.
    pub deadline: Deadline,
    /// `now_ns` when the item was last stored (for `flush_all <delay>`).
    pub(crate) stored_ns: u64,
    /// The key's hash (kept so the table can rehash without rehashing keys).
    pub(crate) hash: u64,
    /// CLOCK's reference bit: set on access, cleared when the hand passes.
    pub(crate) referenced: bool,
}

impl Item {
    /// Whether the item's deadline has passed.
    pub fn expired(&self, now: Clock) -> bool {
        self.deadline.expired(now)
    }
}
