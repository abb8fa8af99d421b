//! Device statistics: frames and bytes per queue, drops by reason, the broken flag. Kept in
//! the device state (under its mutex) and handed to the caller as a [`NetStats`] snapshot.

use std::fmt;

/// Frames and bytes that went through one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Frames.
    pub frames: u64,
    /// Bytes of Ethernet frames (without the virtio-net header).
    pub bytes: u64,
}

/// Dropped frames, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// RX: a frame arrived while the driver was not ready (DRIVER_OK clear, or broken).
    pub rx_not_ready: u64,
    /// RX: the target queue had no buffer posted.
    pub rx_no_buffer: u64,
    /// RX: the frame did not fit the posted descriptor chain.
    pub rx_too_big: u64,
    /// RX: the backend failed to deliver a frame (read error).
    pub rx_backend_error: u64,
    /// RX: a unicast frame for another MAC (switch backend only).
    pub rx_not_for_us: u64,
    /// TX: the chain was shorter than the virtio-net header.
    pub tx_too_short: u64,
    /// TX: the frame was larger than 65535 bytes.
    pub tx_too_big: u64,
    /// TX: the backend refused the frame (write error, peer gone, full).
    pub tx_backend_error: u64,
}

/// Statistics of one virtio-net device at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Per queue index (receiveq0, transmitq0, receiveq1, ...), frames the device wrote to
    /// (RX) or read from (TX) that queue; the control queue counts commands.
    pub queues: Vec<QueueStats>,
    /// Drops by reason.
    pub drops: Drops,
    /// Whether the device was marked broken (DEVICE_NEEDS_RESET) at the end.
    pub broken: bool,
    /// How many times the guest broke the device (invalid descriptors, rings, loops).
    pub broken_events: u64,
    /// The last reason the device was marked broken.
    pub broken_reason: Option<String>,
    /// Queue pairs active at the end.
    pub active_pairs: u16,
    /// Interrupts raised.
    pub interrupts: u64,
}

impl NetStats {
    /// Total frames received (all RX queues).
    pub fn rx_frames(&self) -> u64 {
        self.queues.iter().step_by(2).map(|q| q.frames).sum()
    }

    /// Total frames transmitted (all TX queues; excludes the control queue).
    pub fn tx_frames(&self) -> u64 {
        let n = self.queues.len() & !1;
        self.queues[..n]
            .iter()
            .skip(1)
            .step_by(2)
            .map(|q| q.frames)
            .sum()
    }
}

impl fmt::Display for NetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "net: active pairs {}, interrupts {}, broken {} (events {}{})",
            self.active_pairs,
            self.interrupts,
            self.broken,
            self.broken_events,
            self.broken_reason
                .as_deref()
                .map(|r| format!(", last: {r}"))
                .unwrap_or_default()
        )?;
        let pairs = self.queues.len() / 2;
        for p in 0..pairs {
            let (rx, tx) = (self.queues[2 * p], self.queues[2 * p + 1]);
            writeln!(
                f,
                "net: pair {p}: rx {} frames {} bytes, tx {} frames {} bytes",
                rx.frames, rx.bytes, tx.frames, tx.bytes
            )?;
        }
        let d = &self.drops;
        write!(
            f,
            "net: drops: rx not ready {}, rx no buffer {}, rx too big {}, rx backend error {}, \
             rx not for us {}, tx too short {}, tx too big {}, tx backend error {}",
            d.rx_not_ready,
            d.rx_no_buffer,
            d.rx_too_big,
            d.rx_backend_error,
            d.rx_not_for_us,
            d.tx_too_short,
            d.tx_too_big,
            d.tx_backend_error
        )
    }
}
