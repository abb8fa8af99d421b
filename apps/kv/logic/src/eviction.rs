//! CLOCK eviction over the store's slot array.
//!
//! Why CLOCK and not LRU: a hit only sets a bit in the item it already touched (no list
//! relinking, no writes to neighbours), so GET-heavy loads stay cheap, and the policy needs no
//! per-item pointers (memory overhead is one bool). It approximates LRU: the hand sweeps the
//! slots, clears reference bits it finds set (a second chance) and evicts the first item whose
//! bit is clear. Expired items are taken whatever their bit. The sweep is bounded: after two
//! full turns every bit has been cleared, so a victim is always found if any slot is occupied.

use crate::expiry::Clock;
use crate::item::Item;
use alloc::vec::Vec;

/// The clock hand.
#[derive(Debug, Default, Clone)]
pub struct ClockHand {
    pos: usize,
}

impl ClockHand {
    /// A hand at slot 0.
    pub const fn new() -> Self {
        Self { pos: 0 }
    }

    /// The slot of the next victim, or `None` if every slot is empty. Clears the reference
    /// bits it passes over; never visits more than `2 * slots.len()` slots.
    pub fn victim(&mut self, slots: &mut [Option<Item>], now: Clock) -> Option<usize> {
        let n = slots.len();
        if n == 0 {
            return None;
        }
        for _ in 0..2 * n {
            let i = self.pos % n;
            self.pos = (i + 1) % n;
            if let Some(item) = slots[i].as_mut() {
                if item.expired(now) || !item.referenced {
                    return Some(i);
                }
                item.referenced = false;
            }
        }
        None
    }
}

/// Free slot indexes, reused before the slot array grows.
#[derive(Debug, Default, Clone)]
pub struct FreeList {
    free: Vec<u32>,
}

impl FreeList {
    /// Take a free slot index.
    pub fn pop(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Return a slot index.
    pub fn push(&mut self, i: u32) {
        self.free.push(i);
    }

    /// Forget every free slot (the slot array was cleared).
    pub fn clear(&mut self) {
        self.free.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::Deadline;
    use alloc::vec;

    fn item(referenced: bool, deadline: Deadline) -> Option<Item> {
        Some(Item {
            key: vec![b'k'].into_boxed_slice(),
            value: Vec::new(),
            flags: 0,
            cas: 1,
            deadline,
            stored_ns: 0,
            hash: 0,
            referenced,
        })
    }

    #[test]
    fn second_chance_then_victim() {
        let now = Clock::default();
        let mut slots = vec![
            item(true, Deadline::Never),
            None,
            item(false, Deadline::Never),
        ];
        let mut hand = ClockHand::new();
        assert_eq!(hand.victim(&mut slots, now), Some(2));
        // Slot 0 lost its bit on the way.
        assert!(!slots[0].as_ref().is_some_and(|i| i.referenced));
        slots[2] = None;
        assert_eq!(hand.victim(&mut slots, now), Some(0));
    }

    #[test]
    fn all_referenced_still_finds_one_and_empty_finds_none() {
        let now = Clock::default();
        let mut slots = vec![item(true, Deadline::Never), item(true, Deadline::Never)];
        let mut hand = ClockHand::new();
        assert_eq!(hand.victim(&mut slots, now), Some(0));
        let mut empty: Vec<Option<Item>> = vec![None, None];
        assert_eq!(hand.victim(&mut empty, now), None);
        assert_eq!(hand.victim(&mut [], now), None);
    }

    #[test]
    fn expired_items_go_first() {
        let now = Clock::new(10, 0);
        let mut slots = vec![item(true, Deadline::Never), item(true, Deadline::At(5))];
        let mut hand = ClockHand::new();
        assert_eq!(hand.victim(&mut slots, now), Some(1));
    }
}
