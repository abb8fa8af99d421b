//! The synthetic-service request format (thesis 3.2: the server spins for a service time the
//! request names, then replies with a configured size), shared by `apps/synthetic` and
//! `tools/r2p2-linux`.
//!
//! Layout: the first 8 bytes of the request payload are the service time in nanoseconds, a
//! little-endian `u64` (the host order of the load generators); anything after is padding. A
//! payload shorter than 8 bytes names no service time (0 ns: plain echo).

/// Bytes of the service-time field.
pub const SERVICE_TIME_LEN: usize = 8;

/// The service time a request asks for (0 if it names none).
pub fn service_time_ns(payload: &[u8]) -> u64 {
    payload
        .first_chunk::<SERVICE_TIME_LEN>()
        .map_or(0, |b| u64::from_le_bytes(*b))
}

/// Writes a request of `size` bytes (at least 8) asking for `ns` nanoseconds into `out`.
pub fn encode_request(ns: u64, size: usize, out: &mut alloc::vec::Vec<u8>) {
    out.clear();
    out.extend_from_slice(&ns.to_le_bytes());
    out.resize(size.max(SERVICE_TIME_LEN), 0);
}
