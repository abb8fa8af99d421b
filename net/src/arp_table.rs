//! The ARP cache (RFC 826, with the aging and queueing of RFC 1122 §2.3.2), shared by every
//! core's stack.
//!
//! It maps IPv4 next hops to MAC addresses behind a `spin` reader-writer lock: the fast path
//! (a fresh entry) takes the read lock only. Size is bounded; when it is full the stalest entry
//! is evicted. An entry is fresh for [`ArpConfig::max_age_ns`] after it was learnt, then it must
//! be resolved again. While an address is being resolved, at most one outgoing frame waits for
//! it (RFC 1122 §2.3.2.2: "SHOULD save at least one"); further frames are refused and the caller
//! counts them. The waiting frame is handed back to whichever core learns the address, which
//! sends it.

use crate::eth::MacAddr;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use spin::RwLock;

/// Size and timing of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpConfig {
    /// Most entries kept (at least 1).
    pub capacity: usize,
    /// How long a learnt address stays usable, in ns.
    pub max_age_ns: u64,
    /// Least time between two requests for the same unresolved address, in ns.
    pub retry_ns: u64,
}

impl Default for ArpConfig {
    /// 256 entries, 60 s lifetime (Linux's default `gc_stale_time`), one request per second
    /// (RFC 1122 §2.3.2.1 recommends at most one per second per destination).
    fn default() -> Self {
        ArpConfig {
            capacity: 256,
            max_age_ns: 60_000_000_000,
            retry_ns: 1_000_000_000,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// None while unresolved.
    mac: Option<MacAddr>,
    /// When `mac` was learnt, or when the entry was created if unresolved.
    updated_ns: u64,
    /// When we last sent a request for it.
    requested_ns: u64,
    /// A frame waiting for the address (its destination MAC still to be filled in).
    pending: Option<Vec<u8>>,
}

/// What [`ArpTable::queue`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueOutcome {
    /// The address was learnt meanwhile: send the frame (handed back) now.
    Resolved(MacAddr, Vec<u8>),
    /// The frame waits for the address; send a request if `send_request`.
    Queued {
        /// Whether the caller should broadcast an ARP request now.
        send_request: bool,
        /// Waiting frames thrown away to make room (evicted or expired entries).
        dropped: usize,
    },
    /// Another frame already waits for this address; the new one was dropped.
    Busy {
        /// Whether the caller should repeat the ARP request now.
        send_request: bool,
    },
}

/// What [`ArpTable::learn`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// A frame that was waiting for this address: fill in the MAC and send it.
    pub pending: Option<Vec<u8>>,
    /// Waiting frames thrown away to make room.
    pub dropped: usize,
}

/// The shared ARP cache. `Sync`: put it in an `Arc` (or a `static`) and give it to every core.
#[derive(Debug)]
pub struct ArpTable {
    cfg: ArpConfig,
    map: RwLock<BTreeMap<Ipv4Addr, Entry>>,
}

impl ArpTable {
    /// An empty cache.
    pub fn new(cfg: ArpConfig) -> Self {
        ArpTable {
            cfg: ArpConfig {
                capacity: cfg.capacity.max(1),
                ..cfg
            },
            map: RwLock::new(BTreeMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ArpConfig {
        &self.cfg
    }

    fn fresh(&self, e: &Entry, now_ns: u64) -> Option<MacAddr> {
        e.mac
            .filter(|_| now_ns.saturating_sub(e.updated_ns) < self.cfg.max_age_ns)
    }

    /// The MAC of `ip` if it is known and fresh.
    pub fn lookup(&self, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        self.map.read().get(&ip).and_then(|e| self.fresh(e, now_ns))
    }

    /// Number of entries (resolved or not).
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that `ip` is at `mac`. An existing entry is always updated (RFC 826's merge
    /// step); a new one is created only if `create` (the packet was addressed to us).
    pub fn learn(&self, ip: Ipv4Addr, mac: MacAddr, now_ns: u64, create: bool) -> Learned {
        let mut map = self.map.write();
        let mut out = Learned::default();
        if !map.contains_key(&ip) {
            if !create {
                return out;
            }
            out.dropped = self.make_room(&mut map, now_ns);
        }
        let e = map.entry(ip).or_insert(Entry {
            mac: None,
            updated_ns: now_ns,
            requested_ns: 0,
            pending: None,
        });
        e.mac = Some(mac);
        e.updated_ns = now_ns;
        out.pending = e.pending.take();
        out
    }

    /// Parks `frame` until `ip` is resolved (see [`QueueOutcome`]). Call after a failed
    /// [`lookup`](Self::lookup).
    pub fn queue(&self, ip: Ipv4Addr, frame: Vec<u8>, now_ns: u64) -> QueueOutcome {
        let mut map = self.map.write();
        let retry = |e: &mut Entry| {
            let due = now_ns.saturating_sub(e.requested_ns) >= self.cfg.retry_ns;
            if due {
                e.requested_ns = now_ns;
            }
            due
        };
        let mut dropped = 0;
        if let Some(e) = map.get_mut(&ip) {
            if let Some(mac) = self.fresh(e, now_ns) {
                return QueueOutcome::Resolved(mac, frame);
            }
            if e.mac.take().is_some() {
                // Expired: resolve again from now on.
                e.updated_ns = now_ns;
            }
            if e.pending.is_some() {
                if now_ns.saturating_sub(e.updated_ns) < self.cfg.max_age_ns {
                    return QueueOutcome::Busy {
                        send_request: retry(e),
                    };
                }
                // The waiting frame has waited a whole lifetime: replace it.
                dropped += 1;
                e.updated_ns = now_ns;
            }
            e.pending = Some(frame);
            return QueueOutcome::Queued {
                send_request: retry(e),
                dropped,
            };
        }
        dropped += self.make_room(&mut map, now_ns);
        map.insert(
            ip,
            Entry {
                mac: None,
                updated_ns: now_ns,
                requested_ns: now_ns,
                pending: Some(frame),
            },
        );
        QueueOutcome::Queued {
            send_request: true,
            dropped,
        }
    }

    /// Evicts entries until one more fits: every expired entry if any, else the stalest one.
    /// Returns how many waiting frames were thrown away.
    fn make_room(&self, map: &mut BTreeMap<Ipv4Addr, Entry>, now_ns: u64) -> usize {
        if map.len() < self.cfg.capacity {
            return 0;
        }
        let before: usize = map.values().filter(|e| e.pending.is_some()).count();
        let max_age = self.cfg.max_age_ns;
        map.retain(|_, e| now_ns.saturating_sub(e.updated_ns) < max_age);
        while map.len() >= self.cfg.capacity {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.updated_ns)
                .map(|(ip, _)| *ip)
            else {
                break;
            };
            map.remove(&oldest);
        }
        let after: usize = map.values().filter(|e| e.pending.is_some()).count();
        before.saturating_sub(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const S: u64 = 1_000_000_000;

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }
    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }
    fn table(capacity: usize) -> ArpTable {
        ArpTable::new(ArpConfig {
            capacity,
            max_age_ns: 60 * S,
            retry_ns: S,
        })
    }

    #[test]
    fn is_sync_and_send() {
        fn check<T: Sync + Send>() {}
        check::<ArpTable>();
    }

    #[test]
    fn learn_lookup_and_age() {
        let t = table(4);
        assert_eq!(t.learn(ip(1), mac(1), 0, false), Learned::default());
        assert!(t.is_empty());
        t.learn(ip(1), mac(1), 0, true);
        assert_eq!(t.lookup(ip(1), 59 * S), Some(mac(1)));
        assert_eq!(t.lookup(ip(1), 60 * S), None);
        // Merge: an existing entry is refreshed even when not addressed to us.
        t.learn(ip(1), mac(9), 50 * S, false);
        assert_eq!(t.lookup(ip(1), 100 * S), Some(mac(9)));
    }

    #[test]
    fn queue_one_frame_then_busy_then_release() {
        let t = table(4);
        assert_eq!(
            t.queue(ip(2), vec![1], 0),
            QueueOutcome::Queued {
                send_request: true,
                dropped: 0
            }
        );
        assert_eq!(
            t.queue(ip(2), vec![2], S / 2),
            QueueOutcome::Busy {
                send_request: false
            }
        );
        assert_eq!(
            t.queue(ip(2), vec![3], S),
            QueueOutcome::Busy { send_request: true }
        );
        let l = t.learn(ip(2), mac(2), 2 * S, false);
        assert_eq!(l.pending, Some(vec![1]));
        assert_eq!(
            t.queue(ip(2), vec![4], 3 * S),
            QueueOutcome::Resolved(mac(2), vec![4])
        );
    }

    #[test]
    fn expired_entry_is_resolved_again_and_stale_frame_replaced() {
        let t = table(4);
        t.learn(ip(3), mac(3), 0, true);
        assert_eq!(
            t.queue(ip(3), vec![1], 61 * S),
            QueueOutcome::Queued {
                send_request: true,
                dropped: 0
            }
        );
        assert_eq!(
            t.queue(ip(3), vec![2], 200 * S),
            QueueOutcome::Queued {
                send_request: true,
                dropped: 1
            }
        );
        assert_eq!(t.learn(ip(3), mac(3), 201 * S, true).pending, Some(vec![2]));
    }

    #[test]
    fn bounded_with_eviction_of_stalest() {
        let t = table(2);
        t.learn(ip(1), mac(1), 10, true);
        t.queue(ip(2), vec![7], 5);
        // Full: ip(2) (older, with a waiting frame) goes.
        let l = t.learn(ip(3), mac(3), 20, true);
        assert_eq!(l.dropped, 1);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(ip(1), 30), Some(mac(1)));
        assert_eq!(t.lookup(ip(3), 30), Some(mac(3)));
        assert_eq!(
            t.queue(ip(4), vec![8], 40),
            QueueOutcome::Queued {
                send_request: true,
                dropped: 0
            }
        );
        assert_eq!(t.lookup(ip(1), 40), None);
        assert_eq!(t.len(), 2);
        assert_eq!(table(0).config().capacity, 1);
    }
}
