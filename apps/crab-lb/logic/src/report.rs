//! The load report a backend sends the load balancer (least-connections policy): one UDP
//! datagram to the VIP's report port from the backend's own address, 12 bytes, big-endian:
//! `"CRAB"`, `u8 version` (1), three zero bytes, `u32 connections` (open connections now).

/// The report's size.
pub const REPORT_LEN: usize = 12;
/// Its first bytes.
pub const MAGIC: [u8; 4] = *b"CRAB";

/// The report of `connections` open connections.
pub fn encode(connections: u32) -> [u8; REPORT_LEN] {
    let mut b = [0u8; REPORT_LEN];
    b[..4].copy_from_slice(&MAGIC);
    b[4] = 1;
    b[8..].copy_from_slice(&connections.to_be_bytes());
    b
}

/// The connections a report states, or None if it is not one.
pub fn decode(b: &[u8]) -> Option<u32> {
    let b: &[u8; REPORT_LEN] = b.try_into().ok()?;
    if b[..4] != MAGIC || b[4] != 1 || b[5..8] != [0, 0, 0] {
        return None;
    }
    Some(u32::from_be_bytes([b[8], b[9], b[10], b[11]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        assert_eq!(decode(&encode(77)), Some(77));
        assert_eq!(decode(&encode(77)[..11]), None);
        let mut b = encode(1);
        b[4] = 2;
        assert_eq!(decode(&b), None);
        assert_eq!(decode(b"CRAB\x01\0\0\0\0\0\0\x01\0"), None);
    }
}
