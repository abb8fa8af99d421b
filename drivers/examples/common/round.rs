//! What the driver instruction-count examples share: the counted round and the round count.

use ferrix_drivers::{PacketBuf, QueuePair};

/// One request/reply through the driver; returns the frames received (callgrind counts this
/// function: `--toggle-collect='*driver_round*'`).
#[inline(never)]
pub fn driver_round(q: &mut dyn QueuePair, bufs: &mut Vec<PacketBuf>) -> usize {
    let n = q.rx_burst(bufs, 32);
    q.tx_burst(bufs);
    n
}

/// The rounds to run: the first argument, default 10,000.
pub fn rounds() -> u64 {
    std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000)
}
