//! Bit fields of packets, big-endian and most significant bit first as P4 headers are laid
//! out. Callers check that the bytes are there.

/// The `w`-bit value at bit offset `off` of `buf`.
#[inline]
pub fn get_bits(buf: &[u8], off: usize, w: u16) -> u128 {
    let w = usize::from(w);
    if off.is_multiple_of(8) && w.is_multiple_of(8) {
        return buf[off / 8..off / 8 + w / 8]
            .iter()
            .fold(0u128, |v, &b| (v << 8) | u128::from(b));
    }
    let mut v = 0u128;
    for i in off..off + w {
        v = (v << 1) | u128::from((buf[i / 8] >> (7 - i % 8)) & 1);
    }
    v
}

/// Writes the low `w` bits of `v` at bit offset `off` of `buf`.
#[inline]
pub fn put_bits(buf: &mut [u8], off: usize, w: u16, v: u128) {
    let w = usize::from(w);
    if off.is_multiple_of(8) && w.is_multiple_of(8) {
        let n = w / 8;
        for (j, b) in buf[off / 8..off / 8 + n].iter_mut().enumerate() {
            *b = (v >> (8 * (n - 1 - j))) as u8;
        }
        return;
    }
    for j in 0..w {
        let i = off + j;
        let bit = ((v >> (w - 1 - j)) & 1) as u8;
        let m = 1u8 << (7 - i % 8);
        buf[i / 8] = (buf[i / 8] & !m) | (bit << (7 - i % 8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_unaligned() {
        let mut b = [0u8; 4];
        put_bits(&mut b, 4, 4, 0x5);
        put_bits(&mut b, 8, 13, 0x1abc);
        put_bits(&mut b, 21, 11, 0x7ff);
        assert_eq!(b, [0x05, 0xd5, 0xe7, 0xff]);
        assert_eq!(get_bits(&b, 4, 4), 5);
        assert_eq!(get_bits(&b, 8, 13), 0x1abc);
        assert_eq!(get_bits(&b, 21, 11), 0x7ff);
        assert_eq!(get_bits(&b, 0, 32), 0x05d5e7ff);
    }
}
