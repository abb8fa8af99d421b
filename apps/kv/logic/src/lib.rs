//! ferrix-kv: the logic of the key-value store app (issue 12), host-testable and guest-ready.
//!
//! - [`store::Store`]: one hash table with a byte limit (keys + values + [`store::ITEM_OVERHEAD`]
//!   per item), CLOCK eviction ([`eviction`]), memcached flags and CAS ids, expiry against a clock
//!   the caller passes in ([`expiry::Clock`]).
//! - [`sharded::Sharded`]: N stores behind `spin::Mutex`es, chosen by key hash. This is the
//!   ownership rule for the guest: ZygOS may run a connection on any core (stealing), so the
//!   store is never per-core state; every request locks the one shard its key hashes to, and a
//!   shard lock is held only for one command's work on that key (never across commands, never
//!   while waiting for I/O). Multi-key commands lock the shards one at a time, so they are not
//!   atomic across keys (memcached's multi-get is not either; Redis's MSET is, which is the one
//!   documented difference).
//! - Codecs, each a streaming parser: bytes in as they arrive, replies appended to an output
//!   buffer, back-pressure through [`conn::Limits::max_output`]: [`memcache::ascii`],
//!   [`memcache::binary`], [`memcache::udp`] (frame header, multi-datagram replies) and
//!   [`resp`] (RESP2 and inline commands), plus [`r2p2`] (one RESP command per R2P2 message and
//!   the read-only test for R2P2's read policy).
//!
//! Redis and memcached share one store: a Redis string is an item with flags 0, its value the
//! bytes; Redis `SET` writes flags 0, Redis `GET` returns a memcached item's value whatever its
//! flags, and both protocols see the same expiry and the same CAS id changes.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod conn;
pub mod eviction;
pub mod expiry;
pub mod hash;
pub mod item;
pub mod memcache;
pub mod numeric;
pub mod ops;
pub mod r2p2;
pub mod resp;
pub mod sharded;
pub mod sniff;
pub mod store;

pub use conn::{Codec, Limits, Progress};
pub use expiry::{Clock, Deadline};
pub use sharded::{Backend, Sharded};
pub use store::{Store, StoreConfig};
