//! The cost model: what a replica's CPU pays per message and per byte, and what the network
//! adds. One set of constants for every mode and cluster size; see the README ("Performance
//! simulation") for where each comes from.

use super::clock::{NS, Time, US};

/// Network thread (and application thread, for a reply): CPU per received message
/// (DPDK receive, R2P2 parse, dispatch). With [`TX`]: about 10 M small messages a second on a
/// core (eRPC's figure, shared/spec/numbers.md "Peers"), and the per-message cost that makes
/// VanillaRaft lose 43 % at 9 nodes when every operation costs the leader table 12.1's
/// 1 + (N-1) receptions and (N-1) + 1 sends (1 / 570 K ops/s = 1.75 µs for 17 messages).
pub const RX: Time = 100 * NS;
/// CPU per sent message.
pub const TX: Time = 100 * NS;
/// Network thread: CPU per byte received or sent (R2P2 header and payload: copying a request
/// into the pending set or the log, encoding and decoding AppendEntries). From figure 12.7:
/// 512-byte requests cost VanillaRaft 48 % at 3 nodes, about 1.5 KB more per operation
/// through the leader than 24-byte ones (the request in, two AppendEntries out) for about
/// 1 µs more: about 1 ns a byte (with table 12.1's unbatched counts).
pub const PER_BYTE: Time = NS;
/// Application thread: CPU per reply byte. Zero: the reply goes from the application's
/// buffer to the NIC (DPDK TX, the NIC reads it); the egress link is its per-byte cost.
/// Figure 12.9 needs this: 6 KB replies make the unreplicated server IO-bound at about
/// 200 K ops/s (one 10 Gb/s link), not CPU-bound (6 µs a reply at 1 ns a byte).
pub const REPLY_PER_BYTE: Time = 0;
/// One-way latency between two hosts (NIC, switch, NIC), and host to aggregator.
pub const LINK: Time = 5 * US;
/// Each host's egress link: 10 Gb/s (0.8 ns a byte).
pub const LINK_PS_PER_BYTE: Time = 800;
/// Bytes a packet takes on the wire besides its UDP payload: Ethernet header and FCS (18),
/// preamble and inter-frame gap (20), IPv4 (20), UDP (8).
pub const FRAMING: usize = 18 + 20 + 20 + 8;
/// The R2P2 header before every payload (net/src/r2p2/header.rs).
pub const R2P2_HEADER: usize = 8;
/// Payload bytes in one packet: a 1500-byte MTU less the IPv4, UDP and R2P2 headers (the
/// guest's `MAX_MESSAGE`, also the replicas' `max_message_bytes` here).
pub const MAX_PACKET_PAYLOAD: usize = 1500 - 20 - 8 - R2P2_HEADER;
/// Time between two ticks of a replica (the reference ticks at 1 kHz).
pub const TICK: Time = 1_000 * US;

/// The costs of one run (the constants above unless a test varies one).
#[derive(Clone, Copy, Debug)]
pub struct Costs {
    pub rx: Time,
    pub tx: Time,
    pub per_byte: Time,
    pub reply_per_byte: Time,
    pub link: Time,
    /// Picoseconds per byte on a host's egress link; 0: unlimited.
    pub link_ps_per_byte: Time,
    pub tick: Time,
}

impl Costs {
    /// The constants.
    pub const fn standard() -> Costs {
        Costs {
            rx: RX,
            tx: TX,
            per_byte: PER_BYTE,
            reply_per_byte: REPLY_PER_BYTE,
            link: LINK,
            link_ps_per_byte: LINK_PS_PER_BYTE,
            tick: TICK,
        }
    }

    /// CPU to receive a message of `payload` bytes (after the R2P2 header).
    pub fn rx_cost(&self, payload: usize) -> Time {
        self.rx + (payload + R2P2_HEADER) as Time * self.per_byte
    }

    /// CPU to send one.
    pub fn tx_cost(&self, payload: usize) -> Time {
        self.tx + (payload + R2P2_HEADER) as Time * self.per_byte
    }

    /// Application thread: CPU to send a reply of `payload` bytes.
    pub fn reply_cost(&self, payload: usize) -> Time {
        self.tx + (payload + R2P2_HEADER) as Time * self.reply_per_byte
    }

    /// Time on the egress link for one message: R2P2 splits it in packets of at most
    /// [`MAX_PACKET_PAYLOAD`] bytes, each with its header and framing.
    pub fn wire_time(&self, payload: usize) -> Time {
        let packets = payload.div_ceil(MAX_PACKET_PAYLOAD).max(1);
        (payload + packets * (R2P2_HEADER + FRAMING)) as Time * self.link_ps_per_byte
    }
}
