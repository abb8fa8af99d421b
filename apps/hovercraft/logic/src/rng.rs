//! The replica's only source of randomness: SplitMix64 from the configured seed, used to
//! draw election timeouts. Same seed, same timeouts: the simulation replays exactly.

/// SplitMix64 state.
#[derive(Clone, Debug)]
pub struct SplitMix {
    state: u64,
}

impl SplitMix {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> SplitMix {
        SplitMix { state: seed }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % u64::from(hi - lo)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_stays_inside_and_replays() {
        let (mut a, mut b) = (SplitMix::new(9), SplitMix::new(9));
        for _ in 0..1000 {
            let x = a.range(10, 20);
            assert!((10..20).contains(&x));
            assert_eq!(x, b.range(10, 20));
        }
        assert_eq!(a.range(5, 5), 5);
    }
}
