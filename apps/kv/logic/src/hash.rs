//! The key hash: one 64-bit hash used both by the store's table and by [`crate::Sharded`] to
//! pick a shard (the shard uses the high bits, the table the low ones, so they do not correlate).
//! A multiply-rotate mix over 8-byte words (FxHash's step with a final avalanche); keys come
//! from clients, so this is not DoS-resistant: a guest facing hostile clients can seed it
//! ([`hash_seeded`]).

const K: u64 = 0x517c_c1b7_2722_0a95;

/// The hash of `key` with seed 0.
pub fn hash(key: &[u8]) -> u64 {
    hash_seeded(key, 0)
}

/// The hash of `key` with a seed.
pub fn hash_seeded(key: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // Final avalanche (murmur3's fmix64) so low and high bits both depend on every byte.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_distinct_hashes() {
        assert_ne!(hash(b"a"), hash(b"b"));
        assert_ne!(hash(b""), hash(b"\0"));
        assert_ne!(hash(b"12345678"), hash(b"123456789"));
        assert_eq!(hash(b"key"), hash(b"key"));
        assert_ne!(hash_seeded(b"key", 1), hash(b"key"));
    }
}
