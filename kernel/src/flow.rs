//! Flow steering arithmetic (pure, host-tested): which core of a queue pair's group handles a
//! frame, by a hash of its IPv4 flow. Used by `net::steer` for NICs with fewer queue pairs
//! than cores.

use alloc::vec::Vec;

/// The cores queue pair `q` serves when there are `pairs` pairs and `cpus` cores.
pub fn group(q: usize, pairs: usize, cpus: usize) -> Vec<usize> {
    (q..cpus).step_by(pairs.max(1)).collect()
}

/// The owner (queue pair) of a core without a pair of its own.
pub fn owner_of(core: usize, pairs: usize) -> usize {
    core % pairs.max(1)
}

/// A flow hash of an Ethernet frame: IPv4 addresses and, for TCP and UDP, ports; 0 for
/// anything else (which then stays on the owner).
pub fn flow_hash(frame: &[u8]) -> u64 {
    let Some(h) = frame.get(..38) else { return 0 };
    if h[12..14] != [0x08, 0x00] || h[14] >> 4 != 4 {
        return 0;
    }
    let ihl = usize::from(h[14] & 0x0f) * 4;
    let mut x = u64::from(u32::from_be_bytes([h[26], h[27], h[28], h[29]]))
        ^ (u64::from(u32::from_be_bytes([h[30], h[31], h[32], h[33]])) << 32);
    let proto = h[23];
    if (proto == 6 || proto == 17)
        && let Some(p) = frame.get(14 + ihl..14 + ihl + 4)
    {
        x ^= u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]])).rotate_left(16);
    }
    // A 64-bit finaliser (splitmix64) so nearby addresses and ports spread.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The core of `group` that handles a frame with hash `h`.
pub fn pick(group: &[usize], h: u64) -> usize {
    group
        .get((h % group.len().max(1) as u64) as usize)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src_port: u16) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 60];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&src_port.to_be_bytes());
        f[36..38].copy_from_slice(&7u16.to_be_bytes());
        f
    }

    #[test]
    fn groups_and_owners() {
        assert_eq!(group(0, 1, 4), [0, 1, 2, 3]);
        assert_eq!(group(1, 2, 5), [1, 3]);
        assert_eq!(group(0, 4, 4), [0]);
        assert_eq!(owner_of(3, 2), 1);
        assert_eq!(owner_of(3, 0), 0);
    }

    #[test]
    fn flows_spread_and_stay_put() {
        let g = group(0, 1, 4);
        let mut seen = [0; 4];
        for port in 40000..40064 {
            let f = udp(port);
            let c = pick(&g, flow_hash(&f));
            assert_eq!(c, pick(&g, flow_hash(&f)), "same flow, same core");
            seen[c] += 1;
        }
        assert!(seen.iter().all(|&n| n > 4), "{seen:?}");
    }

    #[test]
    fn non_ip_and_short_frames_stay_on_the_owner() {
        assert_eq!(flow_hash(&[0u8; 20]), 0);
        let mut arp = udp(1);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(flow_hash(&arp), 0);
        assert_eq!(pick(&[5, 6], 0), 5);
    }
}
