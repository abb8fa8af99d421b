//! The hash and checksum algorithms of v1model's `HashAlgorithm` and the RNG behind
//! `random` and `HashAlgorithm.random`.
//!
//! Data lists (`{a, b, c}`) are concatenated most significant bit first and padded with zero
//! bits at the front to whole bytes. crc32 is CRC-32/ISO-HDLC (the zlib CRC), crc16 is
//! CRC-16/ARC (reflected 0x8005, init 0): the algorithms BMv2 names so. csum16 is the
//! Internet checksum (RFC 1071) over 16-bit words; xor16 the XOR of 16-bit words.

use crate::ir::Algo;
use std::collections::VecDeque;

/// The randomness behind `random` and `HashAlgorithm.random`: splitmix64 (small, seedable),
/// or, for a differential test that must make the same random decisions as the Rust code it
/// mirrors, a queue of injected draws that `random` takes instead.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    /// `Some`: `random` takes its draws from here (and fails when it is empty).
    injected: Option<VecDeque<u64>>,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            injected: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0) from the seeded generator.
    pub fn below(&mut self, n: u128) -> u128 {
        let r = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        r % n.max(1)
    }

    /// Switches `random` to injected draws: from now on each call takes the next of
    /// `draws` (after those injected before) as `d`, and yields `lo + d mod (hi - lo + 1)`.
    pub fn inject(&mut self, draws: impl IntoIterator<Item = u64>) {
        self.injected
            .get_or_insert_with(VecDeque::new)
            .extend(draws);
    }

    /// Injected draws not taken yet (None: not injecting).
    pub fn injected_left(&self) -> Option<usize> {
        self.injected.as_ref().map(VecDeque::len)
    }

    /// One draw of `random` in `0..n` (n > 0): seeded, or the next injected one (None when
    /// they are used up).
    pub fn draw(&mut self, n: u128) -> Option<u128> {
        match &mut self.injected {
            None => Some(self.below(n)),
            Some(q) => q.pop_front().map(|d| u128::from(d) % n.max(1)),
        }
    }
}

/// `(value, width)` pairs as bytes.
pub fn data_bytes(vals: &[(u128, u16)]) -> Vec<u8> {
    let total: usize = vals.iter().map(|&(_, w)| usize::from(w)).sum();
    let bytes = total.div_ceil(8);
    let mut out = vec![0u8; bytes];
    let mut off = bytes * 8 - total;
    for &(v, w) in vals {
        crate::bits::put_bits(&mut out, off, w, v);
        off += usize::from(w);
    }
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

pub fn crc16(data: &[u8]) -> u16 {
    let mut c = 0u16;
    for &b in data {
        c ^= u16::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xa001
            } else {
                c >> 1
            };
        }
    }
    c
}

fn words(data: &[u8]) -> impl Iterator<Item = u16> + '_ {
    data.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
}

pub fn csum16(data: &[u8]) -> u16 {
    let mut s: u32 = words(data).map(u32::from).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The algorithm's value over `data`.
pub fn checksum_or_hash(algo: Algo, data: &[u8], rng: &mut Rng) -> u128 {
    match algo {
        Algo::Crc32 => u128::from(crc32(data)),
        Algo::Crc16 => u128::from(crc16(data)),
        Algo::Csum16 => u128::from(csum16(data)),
        Algo::Xor16 => u128::from(words(data).fold(0, |a, w| a ^ w)),
        Algo::Identity => data
            .iter()
            .rev()
            .take(16)
            .rev()
            .fold(0u128, |v, &b| (v << 8) | u128::from(b)),
        Algo::Random => u128::from(rng.next_u64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        // The catalogue's check values over "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc16(b"123456789"), 0xbb3d);
        // RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d).
        assert_eq!(csum16(&[0, 1, 0xf2, 3, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        assert_eq!(data_bytes(&[(1, 4), (0x23, 8)]), [0x01, 0x23]);
    }

    #[test]
    fn injected_draws_replace_the_generator_in_order() {
        let mut r = Rng::new(1);
        assert_eq!(r.injected_left(), None);
        assert!(r.draw(10).is_some_and(|d| d < 10));
        r.inject([7, 25, u64::MAX]);
        r.inject([3]);
        assert_eq!(r.injected_left(), Some(4));
        assert_eq!(r.draw(100), Some(7));
        assert_eq!(r.draw(10), Some(5));
        assert_eq!(r.draw(1 << 64), Some(u128::from(u64::MAX)));
        assert_eq!(r.draw(2), Some(1));
        assert_eq!(r.draw(2), None, "used up");
    }
}
