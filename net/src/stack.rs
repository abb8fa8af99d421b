//! The per-core network stack: receive demultiplexing (Ethernet -> ARP | IPv4 -> ICMP | UDP),
//! ARP and ICMP echo answered internally, UDP sockets bound by port, UDP send with ARP
//! resolution, the zero-copy in-place UDP reply, and forwarding a received datagram in place
//! with its sender kept as the source (an R2P2 router).
//!
//! Every core owns a [`NetStack`] (its statistics and port bindings are per core, single
//! writer) and shares one [`ArpTable`] with the others. Replies to ICMP echo go back to the
//! frame's source MAC without consulting the ARP table (the sender just proved it is reachable
//! there), and so do UDP replies in place, unless the stack serves behind an R2P2 router
//! ([`NetStack::set_reply_via_arp`]): a datagram the router forwarded carries the router's MAC
//! but the client's IP, and the reply must go to the client.

use crate::arp::{ARP_LEN, ArpOp, ArpPacket};
use crate::arp_table::{ArpTable, QueueOutcome};
use crate::checksum;
use crate::config::IfConfig;
use crate::eth::{
    self, ETH_HEADER_LEN, ETH_MIN_FRAME, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthFrame, MacAddr,
};
use crate::icmp::{self, EchoRequest, ICMP_ECHO_REPLY, ICMP_HEADER_LEN};
use crate::ipv4::{
    self, IPPROTO_ICMP, IPPROTO_UDP, IPV4_DEFAULT_TTL, IPV4_HEADER_LEN, Ipv4Header, Ipv4Packet,
};
use crate::stats::{DropReason, Stats};
use crate::udp::{self, UDP_HEADER_LEN, UdpPacket};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

/// Offset of the UDP payload in every frame the stack accepts or builds (no VLAN tag, no IP
/// options).
pub const UDP_PAYLOAD_OFFSET: usize = ETH_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;

/// Where the stack writes outgoing frames: the driver's TX queue of this core.
pub trait TxQueue {
    /// Asks for a transmit buffer of `len` bytes, lets `fill` write the whole frame into it,
    /// and queues it. Returns false (and the stack counts a `tx_full` drop) if no buffer.
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool;
}

/// A UDP datagram delivered to a bound port, borrowed from the received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// The sender.
    pub src: SocketAddrV4,
    /// The destination (our address, or a broadcast address).
    pub dst: SocketAddrV4,
    /// The payload.
    pub payload: &'a [u8],
    /// Where `payload` starts in the frame (always [`UDP_PAYLOAD_OFFSET`]): a reply built in
    /// place with [`NetStack::udp_reply_in_place`] writes its payload there.
    pub payload_offset: usize,
}

/// Why [`NetStack::bind_udp`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// Port 0 cannot be bound.
    PortZero,
    /// The port is already bound on this core.
    InUse,
}

/// Why a UDP send failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The datagram would exceed the MTU (or, in place, the frame buffer).
    PayloadTooLarge,
    /// Destination address unspecified, or a port is 0.
    InvalidAddress,
    /// The destination is off our subnet and there is no gateway.
    NoRoute,
    /// Another datagram already waits for ARP to resolve this next hop; this one was dropped
    /// (counted as `arp_pending`).
    ArpPending,
    /// The driver had no transmit buffer (counted as `tx_full`).
    TxFull,
    /// [`NetStack::udp_reply_in_place`] was given a frame that is not an IPv4/UDP frame
    /// without options.
    NotUdp,
}

/// What [`NetStack::forward_in_place`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// The frame now goes to the next hop: transmit it from its buffer. `offload`: its UDP
    /// checksum field holds the pseudo-header sum, the NIC is to complete it (checksum start
    /// 34, field at 40).
    InPlace {
        /// Bytes of the frame to send: the IPv4 datagram without any Ethernet padding it
        /// arrived with (a NIC completing the checksum sums to the end of the frame).
        len: usize,
        /// The NIC completes the UDP checksum.
        offload: bool,
    },
    /// The next hop is not resolved yet: a copy waits for ARP; the caller is done with the
    /// frame.
    Parked,
}

/// One core's network stack.
#[derive(Debug)]
pub struct NetStack {
    cfg: IfConfig,
    /// `cfg.subnet_broadcast()`, computed once (checked on every received datagram).
    subnet_broadcast: Option<Ipv4Addr>,
    arp: Arc<ArpTable>,
    stats: Stats,
    /// Bitmap of bound UDP ports, 65,536 bits.
    ports: Vec<u64>,
    ident: u16,
    /// In-place UDP replies leave the checksum to the NIC ([`NetStack::set_tx_checksum_offload`]).
    tx_csum_offload: bool,
    /// In-place UDP replies go to the ARP cache's MAC of the peer ([`NetStack::set_reply_via_arp`]).
    reply_via_arp: bool,
    /// IPv4 multicast groups joined ([`NetStack::join_group`]), at most [`MAX_GROUPS`].
    groups: Vec<Ipv4Addr>,
}

/// Most multicast groups a stack joins.
pub const MAX_GROUPS: usize = 16;

/// Why [`NetStack::join_group`] refused a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupError {
    /// Not a multicast address, or the all-hosts group (which every member is in anyway).
    NotMulticast,
    /// [`MAX_GROUPS`] joined already.
    Full,
}

impl core::fmt::Display for GroupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GroupError::NotMulticast => {
                f.write_str("not a multicast group address (224.0.0.2 to 239.255.255.255)")
            }
            GroupError::Full => write!(f, "at most {MAX_GROUPS} multicast groups"),
        }
    }
}

/// Where an accepted IPv4 datagram was addressed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cast {
    Unicast,
    Broadcast,
    /// A group we joined, or all-hosts while we are in any group.
    Multicast,
}

impl NetStack {
    /// A stack for interface `cfg` sharing the ARP cache `arp`.
    pub fn new(cfg: IfConfig, arp: Arc<ArpTable>) -> Self {
        NetStack {
            subnet_broadcast: cfg.subnet_broadcast(),
            cfg,
            arp,
            stats: Stats::new(),
            ports: vec![0; 1024],
            ident: 0,
            tx_csum_offload: false,
            reply_via_arp: false,
            groups: Vec::new(),
        }
    }

    /// Joins the IPv4 multicast group `group`: datagrams to it (and to its Ethernet address)
    /// are received like unicast ones, IGMPv2 queries for it are answered, and an unsolicited
    /// report is sent now (RFC 2236 §3) so that snooping switches forward the group here.
    /// Joining a group twice is a no-op (no second report). Each core's stack joins for
    /// itself: frames of a group arrive on whichever queue the NIC picks.
    pub fn join_group(&mut self, group: Ipv4Addr, tx: &mut impl TxQueue) -> Result<(), GroupError> {
        if !group.is_multicast()
            || group == crate::igmp::ALL_HOSTS
            || group.octets() == [224, 0, 0, 0]
        {
            return Err(GroupError::NotMulticast);
        }
        if self.groups.contains(&group) {
            return Ok(());
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(GroupError::Full);
        }
        self.groups.push(group);
        self.send_report(group, tx);
        Ok(())
    }

    /// The groups joined.
    pub fn groups(&self) -> &[Ipv4Addr] {
        &self.groups
    }

    fn send_report(&mut self, group: Ipv4Addr, tx: &mut impl TxQueue) -> bool {
        let ident = self.next_ident();
        let (src_mac, src_ip) = (self.cfg.mac, self.cfg.ip);
        self.transmit(tx, ETH_MIN_FRAME, &mut |buf| {
            buf.fill(0);
            eth::write_header(buf, crate::igmp::group_mac(group), src_mac, ETHERTYPE_IPV4);
            if let Some(b) = buf.get_mut(ETH_HEADER_LEN..) {
                crate::igmp::write_report(b, src_ip, group, ident);
            }
        })
    }

    /// Whether `mac` is the Ethernet address of a group we are in.
    fn is_group_mac(&self, mac: MacAddr) -> bool {
        !self.groups.is_empty()
            && (mac == crate::igmp::group_mac(crate::igmp::ALL_HOSTS)
                || self
                    .groups
                    .iter()
                    .any(|&g| crate::igmp::group_mac(g) == mac))
    }

    /// An IGMP message to a group we are in (or all-hosts): answers queries.
    fn receive_igmp(&mut self, payload: &[u8], tx: &mut impl TxQueue) -> Result<(), DropReason> {
        let m = crate::igmp::Igmp::parse(payload)?;
        if m.kind != crate::igmp::TYPE_QUERY {
            return Err(DropReason::IgmpIgnored);
        }
        let wanted: Vec<Ipv4Addr> = self
            .groups
            .iter()
            .copied()
            .filter(|&g| m.queries(g))
            .collect();
        if wanted.is_empty() {
            return Err(DropReason::IgmpIgnored);
        }
        for g in wanted {
            self.send_report(g, tx);
        }
        Ok(())
    }

    /// Lets [`udp_reply_in_place`](Self::udp_reply_in_place) write only the pseudo-header sum
    /// into the UDP checksum field, for a NIC that completes it (transmit checksum offload;
    /// the driver must then ask the NIC to, for those frames). Other frames are always
    /// checksummed in full.
    pub fn set_tx_checksum_offload(&mut self, on: bool) {
        self.tx_csum_offload = on;
    }

    /// Makes [`udp_reply_in_place`](Self::udp_reply_in_place) address replies to the ARP
    /// cache's MAC for the peer's next hop when it has one, instead of the request frame's
    /// source MAC: needed behind an R2P2 router, whose forwarded requests carry the router's
    /// MAC and the client's IP. Off by default: the lookup (a shared lock) costs about 100
    /// instructions per reply.
    pub fn set_reply_via_arp(&mut self, on: bool) {
        self.reply_via_arp = on;
    }

    /// Whether in-place UDP replies rely on the NIC for their checksum.
    pub fn tx_checksum_offload(&self) -> bool {
        self.tx_csum_offload
    }

    /// The interface configuration.
    pub fn config(&self) -> &IfConfig {
        &self.cfg
    }

    /// The shared ARP cache.
    pub fn arp_table(&self) -> &Arc<ArpTable> {
        &self.arp
    }

    /// This core's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Delivers datagrams for `port` to this core's [`receive`](Self::receive) caller.
    pub fn bind_udp(&mut self, port: u16) -> Result<(), BindError> {
        if port == 0 {
            return Err(BindError::PortZero);
        }
        let (word, bit) = (usize::from(port >> 6), 1u64 << (port & 63));
        let w = self.ports.get_mut(word).ok_or(BindError::PortZero)?;
        if *w & bit != 0 {
            return Err(BindError::InUse);
        }
        *w |= bit;
        Ok(())
    }

    /// Stops delivering datagrams for `port`; true if it was bound.
    pub fn unbind_udp(&mut self, port: u16) -> bool {
        let (word, bit) = (usize::from(port >> 6), 1u64 << (port & 63));
        match self.ports.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                true
            }
            _ => false,
        }
    }

    /// True if `port` is bound on this core.
    pub fn is_bound(&self, port: u16) -> bool {
        let (word, bit) = (usize::from(port >> 6), 1u64 << (port & 63));
        self.ports.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Processes one received frame: ARP and ICMP are answered internally through `tx`;
    /// a UDP datagram to a bound port is returned (payload borrowed from `frame`); everything
    /// else is counted and dropped.
    pub fn receive<'a>(
        &mut self,
        frame: &'a [u8],
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Option<UdpDatagram<'a>> {
        self.receive_checked(frame, false, now_ns, tx)
    }

    /// [`receive`](Self::receive) for a frame whose TCP/UDP checksum the NIC has already
    /// validated (or that comes from the local host with the checksum left to compute) when
    /// `l4_checksum_ok`: the UDP checksum is then not verified again (receive offload).
    pub fn receive_checked<'a>(
        &mut self,
        frame: &'a [u8],
        l4_checksum_ok: bool,
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Option<UdpDatagram<'a>> {
        self.stats.count_rx(frame.len());
        if let Some(d) = self.udp_fast_path(frame, l4_checksum_ok) {
            return Some(d);
        }
        self.receive_general(frame, l4_checksum_ok, now_ns, tx)
    }

    /// Every frame the fast path leaves: demultiplexed by protocol, each drop counted.
    fn receive_general<'a>(
        &mut self,
        frame: &'a [u8],
        l4_checksum_ok: bool,
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Option<UdpDatagram<'a>> {
        match self.demux(frame, l4_checksum_ok, now_ns, tx) {
            Ok(d) => d,
            Err(reason) => {
                self.stats.count_drop(reason);
                None
            }
        }
    }

    /// The common case in one pass over fixed offsets: an option-less, unfragmented IPv4/UDP
    /// datagram to our MAC and address, for a bound port. Accepts exactly the frames
    /// [`demux`](Self::demux) accepts as unicast UDP (the same checks, in one function with
    /// one bounds check); anything else (broadcast, ARP, ICMP, options, any error) returns
    /// None and takes the general path, which counts the drop reason.
    #[inline]
    fn udp_fast_path<'a>(&self, frame: &'a [u8], l4_checksum_ok: bool) -> Option<UdpDatagram<'a>> {
        let h = frame.first_chunk::<UDP_PAYLOAD_OFFSET>()?;
        let ip = &h[ETH_HEADER_LEN..];
        if h[..6] != self.cfg.mac.0
            || h[6] & 1 != 0 // multicast source MAC
            || h[12..14] != ETHERTYPE_IPV4.to_be_bytes()
            || ip[0] != 0x45
            || ip[9] != IPPROTO_UDP
            || ip[6] & 0x3f != 0 // MF or a fragment offset
            || ip[7] != 0
            || frame.len() > ETH_HEADER_LEN.saturating_add(self.cfg.mtu)
        {
            return None;
        }
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if total_len > self.cfg.mtu || total_len > frame.len() - ETH_HEADER_LEN {
            return None;
        }
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        if dst != self.cfg.ip
            || ipv4::is_bad_source(src)
            || Some(src) == self.subnet_broadcast
            || ip
                .first_chunk::<IPV4_HEADER_LEN>()
                .is_none_or(|h| checksum::checksum20(h) != 0)
        {
            return None;
        }
        let u = &ip[IPV4_HEADER_LEN..];
        let udp_len = usize::from(u16::from_be_bytes([u[4], u[5]]));
        let dst_port = u16::from_be_bytes([u[2], u[3]]);
        if udp_len < UDP_HEADER_LEN || udp_len > total_len.checked_sub(IPV4_HEADER_LEN)? {
            return None;
        }
        if !self.is_bound(dst_port) {
            return None;
        }
        let seg = frame
            .get(ETH_HEADER_LEN + IPV4_HEADER_LEN..)?
            .get(..udp_len)?;
        if !l4_checksum_ok && u[6..8] != [0, 0] {
            let mut c = checksum::Checksum::new();
            c.add_pseudo_header(src, dst, IPPROTO_UDP, udp_len as u16);
            c.add_bytes(seg);
            if c.finish() != 0 {
                return None;
            }
        }
        Some(UdpDatagram {
            src: SocketAddrV4::new(src, u16::from_be_bytes([u[0], u[1]])),
            dst: SocketAddrV4::new(dst, dst_port),
            payload: seg.get(UDP_HEADER_LEN..)?,
            payload_offset: UDP_PAYLOAD_OFFSET,
        })
    }

    fn demux<'a>(
        &mut self,
        frame: &'a [u8],
        l4_checksum_ok: bool,
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Result<Option<UdpDatagram<'a>>, DropReason> {
        if frame.len() > ETH_HEADER_LEN.saturating_add(self.cfg.mtu) {
            return Err(DropReason::Oversize);
        }
        let eth = EthFrame::parse(frame)?;
        if eth.dst != self.cfg.mac && !eth.dst.is_broadcast() && !self.is_group_mac(eth.dst) {
            return Err(DropReason::DstMac);
        }
        if eth.src.is_multicast() {
            return Err(DropReason::SrcMac);
        }
        match eth.ethertype {
            ETHERTYPE_IPV4 => self.receive_ipv4(&eth, l4_checksum_ok, tx),
            ETHERTYPE_ARP => self.receive_arp(&eth, now_ns, tx).map(|()| None),
            _ => Err(DropReason::Ethertype),
        }
    }

    fn receive_arp(
        &mut self,
        eth: &EthFrame<'_>,
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Result<(), DropReason> {
        let arp = ArpPacket::parse(eth.payload)?;
        if arp.sender_ip == self.cfg.ip {
            return Err(if arp.sender_mac == self.cfg.mac {
                DropReason::ArpNotForUs // our own announcement, looped back
            } else {
                DropReason::ArpConflict
            });
        }
        let for_us = arp.target_ip == self.cfg.ip;
        // RFC 826 adds entries only for requests to us. Behind an R2P2 router a server must
        // also know the clients, which ARP only for the router: it learns every on-link
        // sender of a request too (the client's request for the router reaches the whole
        // segment before its first REQ0 does).
        let create = for_us
            || (self.reply_via_arp
                && arp.op == ArpOp::Request
                && self.cfg.next_hop(arp.sender_ip) == Some(arp.sender_ip));
        // Learn only plausible unicast senders (an RFC 5227 probe has sender 0.0.0.0).
        if !ipv4::is_bad_source(arp.sender_ip) && !arp.sender_mac.is_multicast() {
            let learned = self
                .arp
                .learn(arp.sender_ip, arp.sender_mac, now_ns, create);
            for _ in 0..learned.dropped {
                self.stats.count_drop(DropReason::ArpEvicted);
            }
            if let Some(pending) = learned.pending {
                self.send_parked(pending, arp.sender_mac, tx);
            }
        }
        if !for_us {
            return Err(DropReason::ArpNotForUs);
        }
        if arp.op == ArpOp::Request {
            self.send_arp(
                ArpOp::Reply,
                arp.sender_mac,
                arp.sender_mac,
                arp.sender_ip,
                tx,
            );
        }
        Ok(())
    }

    fn receive_ipv4<'a>(
        &mut self,
        eth: &EthFrame<'a>,
        l4_checksum_ok: bool,
        tx: &mut impl TxQueue,
    ) -> Result<Option<UdpDatagram<'a>>, DropReason> {
        let ip = match Ipv4Packet::parse(eth.payload, self.cfg.mtu) {
            // IGMP carries Router Alert (RFC 2236 §2): the only options we accept.
            Err(DropReason::IpOptions)
                if !self.groups.is_empty() && eth.payload.get(9) == Some(&ipv4::IPPROTO_IGMP) =>
            {
                Ipv4Packet::parse_with_options(eth.payload, self.cfg.mtu)?
            }
            r => r?,
        };
        if ipv4::is_bad_source(ip.src) || Some(ip.src) == self.subnet_broadcast {
            return Err(DropReason::IpSrc);
        }
        let cast = if ip.dst == self.cfg.ip {
            Cast::Unicast
        } else if ip.dst.is_broadcast() || Some(ip.dst) == self.subnet_broadcast {
            Cast::Broadcast
        } else if !self.groups.is_empty()
            && (ip.dst == crate::igmp::ALL_HOSTS || self.groups.contains(&ip.dst))
        {
            Cast::Multicast
        } else {
            return Err(DropReason::IpNotForUs);
        };
        if ip.protocol == ipv4::IPPROTO_IGMP {
            return self.receive_igmp(ip.payload, tx).map(|()| None);
        }
        match ip.protocol {
            IPPROTO_UDP => {
                let u = UdpPacket::parse_with(ip.payload, ip.src, ip.dst, !l4_checksum_ok)?;
                if !self.is_bound(u.dst_port) {
                    return Err(DropReason::UdpNoPort);
                }
                Ok(Some(UdpDatagram {
                    src: SocketAddrV4::new(ip.src, u.src_port),
                    dst: SocketAddrV4::new(ip.dst, u.dst_port),
                    payload: u.payload,
                    payload_offset: UDP_PAYLOAD_OFFSET,
                }))
            }
            IPPROTO_ICMP => {
                if cast != Cast::Unicast {
                    return Err(DropReason::IcmpBroadcast);
                }
                let echo = EchoRequest::parse(ip.payload)?;
                self.send_echo_reply(eth.src, ip.src, &echo, tx);
                Ok(None)
            }
            _ => Err(DropReason::IpProtocol),
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Transmits a `len`-byte frame written by `fill`, counting it as sent or as `tx_full`.
    fn transmit(
        &mut self,
        tx: &mut impl TxQueue,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> bool {
        let sent = tx.transmit(len, fill);
        if sent {
            self.stats.count_tx(len);
        } else {
            self.stats.count_drop(DropReason::TxFull);
        }
        sent
    }

    fn send_echo_reply(
        &mut self,
        dst_mac: MacAddr,
        dst_ip: Ipv4Addr,
        echo: &EchoRequest<'_>,
        tx: &mut impl TxQueue,
    ) {
        let icmp_len = ICMP_HEADER_LEN.saturating_add(echo.data.len());
        // The request fitted the MTU, so the reply (same size) does too.
        let Ok(payload_len) = u16::try_from(icmp_len) else {
            return;
        };
        let ip = Ipv4Header {
            src: self.cfg.ip,
            dst: dst_ip,
            protocol: IPPROTO_ICMP,
            ttl: IPV4_DEFAULT_TTL,
            ident: self.next_ident(),
            payload_len,
        };
        let src_mac = self.cfg.mac;
        let len = ETH_HEADER_LEN + IPV4_HEADER_LEN + icmp_len;
        self.transmit(tx, len, &mut |buf| {
            eth::write_header(buf, dst_mac, src_mac, ETHERTYPE_IPV4);
            if let Some(b) = buf.get_mut(ETH_HEADER_LEN..) {
                ip.write(b);
            }
            if let Some(b) = buf.get_mut(ETH_HEADER_LEN + IPV4_HEADER_LEN..len) {
                icmp::write_echo(b, ICMP_ECHO_REPLY, echo.ident, echo.seq, echo.data);
            }
        });
    }

    /// Sends an ARP packet (padded to the Ethernet minimum) to `eth_dst`.
    fn send_arp(
        &mut self,
        op: ArpOp,
        eth_dst: MacAddr,
        target_mac: MacAddr,
        target_ip: Ipv4Addr,
        tx: &mut impl TxQueue,
    ) -> bool {
        let pkt = ArpPacket {
            op,
            sender_mac: self.cfg.mac,
            sender_ip: self.cfg.ip,
            target_mac,
            target_ip,
        };
        let src = self.cfg.mac;
        self.transmit(tx, ETH_MIN_FRAME, &mut |buf| {
            buf.fill(0);
            eth::write_header(buf, eth_dst, src, ETHERTYPE_ARP);
            if let Some(b) = buf.get_mut(ETH_HEADER_LEN..ETH_HEADER_LEN + ARP_LEN) {
                pkt.write(b);
            }
        })
    }

    /// Broadcasts a gratuitous ARP (an ARP announcement, RFC 5227 §3: a request whose sender
    /// and target IP are ours) so that peers learn or refresh our MAC. Call once at boot.
    pub fn announce(&mut self, tx: &mut impl TxQueue) -> bool {
        let ip = self.cfg.ip;
        self.send_arp(ArpOp::Request, MacAddr::BROADCAST, MacAddr::ZERO, ip, tx)
    }

    /// Sends a frame that waited for ARP, now that its next hop is at `mac`.
    fn send_parked(&mut self, mut frame: Vec<u8>, mac: MacAddr, tx: &mut impl TxQueue) {
        if let Some(d) = frame.get_mut(..6) {
            d.copy_from_slice(&mac.0);
        }
        let len = frame.len();
        self.transmit(tx, len, &mut |buf| {
            if let Some(b) = buf.get_mut(..len) {
                b.copy_from_slice(&frame);
            }
        });
    }

    /// The destination MAC for `dst` if no resolution is needed (broadcast, multicast).
    fn static_mac(&self, dst: Ipv4Addr) -> Option<MacAddr> {
        if dst.is_broadcast() || Some(dst) == self.subnet_broadcast {
            Some(MacAddr::BROADCAST)
        } else if dst.is_multicast() {
            Some(crate::igmp::group_mac(dst))
        } else {
            None
        }
    }

    /// Sends `payload` from `src_port` to `dst` (ARP-resolving the next hop; gateway if off-subnet).
    ///
    /// `Ok(())` means sent, or parked until ARP resolves the next hop (then sent by whichever
    /// core receives the ARP reply).
    pub fn send_udp(
        &mut self,
        src_port: u16,
        dst: SocketAddrV4,
        payload: &[u8],
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Result<(), SendError> {
        let src = SocketAddrV4::new(self.cfg.ip, src_port);
        self.send_udp_from(src, dst, payload, now_ns, tx)
    }

    /// [`send_udp`](Self::send_udp) with a given source address: the frame leaves from this
    /// interface's MAC but names `src` as its sender (a router forwarding a client's datagram
    /// it held: the server answers the client directly).
    pub fn send_udp_from(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Result<(), SendError> {
        let ip_len = IPV4_HEADER_LEN + UDP_HEADER_LEN;
        if payload.len() > self.cfg.mtu.saturating_sub(ip_len) {
            return Err(SendError::PayloadTooLarge);
        }
        let (src_ip, src_port) = (*src.ip(), src.port());
        let dst_ip = *dst.ip();
        if dst_ip.is_unspecified() || src_ip.is_unspecified() || src_port == 0 || dst.port() == 0 {
            return Err(SendError::InvalidAddress);
        }
        let len = UDP_PAYLOAD_OFFSET + payload.len();
        let ident = self.next_ident();
        let src_mac = self.cfg.mac;
        let fill = |buf: &mut [u8], dst_mac: MacAddr| {
            write_udp_frame(
                buf,
                dst_mac,
                src_mac,
                src_ip,
                dst_ip,
                ident,
                src_port,
                dst.port(),
                payload,
            )
        };
        let mac = match self.resolve(dst_ip, now_ns)? {
            Ok(m) => m,
            Err(hop) => {
                let mut frame = vec![0u8; len];
                fill(&mut frame, MacAddr::ZERO);
                return self.park(hop, frame, now_ns, tx);
            }
        };
        if self.transmit(tx, len, &mut |buf| {
            fill(buf, mac);
        }) {
            Ok(())
        } else {
            Err(SendError::TxFull)
        }
    }

    /// The destination MAC for `dst`: `Ok(Ok(mac))` known (static or in the ARP cache),
    /// `Ok(Err(hop))` the next hop `hop` still needs resolving.
    fn resolve(&self, dst: Ipv4Addr, now_ns: u64) -> Result<Result<MacAddr, Ipv4Addr>, SendError> {
        if let Some(m) = self.static_mac(dst) {
            return Ok(Ok(m));
        }
        let hop = self.cfg.next_hop(dst).ok_or(SendError::NoRoute)?;
        Ok(self.arp.lookup(hop, now_ns).ok_or(hop))
    }

    /// Forwards a received UDP frame (one [`receive`](Self::receive) accepted) to `dst` in
    /// place: new Ethernet addresses (ours to the next hop's), new IPv4 destination and UDP
    /// destination port, the sender's IP and port kept (`crate::forward::retarget_udp`).
    /// `l4_checksum_ok` is the flag the frame was received with: when set, its UDP checksum
    /// field may hold the partial sum of a sender that left it to us (virtio `NEEDS_CSUM`),
    /// so the checksum is written afresh: the pseudo-header sum for the NIC to complete under
    /// transmit offload ([`Forwarded::InPlace`] with `offload`), the full sum otherwise;
    /// when clear, the stack verified it and the incremental update keeps it right.
    ///
    /// If the next hop's MAC is not known, a copy of the rewritten frame waits in the ARP
    /// cache (an ARP request goes out) and [`Forwarded::Parked`] says the caller is done with
    /// `frame`; when another frame already waits for that hop, the copy is dropped and
    /// counted (`arp_pending`, [`SendError::ArpPending`]). A frame counts as transmitted here
    /// when the caller is to send it in place (as for [`udp_reply_in_place`](Self::udp_reply_in_place)).
    pub fn forward_in_place(
        &mut self,
        frame: &mut [u8],
        dst: SocketAddrV4,
        l4_checksum_ok: bool,
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Result<Forwarded, SendError> {
        if dst.ip().is_unspecified() || dst.port() == 0 {
            return Err(SendError::InvalidAddress);
        }
        let mac = self.resolve(*dst.ip(), now_ns)?;
        let dst_mac = *mac.as_ref().unwrap_or(&MacAddr::ZERO);
        crate::forward::retarget_udp(frame, self.cfg.mac, dst_mac, dst)
            .map_err(|_| SendError::NotUdp)?;
        match mac {
            Ok(_) => {
                let offload = l4_checksum_ok && self.tx_csum_offload;
                if offload {
                    udp_pseudo_sum_in_place(frame).ok_or(SendError::NotUdp)?;
                } else if l4_checksum_ok {
                    udp_checksum_in_place(frame).ok_or(SendError::NotUdp)?;
                }
                let (_, _, udp_len) = udp_fields(frame).ok_or(SendError::NotUdp)?;
                let len = ETH_HEADER_LEN + IPV4_HEADER_LEN + usize::from(udp_len);
                self.stats.count_tx(len);
                Ok(Forwarded::InPlace { len, offload })
            }
            Err(hop) => {
                // Parked frames are sent without offload: they carry the full checksum.
                if l4_checksum_ok {
                    udp_checksum_in_place(frame).ok_or(SendError::NotUdp)?;
                }
                let (_, _, udp_len) = udp_fields(frame).ok_or(SendError::NotUdp)?;
                let len = ETH_HEADER_LEN + IPV4_HEADER_LEN + usize::from(udp_len);
                self.park(hop, frame.get(..len).unwrap_or(frame).to_vec(), now_ns, tx)?;
                Ok(Forwarded::Parked)
            }
        }
    }

    /// Parks `frame` in the ARP cache until `hop` resolves, sending a request if due.
    fn park(
        &mut self,
        hop: Ipv4Addr,
        frame: Vec<u8>,
        now_ns: u64,
        tx: &mut impl TxQueue,
    ) -> Result<(), SendError> {
        match self.arp.queue(hop, frame, now_ns) {
            QueueOutcome::Resolved(mac, frame) => {
                let before = self.stats.tx_packets;
                self.send_parked(frame, mac, tx);
                if self.stats.tx_packets == before {
                    return Err(SendError::TxFull);
                }
                Ok(())
            }
            QueueOutcome::Queued {
                send_request,
                dropped,
            } => {
                for _ in 0..dropped {
                    self.stats.count_drop(DropReason::ArpEvicted);
                }
                if send_request {
                    self.send_arp(ArpOp::Request, MacAddr::BROADCAST, MacAddr::ZERO, hop, tx);
                }
                Ok(())
            }
            QueueOutcome::Busy { send_request } => {
                self.stats.count_drop(DropReason::ArpPending);
                if send_request {
                    self.send_arp(ArpOp::Request, MacAddr::BROADCAST, MacAddr::ZERO, hop, tx);
                }
                Err(SendError::ArpPending)
            }
        }
    }

    /// Rewrites a received UDP frame in place into the reply to its sender (swap MAC/IP/ports,
    /// new payload of `payload_len` bytes already written at the payload offset, fix lengths and
    /// checksums) and returns the reply's frame length: lets a driver transmit the RX buffer
    /// itself (zero-copy echo).
    ///
    /// `frame` should be one that [`receive`](Self::receive) accepted; anything else is
    /// refused with [`SendError::NotUdp`] without panicking. The reply is counted as
    /// transmitted here, since the driver sends it without calling back into the stack.
    pub fn udp_reply_in_place(
        &mut self,
        frame: &mut [u8],
        payload_len: usize,
    ) -> Result<usize, SendError> {
        let frame_len = frame.len();
        let (hdr, _) = frame
            .split_first_chunk_mut::<UDP_PAYLOAD_OFFSET>()
            .ok_or(SendError::NotUdp)?;
        if hdr[12..14] != ETHERTYPE_IPV4.to_be_bytes()
            || hdr[14] != 0x45
            || hdr[14 + 9] != IPPROTO_UDP
        {
            return Err(SendError::NotUdp);
        }
        let len = UDP_PAYLOAD_OFFSET
            .checked_add(payload_len)
            .filter(|l| *l <= frame_len && l - ETH_HEADER_LEN <= self.cfg.mtu)
            .ok_or(SendError::PayloadTooLarge)?;
        // Fits: len - 34 <= mtu - 20 < 65,536.
        let udp_len = u16::try_from(len - ETH_HEADER_LEN - IPV4_HEADER_LEN)
            .map_err(|_| SendError::PayloadTooLarge)?;
        // Fixed offsets into one 42-byte header: Ethernet, IPv4 (as `Ipv4Header::write`
        // writes it), UDP.
        let mut peer_mac = [0u8; 6];
        peer_mac.copy_from_slice(&hdr[6..12]);
        let mut peer_ip = [0u8; 4];
        peer_ip.copy_from_slice(&hdr[26..30]);
        // The frame's source MAC is the sender's unless a router forwarded it (R2P2: the
        // client stays the source IP, the router's MAC is the source MAC): behind a router
        // the ARP cache, when it knows the peer's next hop, is the authority. Ageing is not
        // checked here (no clock on this path).
        if self.reply_via_arp
            && let Some(m) = self
                .cfg
                .next_hop(Ipv4Addr::from(peer_ip))
                .and_then(|hop| self.arp.lookup(hop, 0))
        {
            peer_mac = m.0;
        }
        let mut peer_port = [0u8; 2];
        peer_port.copy_from_slice(&hdr[34..36]);
        let ident = self.next_ident();
        hdr[0..6].copy_from_slice(&peer_mac);
        hdr[6..12].copy_from_slice(&self.cfg.mac.0);
        hdr[15] = 0;
        hdr[16..18].copy_from_slice(&(udp_len + IPV4_HEADER_LEN as u16).to_be_bytes());
        hdr[18..20].copy_from_slice(&ident.to_be_bytes());
        hdr[20..22].copy_from_slice(&ipv4::IPV4_FLAG_DF.to_be_bytes());
        hdr[22] = IPV4_DEFAULT_TTL;
        hdr[24..26].copy_from_slice(&[0, 0]);
        hdr[26..30].copy_from_slice(&self.cfg.ip.octets());
        hdr[30..34].copy_from_slice(&peer_ip);
        if let Some(ip) = hdr[14..34].first_chunk::<IPV4_HEADER_LEN>() {
            let c = checksum::checksum20(ip);
            hdr[24..26].copy_from_slice(&c.to_be_bytes());
        }
        hdr.copy_within(36..38, 34);
        hdr[36..38].copy_from_slice(&peer_port);
        hdr[38..40].copy_from_slice(&udp_len.to_be_bytes());
        let peer_ip = Ipv4Addr::from(peer_ip);
        let mut c = checksum::Checksum::new();
        c.add_pseudo_header(self.cfg.ip, peer_ip, IPPROTO_UDP, udp_len);
        let sum = if self.tx_csum_offload {
            // The NIC completes it: the field holds the uncomplemented pseudo-header sum.
            c.sum16()
        } else {
            hdr[40..42].copy_from_slice(&[0, 0]);
            c.add_bytes(
                frame
                    .get(ETH_HEADER_LEN + IPV4_HEADER_LEN..len)
                    .unwrap_or_default(),
            );
            // A computed zero is sent as all ones (RFC 768).
            match c.finish() {
                0 => 0xffff,
                s => s,
            }
        };
        if let Some(f) = frame.get_mut(40..42) {
            f.copy_from_slice(&sum.to_be_bytes());
        }
        self.stats.count_tx(len);
        Ok(len)
    }
}

/// The IPv4 addresses and UDP length of an Ethernet/IPv4 (no options)/UDP frame whose UDP
/// segment fits in it.
fn udp_fields(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u16)> {
    let h = frame.first_chunk::<UDP_PAYLOAD_OFFSET>()?;
    let src = Ipv4Addr::new(h[26], h[27], h[28], h[29]);
    let dst = Ipv4Addr::new(h[30], h[31], h[32], h[33]);
    let udp_len = u16::from_be_bytes([h[38], h[39]]);
    let end = (ETH_HEADER_LEN + IPV4_HEADER_LEN).checked_add(usize::from(udp_len))?;
    (usize::from(udp_len) >= UDP_HEADER_LEN && end <= frame.len()).then_some((src, dst, udp_len))
}

/// Writes the full UDP checksum of `frame` (RFC 768: a computed 0 is sent as 0xFFFF).
fn udp_checksum_in_place(frame: &mut [u8]) -> Option<()> {
    let (src, dst, udp_len) = udp_fields(frame)?;
    let seg = ETH_HEADER_LEN + IPV4_HEADER_LEN;
    frame.get_mut(seg + 6..seg + 8)?.copy_from_slice(&[0, 0]);
    let mut c = checksum::Checksum::new();
    c.add_pseudo_header(src, dst, IPPROTO_UDP, udp_len);
    c.add_bytes(frame.get(seg..seg + usize::from(udp_len))?);
    let sum = match c.finish() {
        0 => 0xffff,
        s => s,
    };
    frame
        .get_mut(seg + 6..seg + 8)?
        .copy_from_slice(&sum.to_be_bytes());
    Some(())
}

/// Writes the pseudo-header sum into the UDP checksum field of `frame` (transmit offload:
/// the NIC adds the segment and complements).
fn udp_pseudo_sum_in_place(frame: &mut [u8]) -> Option<()> {
    let (src, dst, udp_len) = udp_fields(frame)?;
    let mut c = checksum::Checksum::new();
    c.add_pseudo_header(src, dst, IPPROTO_UDP, udp_len);
    let seg = ETH_HEADER_LEN + IPV4_HEADER_LEN;
    frame
        .get_mut(seg + 6..seg + 8)?
        .copy_from_slice(&c.sum16().to_be_bytes());
    Some(())
}

/// Writes a whole Ethernet/IPv4/UDP frame into `buf` (which must hold exactly
/// [`UDP_PAYLOAD_OFFSET`] + `payload.len()` bytes; shorter buffers get a truncated write).
#[allow(clippy::too_many_arguments)]
pub fn write_udp_frame(
    buf: &mut [u8],
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    ident: u16,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> bool {
    let Ok(udp_len) = u16::try_from(UDP_HEADER_LEN.saturating_add(payload.len())) else {
        return false;
    };
    let len = UDP_PAYLOAD_OFFSET + payload.len();
    let Some(buf) = buf.get_mut(..len) else {
        return false;
    };
    let ip = Ipv4Header {
        src: src_ip,
        dst: dst_ip,
        protocol: IPPROTO_UDP,
        ttl: IPV4_DEFAULT_TTL,
        ident,
        payload_len: udp_len,
    };
    if let Some(b) = buf.get_mut(UDP_PAYLOAD_OFFSET..) {
        b.copy_from_slice(payload);
    }
    eth::write_header(buf, dst_mac, src_mac, ETHERTYPE_IPV4)
        && buf.get_mut(ETH_HEADER_LEN..).is_some_and(|b| ip.write(b))
        && buf
            .get_mut(ETH_HEADER_LEN + IPV4_HEADER_LEN..)
            .is_some_and(|seg| udp::write_header(seg, src_ip, dst_ip, src_port, dst_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arp_table::ArpConfig;
    use crate::corpus::Endpoints;

    fn stack() -> NetStack {
        NetStack::new(
            Endpoints::default().server_config(),
            Arc::new(ArpTable::new(ArpConfig::default())),
        )
    }

    /// Transmits nothing (the fast path never transmits; ARP/ICMP replies are not compared).
    struct NoTx;
    impl TxQueue for NoTx {
        fn transmit(&mut self, _len: usize, _fill: &mut dyn FnMut(&mut [u8])) -> bool {
            false
        }
    }

    /// A delivered datagram: source, destination, payload, payload offset.
    type Delivered = (SocketAddrV4, SocketAddrV4, Vec<u8>, usize);

    /// What one receive did: the datagram (if any) and the counters afterwards; `general`:
    /// through the general path alone, as if there were no fast path.
    fn outcome(
        s: &mut NetStack,
        f: &[u8],
        l4_ok: bool,
        general: bool,
    ) -> (Option<Delivered>, Stats) {
        let d = if general {
            s.stats.count_rx(f.len());
            s.receive_general(f, l4_ok, 0, &mut NoTx)
        } else {
            s.receive_checked(f, l4_ok, 0, &mut NoTx)
        }
        .map(|d| (d.src, d.dst, d.payload.to_vec(), d.payload_offset));
        (d, s.stats().clone())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// A reply built in place is byte for byte the frame `write_udp_frame` builds (full
        /// checksum), and with offload its checksum field is the pseudo-header sum.
        #[test]
        fn reply_in_place_equals_a_freshly_written_frame(
            request in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            reply in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let ep = Endpoints::default();
            let mut s = stack();
            s.bind_udp(ep.server_port).unwrap();
            let mut f = ep.udp(&request);
            f.resize(UDP_PAYLOAD_OFFSET + reply.len().max(request.len()), 0);
            f[UDP_PAYLOAD_OFFSET..UDP_PAYLOAD_OFFSET + reply.len()].copy_from_slice(&reply);
            let len = s.udp_reply_in_place(&mut f, reply.len()).unwrap();
            let mut want = vec![0u8; UDP_PAYLOAD_OFFSET + reply.len()];
            let cfg = ep.server_config();
            proptest::prop_assert!(write_udp_frame(
                &mut want, ep.client_mac, cfg.mac, cfg.ip, ep.client_ip, 1,
                ep.server_port, ep.client_port, &reply,
            ));
            proptest::prop_assert_eq!(&f[..len], &want[..]);

            let mut off = stack();
            off.set_tx_checksum_offload(true);
            let mut g = ep.udp(&request);
            g.resize(UDP_PAYLOAD_OFFSET + reply.len().max(request.len()), 0);
            g[UDP_PAYLOAD_OFFSET..UDP_PAYLOAD_OFFSET + reply.len()].copy_from_slice(&reply);
            let len = off.udp_reply_in_place(&mut g, reply.len()).unwrap();
            proptest::prop_assert_eq!(&g[..40], &want[..40]);
            let mut c = checksum::Checksum::new();
            c.add_pseudo_header(cfg.ip, ep.client_ip, crate::ipv4::IPPROTO_UDP, (len - 34) as u16);
            proptest::prop_assert_eq!(&g[40..42], &c.sum16().to_be_bytes()[..]);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The UDP fast path accepts exactly what the general path accepts, with the same
        /// datagram, and leaves every other frame (and its drop reason) to the general path.
        #[test]
        fn fast_path_agrees_with_the_general_path(
            seed in 0usize..64,
            edits in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::option::of(0usize..120),
            l4_ok in proptest::prelude::any::<bool>(),
        ) {
            let ep = Endpoints::default();
            let mut seeds = vec![ep.udp(b"seed payload"), ep.udp(b""), ep.udp(&[7u8; 300])];
            seeds.extend(ep.malformed().into_iter().map(|c| c.frame));
            let mut f = seeds[seed % seeds.len()].clone();
            for (i, b) in edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            if let Some(c) = cut {
                f.truncate(c);
            }
            let mut fast = stack();
            let mut slow = stack();
            for s in [&mut fast, &mut slow] {
                s.bind_udp(ep.server_port).unwrap();
            }
            proptest::prop_assert_eq!(
                outcome(&mut fast, &f, l4_ok, false),
                outcome(&mut slow, &f, l4_ok, true)
            );
        }
    }

    /// Records every frame transmitted.
    #[derive(Default)]
    struct RecTx(Vec<Vec<u8>>);
    impl TxQueue for RecTx {
        fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
            let mut v = vec![0u8; len];
            fill(&mut v);
            self.0.push(v);
            true
        }
    }

    /// The UDP checksum of `f` verifies over its pseudo-header and segment.
    fn udp_checksum_verifies(f: &[u8]) -> bool {
        let (src, dst, len) = udp_fields(f).unwrap();
        let mut c = checksum::Checksum::new();
        c.add_pseudo_header(src, dst, IPPROTO_UDP, len);
        c.add_bytes(&f[34..34 + usize::from(len)]);
        c.finish() == 0 && checksum::verify(&f[14..34])
    }

    #[test]
    fn forward_in_place_keeps_the_source_and_resolves_or_parks() {
        let ep = Endpoints::default();
        let mut s = stack();
        let server: SocketAddrV4 = "10.0.0.77:8000".parse().unwrap();
        let server_mac = MacAddr([2, 0, 0, 0, 0, 0x77]);
        let mut tx = RecTx::default();
        // Unresolved: a copy is parked and an ARP request goes out.
        let mut f = ep.udp(b"req0");
        assert_eq!(
            s.forward_in_place(&mut f, server, false, 1, &mut tx),
            Ok(Forwarded::Parked)
        );
        assert_eq!(tx.0.len(), 1);
        assert_eq!(&tx.0[0][12..14], &[0x08, 0x06]);
        // A second one for the same hop while the first waits: dropped and counted.
        let mut g = ep.udp(b"req1");
        assert_eq!(
            s.forward_in_place(&mut g, server, false, 2, &mut tx),
            Err(SendError::ArpPending)
        );
        // The ARP reply releases the parked copy, addressed to the server, client as source.
        if let Some(p) = s.arp.learn(*server.ip(), server_mac, 3, true).pending {
            s.send_parked(p, server_mac, &mut tx);
        }
        let parked = tx.0.pop().unwrap();
        let mut want = vec![0u8; parked.len()];
        assert!(write_udp_frame(
            &mut want,
            server_mac,
            ep.server_mac,
            ep.client_ip,
            *server.ip(),
            1,
            ep.client_port,
            server.port(),
            b"req0",
        ));
        assert_eq!(&parked[..24], &want[..24]);
        assert_eq!(&parked[26..40], &want[26..40]);
        assert!(udp_checksum_verifies(&parked));
        // Resolved now: in place, same bytes.
        let mut h = ep.udp(b"req0");
        assert_eq!(
            s.forward_in_place(&mut h, server, false, 4, &mut tx),
            Ok(Forwarded::InPlace {
                len: 46,
                offload: false
            })
        );
        assert_eq!(h, parked);
        // A partial (NEEDS_CSUM) checksum field is rewritten: full sum without offload,
        // the pseudo-header sum with it.
        let mut p = ep.udp(b"req0");
        p[40..42].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(
            s.forward_in_place(&mut p, server, true, 5, &mut tx),
            Ok(Forwarded::InPlace {
                len: 46,
                offload: false
            })
        );
        assert!(udp_checksum_verifies(&p));
        s.set_tx_checksum_offload(true);
        let mut q = ep.udp(b"req0");
        q[40..42].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(
            s.forward_in_place(&mut q, server, true, 6, &mut tx),
            Ok(Forwarded::InPlace {
                len: 46,
                offload: true
            })
        );
        let mut c = checksum::Checksum::new();
        c.add_pseudo_header(ep.client_ip, *server.ip(), IPPROTO_UDP, 12);
        assert_eq!(&q[40..42], &c.sum16().to_be_bytes());
        // Off-subnet without a gateway, junk frames, bad addresses: refused, never a panic.
        let mut r = ep.udp(b"x");
        let far: SocketAddrV4 = "192.168.9.9:8000".parse().unwrap();
        assert_eq!(
            s.forward_in_place(&mut r, far, false, 7, &mut tx),
            Err(SendError::NoRoute)
        );
        assert_eq!(
            s.forward_in_place(&mut r[..30].to_vec(), server, false, 7, &mut tx),
            Err(SendError::NotUdp)
        );
        let zero: SocketAddrV4 = "10.0.0.77:0".parse().unwrap();
        assert_eq!(
            s.forward_in_place(&mut r, zero, false, 7, &mut tx),
            Err(SendError::InvalidAddress)
        );
    }

    #[test]
    fn reply_in_place_goes_to_the_cached_mac_of_the_peer() {
        // A request forwarded by a router: the client's IP, the router's MAC.
        let ep = Endpoints::default();
        let mut s = stack();
        let router_mac = MacAddr([2, 0, 0, 0, 0, 0x10]);
        let mut f = ep.udp(b"ping");
        f[6..12].copy_from_slice(&router_mac.0);
        let mut g = f.clone();
        s.set_reply_via_arp(true);
        s.udp_reply_in_place(&mut f, 4).unwrap();
        assert_eq!(&f[0..6], &router_mac.0); // nothing cached: the frame's source
        s.arp.learn(ep.client_ip, ep.client_mac, 0, true);
        let mut h = g.clone();
        s.set_reply_via_arp(false);
        s.udp_reply_in_place(&mut h, 4).unwrap();
        assert_eq!(&h[0..6], &router_mac.0); // off: always the frame's source
        s.set_reply_via_arp(true);
        s.udp_reply_in_place(&mut g, 4).unwrap();
        assert_eq!(&g[0..6], &ep.client_mac.0);
    }

    #[test]
    fn behind_a_router_clients_are_learnt_from_their_requests_for_others() {
        let ep = Endpoints::default();
        let other = Ipv4Addr::new(
            ep.server_ip.octets()[0],
            ep.server_ip.octets()[1],
            ep.server_ip.octets()[2],
            250,
        );
        let mut tx = RecTx::default();
        let mut s = stack();
        s.receive(&ep.arp_request(other), 1, &mut tx);
        assert_eq!(s.arp.lookup(ep.client_ip, 1), None); // RFC 826: not for us, not added
        s.set_reply_via_arp(true);
        s.receive(&ep.arp_request(other), 2, &mut tx);
        assert_eq!(s.arp.lookup(ep.client_ip, 2), Some(ep.client_mac));
        let router_mac = MacAddr([2, 0, 0, 0, 0, 0x10]);
        let mut f = ep.udp(b"ping");
        f[6..12].copy_from_slice(&router_mac.0);
        s.udp_reply_in_place(&mut f, 4).unwrap();
        assert_eq!(&f[0..6], &ep.client_mac.0);
    }

    #[test]
    fn send_udp_from_names_the_given_source() {
        let ep = Endpoints::default();
        let mut s = stack();
        let server: SocketAddrV4 = "10.0.0.77:8000".parse().unwrap();
        let server_mac = MacAddr([2, 0, 0, 0, 0, 0x77]);
        s.arp.learn(*server.ip(), server_mac, 0, true);
        let client = SocketAddrV4::new(ep.client_ip, ep.client_port);
        let mut tx = RecTx::default();
        s.send_udp_from(client, server, b"held", 1, &mut tx)
            .unwrap();
        let mut want = vec![0u8; UDP_PAYLOAD_OFFSET + 4];
        assert!(write_udp_frame(
            &mut want,
            server_mac,
            ep.server_mac,
            ep.client_ip,
            *server.ip(),
            1,
            ep.client_port,
            server.port(),
            b"held",
        ));
        assert_eq!(tx.0, [want]);
        let none = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5);
        assert_eq!(
            s.send_udp_from(none, server, b"x", 1, &mut tx),
            Err(SendError::InvalidAddress)
        );
    }

    #[test]
    fn port_bitmap_edges() {
        let mut s = stack();
        for p in [1, 63, 64, 65535] {
            assert!(!s.is_bound(p));
            s.bind_udp(p).unwrap();
            assert!(s.is_bound(p));
        }
        assert!(!s.is_bound(0) && !s.is_bound(62) && !s.is_bound(65534));
    }

    #[test]
    fn static_macs() {
        let s = stack();
        assert_eq!(s.static_mac(Ipv4Addr::BROADCAST), Some(MacAddr::BROADCAST));
        assert_eq!(
            s.static_mac(Ipv4Addr::new(10, 0, 0, 255)),
            Some(MacAddr::BROADCAST)
        );
        assert_eq!(
            s.static_mac(Ipv4Addr::new(224, 128, 0, 251)),
            Some(MacAddr([1, 0, 0x5e, 0, 0, 251]))
        );
        assert_eq!(s.static_mac(Ipv4Addr::new(10, 0, 0, 1)), None);
    }

    #[test]
    fn udp_frame_writer_refuses_short_buffers_and_huge_payloads() {
        let (m, a) = (MacAddr::ZERO, Ipv4Addr::LOCALHOST);
        let mut buf = [0u8; UDP_PAYLOAD_OFFSET + 3];
        assert!(write_udp_frame(&mut buf, m, m, a, a, 0, 1, 2, b"abc"));
        assert!(!write_udp_frame(&mut buf[1..], m, m, a, a, 0, 1, 2, b"abc"));
        let huge = alloc::vec![0u8; 70_000];
        assert!(!write_udp_frame(&mut buf, m, m, a, a, 0, 1, 2, &huge));
    }
}
