//! A totally ordered simulation time, so event times can sit in a `BinaryHeap`.

use std::cmp::Ordering;

/// An `f64` time ordered by `total_cmp` (simulated times are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Time(pub f64);

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
