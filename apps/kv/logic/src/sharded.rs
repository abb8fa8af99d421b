//! The multi-core ownership rule: [`Sharded`] holds N [`Store`]s, each behind a
//! `spin::Mutex`, and a key always lives in shard `hash(key) >> 32 % N`.
//!
//! ZygOS steals connections, so a request may run on any core: nothing here is per-core. Any
//! core may call any method with `&Sharded`; each command locks the one shard of its key for
//! the duration of that command only (multi-key commands take the shards one after another,
//! never two at once, so there is no lock order to get wrong and no deadlock). With N at
//! least the core count, two cores contend only when their keys share a shard. The memory
//! limit is split evenly between the shards, and CAS ids are unique across shards (shard `i`
//! numbers `i+1, i+1+N, ...`).
//!
//! The codecs are generic over [`Backend`], implemented by `Store` (one core, or the caller
//! already holds a lock) and by `&Sharded`.

use crate::hash::hash;
use crate::store::{Stats, Store, StoreConfig};
use alloc::vec::Vec;
use spin::Mutex;

/// What a codec executes against.
pub trait Backend {
    /// Run `f` on the store that owns `key`.
    fn with_key<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Store) -> R) -> R;
    /// [`with_key`](Self::with_key), also handing `f` the key's [`hash`], computed once for
    /// both the shard and the store's table.
    fn with_hashed_key<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Store, u64) -> R) -> R {
        let h = hash(key);
        self.with_key(key, |s| f(s, h))
    }
    /// Run `f` on every store, one at a time.
    fn for_each_store(&mut self, f: impl FnMut(&mut Store));
    /// The largest item (key + value + overhead) a store accepts.
    fn item_size_max(&self) -> usize;
    /// The memory limit over all stores.
    fn mem_limit(&self) -> usize;

    /// The counters summed over every store.
    fn totals(&mut self) -> (Stats, usize, usize) {
        let mut s = Stats::default();
        let (mut items, mut bytes) = (0, 0);
        self.for_each_store(|st| {
            let t = Store::stats(st);
            s.cmd_get += t.cmd_get;
            s.cmd_set += t.cmd_set;
            s.get_hits += t.get_hits;
            s.get_misses += t.get_misses;
            s.evictions += t.evictions;
            s.total_items += t.total_items;
            s.expired += t.expired;
            items += st.len();
            bytes += st.used_bytes();
        });
        (s, items, bytes)
    }
}

impl Backend for Store {
    fn with_key<R>(&mut self, _key: &[u8], f: impl FnOnce(&mut Store) -> R) -> R {
        f(self)
    }
    fn for_each_store(&mut self, mut f: impl FnMut(&mut Store)) {
        f(self)
    }
    fn item_size_max(&self) -> usize {
        self.cfg.item_size_max
    }
    fn mem_limit(&self) -> usize {
        self.cfg.mem_limit
    }
}

/// N stores behind spin locks, chosen by key hash (see the module doc).
#[derive(Debug)]
pub struct Sharded {
    shards: Vec<Mutex<Store>>,
    item_size_max: usize,
    mem_limit: usize,
}

impl Sharded {
    /// `n` shards (at least 1) sharing `cfg.mem_limit`; `cfg`'s CAS numbering is replaced.
    pub fn new(n: usize, cfg: StoreConfig) -> Self {
        let n = n.max(1);
        let shards = (0..n)
            .map(|i| {
                Mutex::new(Store::new(StoreConfig {
                    mem_limit: cfg.mem_limit / n,
                    cas_start: i as u64 + 1,
                    cas_step: n as u64,
                    ..cfg
                }))
            })
            .collect();
        Self {
            shards,
            item_size_max: cfg.item_size_max,
            mem_limit: cfg.mem_limit,
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard index of `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_of_hash(hash(key))
    }

    /// The shard index of a key whose [`hash`] is `h`.
    fn shard_of_hash(&self, h: u64) -> usize {
        ((h >> 32) % self.shards.len() as u64) as usize
    }
}

impl Backend for &Sharded {
    fn with_key<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.shards[self.shard_of(key)].lock())
    }
    fn with_hashed_key<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Store, u64) -> R) -> R {
        let h = hash(key);
        f(&mut self.shards[self.shard_of_hash(h)].lock(), h)
    }
    fn for_each_store(&mut self, mut f: impl FnMut(&mut Store)) {
        for s in &self.shards {
            f(&mut s.lock());
        }
    }
    fn item_size_max(&self) -> usize {
        self.item_size_max
    }
    fn mem_limit(&self) -> usize {
        self.mem_limit
    }
}
