//! Which backend a redirected SYN goes to.

/// A load-balancing policy for CRAB SYNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Uniform over the backends (a seeded generator: the same seed, the same picks).
    Random,
    /// Each backend in turn.
    RoundRobin,
    /// The backend with the least load: last reported connections plus SYNs since (ties to
    /// the lowest index).
    LeastConnections,
}

impl Policy {
    /// Parses `random`, `rr` / `round-robin`, `lc` / `least-connections`.
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "random" => Some(Policy::Random),
            "rr" | "round-robin" => Some(Policy::RoundRobin),
            "lc" | "least-connections" => Some(Policy::LeastConnections),
            _ => None,
        }
    }
}

/// 64-bit finaliser (a bijective mix): the stateless fallback hash and the random picks.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The picking state of one load balancer.
#[derive(Clone, Debug)]
pub struct Picker {
    policy: Policy,
    next: usize,
    draws: u64,
    seed: u64,
}

impl Picker {
    /// A picker for `policy`, `seed` for [`Policy::Random`].
    pub fn new(policy: Policy, seed: u64) -> Picker {
        Picker {
            policy,
            next: 0,
            draws: 0,
            seed,
        }
    }

    /// The backend for the next redirected SYN among `n` (> 0) with loads `load`.
    pub fn pick(&mut self, n: usize, load: &[u64]) -> usize {
        match self.policy {
            Policy::Random => {
                self.draws += 1;
                (mix(self.seed ^ self.draws) % n as u64) as usize
            }
            Policy::RoundRobin => {
                let i = self.next % n;
                self.next = (i + 1) % n;
                i
            }
            Policy::LeastConnections => (0..n)
                .min_by_key(|&i| (load.get(i).copied().unwrap_or(0), i))
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_pick_as_documented() {
        let mut rr = Picker::new(Policy::RoundRobin, 0);
        let picks: alloc::vec::Vec<usize> = (0..5).map(|_| rr.pick(3, &[])).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1]);
        let mut lc = Picker::new(Policy::LeastConnections, 0);
        assert_eq!(lc.pick(3, &[5, 2, 2]), 1);
        assert_eq!(lc.pick(3, &[0, 2, 2]), 0);
        let mut r = Picker::new(Policy::Random, 7);
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            seen[r.pick(4, &[])] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
        let (mut a, mut b) = (
            Picker::new(Policy::Random, 7),
            Picker::new(Policy::Random, 7),
        );
        assert!((0..100).all(|_| a.pick(5, &[]) == b.pick(5, &[])));
        assert_eq!(Policy::parse("lc"), Some(Policy::LeastConnections));
        assert_eq!(Policy::parse("fastest"), None);
    }
}
