//! Parked connections: which pool slot a segment belongs to when its socket is not in
//! smoltcp's socket set.
//!
//! smoltcp visits every socket of its set on every egress poll, and every socket on every
//! received segment until one accepts it, so an endpoint with 10,000 open connections would
//! pay for all of them on each event. The endpoint therefore *parks* connections that have
//! been quiet for a while (established, nothing unacknowledged, no timer pending): their socket
//! leaves the set and waits in its pool slot, and this table maps the segment's 4-tuple to the
//! slot so that the next segment (or call) for it puts the socket back first.
//!
//! The table is an open-addressing hash map with linear probing and backward-shift deletion,
//! sized once for the whole pool: no allocation after [`ParkTable::with_capacity`].

/// A connection as its segments name it: the peer's address and port, our port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Peer IPv4 address, as a big-endian `u32`.
    pub remote_ip: u32,
    /// Peer port.
    pub remote_port: u16,
    /// Our port.
    pub local_port: u16,
}

impl FourTuple {
    fn hash(self) -> u64 {
        let k = (u64::from(self.remote_ip) << 32)
            | (u64::from(self.remote_port) << 16)
            | u64::from(self.local_port);
        // A 64-bit multiplicative mix (Fibonacci hashing): cheap and spreads ports well.
        (k ^ (k >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// The 4-tuple of an Ethernet/IPv4/TCP frame, seen from the receiver (remote = source).
pub fn segment_key(frame: &[u8]) -> Option<FourTuple> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || *ip.get(9)? != 6 {
        return None;
    }
    let tcp = ip.get(ihl..ihl + 4)?;
    Some(FourTuple {
        remote_ip: u32::from_be_bytes(ip.get(12..16)?.try_into().ok()?),
        remote_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        local_port: u16::from_be_bytes([tcp[2], tcp[3]]),
    })
}

/// 4-tuple -> pool slot, for parked connections.
#[derive(Debug)]
pub struct ParkTable {
    cells: alloc::vec::Vec<Option<(FourTuple, u32)>>,
    mask: usize,
    len: usize,
}

impl ParkTable {
    /// A table for up to `n` entries (kept at most half full).
    pub fn with_capacity(n: usize) -> Self {
        let cap = (2 * n.max(1)).next_power_of_two();
        ParkTable {
            cells: alloc::vec![None; cap],
            mask: cap - 1,
            len: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn home(&self, key: FourTuple) -> usize {
        (key.hash() >> 32) as usize & self.mask
    }

    /// The slot parked under `key`.
    pub fn get(&self, key: FourTuple) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            match self.cells[i] {
                Some((k, slot)) if k == key => return Some(slot),
                Some(_) => i = (i + 1) & self.mask,
                None => return None,
            }
        }
    }

    /// Parks `slot` under `key` (replacing an entry with the same key). Returns false when
    /// the table is full (more entries than it was sized for): the caller keeps the
    /// connection unparked.
    pub fn insert(&mut self, key: FourTuple, slot: u32) -> bool {
        let mut i = self.home(key);
        loop {
            match self.cells[i] {
                Some((k, _)) if k == key => {
                    self.cells[i] = Some((key, slot));
                    return true;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => {
                    if 2 * (self.len + 1) > self.cells.len() {
                        return false;
                    }
                    self.cells[i] = Some((key, slot));
                    self.len += 1;
                    return true;
                }
            }
        }
    }

    /// Removes `key`; returns its slot.
    pub fn remove(&mut self, key: FourTuple) -> Option<u32> {
        let mut i = self.home(key);
        let slot = loop {
            match self.cells[i] {
                Some((k, slot)) if k == key => break slot,
                Some(_) => i = (i + 1) & self.mask,
                None => return None,
            }
        };
        self.cells[i] = None;
        self.len -= 1;
        // Backward shift: move later entries of the probe run into the hole when their home
        // position allows it, so lookups never stop early at a false gap.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        while let Some((k, s)) = self.cells[j] {
            let home = self.home(k);
            // Entry at j may move to the hole if its home is not in (hole, j] cyclically.
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.cells[hole] = Some((k, s));
                self.cells[j] = None;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(ip: u32, rp: u16, lp: u16) -> FourTuple {
        FourTuple {
            remote_ip: ip,
            remote_port: rp,
            local_port: lp,
        }
    }

    #[test]
    fn parses_tcp_frames_only() {
        let mut f = [0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&7000u16.to_be_bytes());
        assert_eq!(
            segment_key(&f),
            Some(key(u32::from_be_bytes([10, 0, 0, 2]), 40000, 7000))
        );
        f[23] = 17;
        assert_eq!(segment_key(&f), None);
        assert_eq!(segment_key(&f[..20]), None);
    }

    #[test]
    fn full_table_refuses() {
        let mut t = ParkTable::with_capacity(2);
        assert!(t.insert(key(1, 1, 1), 1));
        assert!(t.insert(key(2, 2, 2), 2));
        assert!(!t.insert(key(3, 3, 3), 3));
        assert_eq!(t.len(), 2);
    }

    proptest! {
        /// Random inserts and removes agree with a HashMap (colliding keys included: few
        /// distinct values per field).
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec((any::<bool>(), 0u32..4, 0u16..8, 0u16..3, any::<u32>()), 0..400)) {
            let mut t = ParkTable::with_capacity(64);
            let mut m: HashMap<FourTuple, u32> = HashMap::new();
            for (ins, ip, rp, lp, slot) in ops {
                let k = key(ip, rp, lp);
                if ins {
                    if t.insert(k, slot) {
                        m.insert(k, slot);
                    } else {
                        prop_assert!(!m.contains_key(&k) && m.len() >= 64);
                    }
                } else {
                    prop_assert_eq!(t.remove(k), m.remove(&k));
                }
                prop_assert_eq!(t.len(), m.len());
                for (k, v) in &m {
                    prop_assert_eq!(t.get(*k), Some(*v));
                }
            }
        }
    }
}
