//! Per-core network statistics: packet and byte counters and drops by reason.
//!
//! Each core's [`NetStack`](crate::NetStack) owns one [`Stats`] and is its only writer, so the
//! counters are plain `u64`; a reader sums cores with [`Stats::merge`]. Counters wrap instead of
//! panicking (they would need centuries to wrap).

use core::fmt;

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Why a frame was dropped. Names are stable: tools and tests match on them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// The stable name (snake_case) used in statistics output.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// The frame is shorter than an Ethernet header.
    EthTruncated => "eth_truncated",
    /// The frame carries an 802.1Q / 802.1ad VLAN tag (not supported).
    Vlan => "vlan",
    /// The EtherType is neither IPv4 nor ARP.
    Ethertype => "ethertype",
    /// The destination MAC is neither ours nor broadcast nor a joined group's.
    DstMac => "dst_mac",
    /// The source MAC is a group (multicast/broadcast) address.
    SrcMac => "src_mac",
    /// The frame (or the IPv4 total length) is larger than the MTU allows.
    Oversize => "oversize",
    /// The ARP packet is shorter than 28 bytes.
    ArpTruncated => "arp_truncated",
    /// ARP for a hardware/protocol pair other than Ethernet/IPv4.
    ArpUnsupported => "arp_unsupported",
    /// ARP opcode other than request or reply.
    ArpOp => "arp_op",
    /// ARP whose target is another host (its sender may still refresh a known entry).
    ArpNotForUs => "arp_not_for_us",
    /// ARP claiming our IP from another MAC (address conflict).
    ArpConflict => "arp_conflict",
    /// An outgoing packet waits for ARP already for this destination; the new one was dropped.
    ArpPending => "arp_pending",
    /// A packet waiting for ARP was dropped because its table entry was evicted or expired.
    ArpEvicted => "arp_evicted",
    /// The IPv4 header is truncated.
    IpTruncated => "ip_truncated",
    /// The IP version is not 4.
    IpVersion => "ip_version",
    /// The IPv4 header checksum is wrong.
    IpChecksum => "ip_checksum",
    /// The IPv4 header has options (IHL > 5).
    IpOptions => "ip_options",
    /// The datagram is a fragment (MF set or non-zero offset).
    IpFragment => "ip_fragment",
    /// The IPv4 header length or total length disagrees with the frame.
    BadLength => "bad_length",
    /// The IPv4 source is broadcast, multicast or unspecified.
    IpSrc => "ip_src",
    /// The IPv4 destination is not us (nor broadcast, nor a group we joined).
    IpNotForUs => "ip_not_for_us",
    /// An IP protocol other than ICMP or UDP.
    IpProtocol => "ip_protocol",
    /// The ICMP message is shorter than its header.
    IcmpTruncated => "icmp_truncated",
    /// The ICMP checksum is wrong.
    IcmpChecksum => "icmp_checksum",
    /// An ICMP type other than echo request (or an echo request with a non-zero code).
    IcmpType => "icmp_type",
    /// An ICMP echo request to a broadcast address (ignored, RFC 1122 §3.2.2.6 allows it).
    IcmpBroadcast => "icmp_broadcast",
    /// An IGMP message that is truncated or fails its checksum.
    IgmpMalformed => "igmp_malformed",
    /// An IGMP message we take no action on (another host's report or leave, a query while
    /// no group is joined, an unknown type); nothing is wrong with it.
    IgmpIgnored => "igmp_ignored",
    /// The UDP datagram is shorter than its header.
    UdpTruncated => "udp_truncated",
    /// The UDP length field disagrees with the IP payload length.
    UdpLength => "udp_length",
    /// The (non-zero) UDP checksum is wrong.
    UdpChecksum => "udp_checksum",
    /// No socket is bound to the UDP destination port.
    UdpNoPort => "udp_no_port",
    /// The driver had no transmit buffer.
    TxFull => "tx_full",
}

/// Counters of one core (or, after [`merge`](Stats::merge), of several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to `receive` (including dropped ones).
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames transmitted (or built in place for the driver to transmit).
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    drops: [u64; DropReason::COUNT],
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// All counters zero.
    pub const fn new() -> Self {
        Stats {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            drops: [0; DropReason::COUNT],
        }
    }

    /// Counts one drop.
    pub fn count_drop(&mut self, reason: DropReason) {
        if let Some(c) = self.drops.get_mut(reason as usize) {
            *c = c.wrapping_add(1);
        }
    }

    /// Drops counted under `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(reason as usize).copied().unwrap_or(0)
    }

    /// All drops, every reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    }

    /// `(reason, count)` for every reason, zero counts included.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.drops.iter())
            .map(|(r, c)| (*r, *c))
    }

    pub(crate) fn count_rx(&mut self, bytes: usize) {
        self.rx_packets = self.rx_packets.wrapping_add(1);
        self.rx_bytes = self.rx_bytes.wrapping_add(bytes as u64);
    }

    pub(crate) fn count_tx(&mut self, bytes: usize) {
        self.tx_packets = self.tx_packets.wrapping_add(1);
        self.tx_bytes = self.tx_bytes.wrapping_add(bytes as u64);
    }

    /// Adds `other`'s counters to these (to sum the cores).
    pub fn merge(&mut self, other: &Stats) {
        self.rx_packets = self.rx_packets.wrapping_add(other.rx_packets);
        self.rx_bytes = self.rx_bytes.wrapping_add(other.rx_bytes);
        self.tx_packets = self.tx_packets.wrapping_add(other.tx_packets);
        self.tx_bytes = self.tx_bytes.wrapping_add(other.tx_bytes);
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a = a.wrapping_add(*b);
        }
    }
}

/// One `name value` line per non-zero counter; drops are named `drop.<reason>`.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in [
            ("rx_packets", self.rx_packets),
            ("rx_bytes", self.rx_bytes),
            ("tx_packets", self.tx_packets),
            ("tx_bytes", self.tx_bytes),
        ] {
            if v != 0 {
                writeln!(f, "{name} {v}")?;
            }
        }
        for (r, v) in self.drop_counts() {
            if v != 0 {
                writeln!(f, "drop.{} {v}", r.name())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn merge_and_display() {
        let mut a = Stats::new();
        a.count_rx(100);
        a.count_drop(DropReason::IpChecksum);
        let mut b = Stats::new();
        b.count_rx(50);
        b.count_tx(60);
        b.count_drop(DropReason::IpChecksum);
        b.count_drop(DropReason::TxFull);
        a.merge(&b);
        assert_eq!(a.rx_packets, 2);
        assert_eq!(a.drops(DropReason::IpChecksum), 2);
        assert_eq!(a.total_drops(), 3);
        assert_eq!(
            a.to_string(),
            "rx_packets 2\nrx_bytes 150\ntx_packets 1\ntx_bytes 60\n\
             drop.ip_checksum 2\ndrop.tx_full 1\n"
        );
        assert_eq!(Stats::new().to_string(), "");
    }
}
