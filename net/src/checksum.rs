//! The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement sum of
//! the data taken as big-endian 16-bit words, used by IPv4, ICMP and UDP.
//!
//! [`Checksum`] adds 64-bit words with end-around carry and folds to 16 bits at the end, so it
//! never overflows for any length and costs about one addition per 8 bytes.

use core::net::Ipv4Addr;

/// A running one's-complement sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
}

/// Folds a 64-bit one's-complement sum to 16 bits (end-around carries at each step).
#[inline]
fn fold16(s: u64) -> u16 {
    let (s32, c) = (s as u32).overflowing_add((s >> 32) as u32);
    let s32 = s32.wrapping_add(u32::from(c));
    let (s16, c) = (s32 as u16).overflowing_add((s32 >> 16) as u16);
    s16.wrapping_add(u16::from(c))
}

/// One's-complement addition in 64 bits: the carry out wraps around into bit 0.
#[inline]
fn add_carry(sum: u64, w: u64) -> u64 {
    let (s, carry) = sum.overflowing_add(w);
    // If there was a carry, s <= 2^64 - 2, so adding it back cannot overflow.
    s.wrapping_add(u64::from(carry))
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0 }
    }

    /// Adds `data`, which starts at an even offset of the message. A trailing odd byte is
    /// padded with a zero byte (RFC 1071 §4.1); so only the last chunk of a message may have an
    /// odd length.
    ///
    /// Sums 64-bit words in the machine's byte order with end-around carry,
    /// folds them to 16 bits and swaps the result to network order: RFC 1071 §2(B) (the sum
    /// is independent of byte order up to a final swap) and §2(C) (any word size that is a
    /// multiple of 16 bits gives the same folded result).
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        let (words, rest) = data.as_chunks::<8>();
        let mut sum = 0u64;
        for w in words {
            sum = add_carry(sum, u64::from_ne_bytes(*w));
        }
        // The last 0-7 bytes in pieces of 4, 2 and 1 (fixed-size loads, no memcpy call): each
        // byte keeps the parity of its offset, which is all a 16-bit one's-complement sum needs.
        let (w4, rest) = rest.as_chunks::<4>();
        if let Some(w) = w4.first() {
            sum = add_carry(sum, u64::from(u32::from_ne_bytes(*w)));
        }
        let (w2, rest) = rest.as_chunks::<2>();
        if let Some(w) = w2.first() {
            sum = add_carry(sum, u64::from(u16::from_ne_bytes(*w)));
        }
        if let Some(&b) = rest.first() {
            sum = add_carry(sum, u64::from(u16::from_ne_bytes([b, 0])));
        }
        self.sum = add_carry(self.sum, u64::from(u16::from_be(fold16(sum))));
    }

    /// Adds one big-endian 16-bit word.
    pub fn add_u16(&mut self, word: u16) {
        self.sum = add_carry(self.sum, u64::from(word));
    }

    /// Adds an IPv4 address (two words).
    pub fn add_ipv4(&mut self, addr: Ipv4Addr) {
        self.sum = add_carry(self.sum, u64::from(addr.to_bits()));
    }

    /// Adds the IPv4 pseudo-header of RFC 768 / RFC 793: source, destination, protocol and the
    /// upper-layer length.
    pub fn add_pseudo_header(&mut self, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) {
        self.add_ipv4(src);
        self.add_ipv4(dst);
        self.add_u16(u16::from(protocol));
        self.add_u16(len);
    }

    /// The folded 16-bit one's-complement sum (not yet complemented).
    pub fn sum16(&self) -> u16 {
        fold16(self.sum)
    }

    /// The checksum to store in a header: the complement of the folded sum.
    pub fn finish(&self) -> u16 {
        !self.sum16()
    }
}

/// The checksum of `data` alone.
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.finish()
}

/// The checksum of a 20-byte block (an IPv4 header without options): five 32-bit words in
/// machine order, folded and swapped once (RFC 1071 §2(B)); the same value as
/// [`checksum`], in a handful of instructions.
#[inline]
pub fn checksum20(h: &[u8; 20]) -> u16 {
    let (words, _) = h.as_chunks::<4>();
    let sum: u64 = words
        .iter()
        .map(|w| u64::from(u32::from_ne_bytes(*w)))
        .sum();
    !u16::from_be(fold16(sum))
}

/// True if `data`, checksum field included, sums to all ones (RFC 1071 §1: a correct message
/// with its checksum verifies to zero after complementing).
pub fn verify(data: &[u8]) -> bool {
    checksum(data) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut c = Checksum::new();
        c.add_bytes(&data);
        assert_eq!(c.sum16(), 0xddf2);
        assert_eq!(c.finish(), !0xddf2);
    }

    /// A reference implementation, 16 bits at a time, straight from RFC 1071 §4.1.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            sum += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
            i += 2;
        }
        if i < data.len() {
            sum += u32::from(data[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn matches_reference_for_all_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn sums_of_pieces_match_the_whole() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 91 + 7) as u8).collect();
        for len in [0usize, 1, 7, 8, 33, 64, 65, 199] {
            for cut in (0..=len).step_by(2) {
                let mut c = Checksum::new();
                c.add_bytes(&data[..cut]);
                c.add_bytes(&data[cut..len]);
                assert_eq!(c.finish(), reference(&data[..len]), "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn checksum20_matches_the_reference() {
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let mut h = [0u8; 20];
            for b in &mut h {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            assert_eq!(checksum20(&h), reference(&h), "{h:?}");
        }
        assert_eq!(checksum20(&[0xff; 20]), reference(&[0xff; 20]));
        assert_eq!(checksum20(&[0; 20]), reference(&[0; 20]));
    }

    #[test]
    fn fold_wraps_every_carry() {
        assert_eq!(fold16(0), 0);
        assert_eq!(fold16(u64::MAX), 0xffff);
        assert_eq!(fold16(0x0001_0000_0000_ffff), 0x0001);
        assert_eq!(fold16(0xffff_ffff_0000_0001), 0x0001);
    }

    #[test]
    fn all_ones_data_does_not_overflow() {
        let data = [0xffu8; 9000];
        assert_eq!(checksum(&data), reference(&data));
    }

    #[test]
    fn verify_roundtrip() {
        let mut data = [
            0x45, 0, 0, 0x1c, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
    }
}
