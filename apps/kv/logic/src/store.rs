//! The store: a hash table of [`Item`]s with a byte limit and CLOCK eviction.
//!
//! Layout: items live in a slot array (`Vec<Option<Item>>`, freed slots reused through a free
//! list); a `hashbrown::HashTable<u32>` maps a key's hash to its slot. The CLOCK hand
//! ([`crate::eviction`]) walks the slot array.
//!
//! Memory accounting: an item costs `key.len() + value.len() + ITEM_OVERHEAD` bytes, and the
//! sum over live items never exceeds [`StoreConfig::mem_limit`]: an insert first evicts until
//! it fits. `ITEM_OVERHEAD` (96 bytes) covers the `Item` struct (~72 bytes: two heap pointers
//! with lengths, flags, CAS, deadline, bookkeeping), its table entry (4 bytes + 1 control
//! byte, at the table's load factor) and the two allocations' allocator headers; the allocator's
//! rounding of the key and value allocations is not counted. An item is refused as too large
//! when its cost exceeds [`StoreConfig::item_size_max`] (memcached's `-I`, default 1 MiB) or
//! the whole limit.
//!
//! Expiry is lazy: a lookup that finds an expired (or flushed) item removes it and reports a
//! miss; CLOCK takes expired items first. The commands the protocols share are in `ops.rs`.

use crate::eviction::{ClockHand, FreeList};
use crate::expiry::{Clock, Deadline};
use crate::hash::hash;
use crate::item::Item;
use alloc::vec::Vec;
use hashbrown::HashTable;

/// Bytes charged per item on top of its key and value (see the module doc).
pub const ITEM_OVERHEAD: usize = 96;
/// memcached's default item size limit (`-I 1m`).
pub const DEFAULT_ITEM_SIZE_MAX: usize = 1024 * 1024;
/// memcached's key length limit (`KEY_MAX_LENGTH`), enforced by the memcached codecs.
pub const KEY_MAX_LENGTH: usize = 250;

/// The store's limits and CAS numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Bytes for items (keys + values + `ITEM_OVERHEAD` each).
    pub mem_limit: usize,
    /// Largest item (key + value + `ITEM_OVERHEAD`).
    pub item_size_max: usize,
    /// The first CAS id handed out.
    pub cas_start: u64,
    /// The step between CAS ids (shard `i` of `n` uses start `i + 1`, step `n`, so ids are
    /// unique across shards).
    pub cas_step: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            mem_limit: 64 * 1024 * 1024,
            item_size_max: DEFAULT_ITEM_SIZE_MAX,
            cas_start: 1,
            cas_step: 1,
        }
    }
}

/// Counters for `stats` / `INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lookups (memcached `cmd_get`, one per key).
    pub cmd_get: u64,
    /// Stores attempted (memcached `cmd_set`).
    pub cmd_set: u64,
    /// Lookups that found a live item.
    pub get_hits: u64,
    /// Lookups that did not.
    pub get_misses: u64,
    /// Items evicted to make room.
    pub evictions: u64,
    /// Items ever stored.
    pub total_items: u64,
    /// Items found expired and removed.
    pub expired: u64,
}

/// One store. Not thread-safe by itself: see [`crate::Sharded`] for the multi-core rule.
#[derive(Debug)]
pub struct Store {
    pub(crate) cfg: StoreConfig,
    table: HashTable<u32>,
    slots: Vec<Option<Item>>,
    free: FreeList,
    hand: ClockHand,
    used: usize,
    live: usize,
    next_cas: u64,
    /// `flush_all <delay>`: items stored at or before this `now_ns` are gone once it passes.
    flush_at: Option<u64>,
    pub(crate) stats: Stats,
}

/// An item's cost against the limit.
pub fn item_cost(key_len: usize, value_len: usize) -> usize {
    key_len
        .saturating_add(value_len)
        .saturating_add(ITEM_OVERHEAD)
}

impl Store {
    /// An empty store.
    pub fn new(cfg: StoreConfig) -> Self {
        Self {
            cfg,
            table: HashTable::new(),
            slots: Vec::new(),
            free: FreeList::default(),
            hand: ClockHand::new(),
            used: 0,
            live: 0,
            next_cas: cfg.cas_start.max(1),
            flush_at: None,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// Bytes charged for the items held (expired ones not yet reclaimed included).
    pub fn used_bytes(&self) -> usize {
        self.used
    }

    /// Items held (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the store holds no item.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether an item of this size may be stored at all.
    pub fn fits(&self, key_len: usize, value_len: usize) -> bool {
        let c = item_cost(key_len, value_len);
        c <= self.cfg.item_size_max && c <= self.cfg.mem_limit
    }

    pub(crate) fn take_cas(&mut self) -> u64 {
        let c = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(self.cfg.cas_step.max(1));
        if self.next_cas == 0 {
            self.next_cas = self.cfg.cas_step.max(1);
        }
        c
    }

    fn find_slot(&self, key: &[u8], h: u64) -> Option<u32> {
        let slots = &self.slots;
        self.table
            .find(h, |&i| {
                slots[i as usize]
                    .as_ref()
                    .is_some_and(|it| it.hash == h && &*it.key == key)
            })
            .copied()
    }

    fn dead(&self, it: &Item, now: Clock) -> bool {
        it.expired(now)
            || self
                .flush_at
                .is_some_and(|f| now.now_ns >= f && it.stored_ns <= f)
    }

    /// The slot of the live item under `key`; removes it if it is expired or flushed.
    fn live_slot(&mut self, key: &[u8], now: Clock) -> Option<u32> {
        self.live_slot_hashed(key, hash(key), now)
    }

    fn live_slot_hashed(&mut self, key: &[u8], h: u64, now: Clock) -> Option<u32> {
        let slot = self.find_slot(key, h)?;
        let dead = self.slots[slot as usize]
            .as_ref()
            .is_some_and(|it| self.dead(it, now));
        if dead {
            self.remove_slot(slot);
            self.stats.expired += 1;
            return None;
        }
        Some(slot)
    }

    /// The live item under `key`, without counting a lookup or touching its reference bit;
    /// removes it if it is expired or flushed.
    pub fn peek(&mut self, key: &[u8], now: Clock) -> Option<&mut Item> {
        let slot = self.live_slot(key, now)?;
        self.slots[slot as usize].as_mut()
    }

    /// A lookup by a client: counts a hit or miss and sets the item's reference bit.
    pub fn get(&mut self, key: &[u8], now: Clock) -> Option<&mut Item> {
        self.stats.cmd_get += 1;
        let Some(slot) = self.live_slot(key, now) else {
            self.stats.get_misses += 1;
            return None;
        };
        self.stats.get_hits += 1;
        let it = self.slots[slot as usize].as_mut()?;
        it.referenced = true;
        Some(it)
    }

    /// [`get`](Self::get) if `accept` agrees to the item found (or to a miss, `None`): then
    /// `Some` of what `get` returns, counted the same way. If it declines, `None` and nothing
    /// is counted or marked (an expired item is still removed, as any lookup does).
    /// `h` is the key's [`hash`] (as [`Backend::with_hashed_key`](crate::Backend) gives it).
    pub fn get_if(
        &mut self,
        key: &[u8],
        h: u64,
        now: Clock,
        accept: impl FnOnce(Option<&Item>) -> bool,
    ) -> Option<Option<&mut Item>> {
        debug_assert_eq!(h, hash(key));
        let slot = self.live_slot_hashed(key, h, now);
        let found = slot.and_then(|s| self.slots[s as usize].as_ref());
        if !accept(found) {
            return None;
        }
        self.stats.cmd_get += 1;
        let Some(slot) = slot else {
            self.stats.get_misses += 1;
            return Some(None);
        };
        self.stats.get_hits += 1;
        let it = self.slots[slot as usize].as_mut()?;
        it.referenced = true;
        Some(Some(it))
    }

    fn remove_slot(&mut self, slot: u32) -> Option<Item> {
        let it = self.slots[slot as usize].take()?;
        if let Ok(e) = self.table.find_entry(it.hash, |&i| i == slot) {
            e.remove();
        }
        self.used -= item_cost(it.key.len(), it.value.len());
        self.live -= 1;
        self.free.push(slot);
        Some(it)
    }

    /// Remove `key` (live or not); returns the item if it was live.
    pub fn remove(&mut self, key: &[u8], now: Clock) -> Option<Item> {
        let slot = self.find_slot(key, hash(key))?;
        let it = self.remove_slot(slot)?;
        if self.dead(&it, now) { None } else { Some(it) }
    }

    /// Store `value` under `key` unconditionally with a fresh CAS id, evicting as needed.
    /// Returns the CAS id, or `None` if the item can never fit (the old item, if any, is
    /// removed in that case too, as memcached does for a too-large SET).
    pub fn insert(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        flags: u32,
        deadline: Deadline,
        now: Clock,
    ) -> Option<u64> {
        let h = hash(key);
        if let Some(slot) = self.find_slot(key, h) {
            self.remove_slot(slot);
        }
        if !self.fits(key.len(), value.len()) {
            return None;
        }
        let cost = item_cost(key.len(), value.len());
        while self.used + cost > self.cfg.mem_limit {
            let Some(v) = self.hand.victim(&mut self.slots, now) else {
                break;
            };
            let expired = self.slots[v].as_ref().is_some_and(|it| self.dead(it, now));
            self.remove_slot(v as u32);
            if expired {
                self.stats.expired += 1;
            } else {
                self.stats.evictions += 1;
            }
        }
        let cas = self.take_cas();
        let item = Item {
            key: key.into(),
            value,
            flags,
            cas,
            deadline,
            stored_ns: now.now_ns,
            hash: h,
            referenced: false,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(item);
                s
            }
            None => {
                self.slots.push(Some(item));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.table.insert_unique(h, slot, |&i| {
            slots[i as usize].as_ref().map_or(0, |it| it.hash)
        });
        self.used += cost;
        self.live += 1;
        self.stats.total_items += 1;
        Some(cas)
    }

    /// Drop every item now.
    pub fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = ClockHand::new();
        self.used = 0;
        self.live = 0;
        self.flush_at = None;
    }

    /// memcached's `flush_all [delay]`: with no delay everything goes now; with one, items
    /// stored until the deadline disappear when it passes.
    pub fn flush(&mut self, at: Deadline, now: Clock) {
        match at {
            Deadline::At(t) if t > now.now_ns => self.flush_at = Some(t),
            _ => self.clear(),
        }
    }

    /// Visit every live item (expired ones are skipped, not removed).
    pub fn for_each_live(&self, now: Clock, mut f: impl FnMut(&Item)) {
        for it in self.slots.iter().flatten() {
            if !self.dead(it, now) {
                f(it);
            }
        }
    }
}
