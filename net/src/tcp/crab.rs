//! CRAB connection redirection (thesis chapter 7) at the edge of the TCP endpoint: frames are
//! rewritten between the NIC and smoltcp, the way the thesis's Netfilter modules do it, so the
//! TCP engine itself is unchanged.
//!
//! The Connection Redirect option (spec/numbers.md): kind 42, length 6, the 4-byte VIP the
//! client sent its SYN to; on the wire as NOP, NOP, 42, 6, VIP (8 bytes, keeping the options
//! 32-bit aligned).
//!
//! - **Client** ([`Crab::client`]): every active open's SYN carries the option with its
//!   destination as the VIP. A SYN-ACK from another address that echoes the option with the
//!   VIP of a SYN this endpoint sent moves the connection there: from then on its segments
//!   leave for that address (the destination address is rewritten, and the destination MAC
//!   becomes the SYN-ACK's source MAC: the next hop to the server) and the server's segments are
//!   rewritten back to the VIP before smoltcp sees them, so the socket keeps the address it
//!   connected to. On the wire the client talks to the server directly; the load balancer saw
//!   the SYN only.
//! - **Server** ([`Crab::server`]): a SYN carrying the option (forwarded by a CRAB load
//!   balancer to this host's own address) is remembered, and the SYN-ACK answering it gets
//!   the option with the same VIP, from this host's address.
//!
//! Bad input never changes a connection: the option on a segment that is not a SYN, an
//! option of the wrong length, a SYN-ACK redirecting a SYN this endpoint never sent (a forged
//! redirect: dropped, so it cannot reset anything either) are counted in [`CrabStats`] and
//! otherwise ignored. The server's table of pending echoes is bounded
//! ([`MAX_PENDING_ECHOES`]); beyond it the oldest is forgotten (that SYN-ACK then goes out
//! without the option, and the client falls back to a plain connection to the VIP).

use alloc::collections::{BTreeMap, VecDeque};
use core::net::Ipv4Addr;

use crate::checksum::Checksum;

/// The option's kind.
pub const KIND: u8 = 42;
/// The option's length (kind, length, 4-byte VIP).
pub const LEN: u8 = 6;
/// Bytes the option adds to a segment: two NOPs and the option.
pub const BLOCK: usize = 8;
/// Server: SYNs with the option whose SYN-ACK has not gone out yet, at most.
pub const MAX_PENDING_ECHOES: usize = 1024;

const ETH: usize = 14;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const NOP: u8 = 1;
const END: u8 = 0;

/// What CRAB counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrabStats {
    /// Client: SYNs sent with the option.
    pub syns_marked: u64,
    /// Client: connections moved to the server that answered.
    pub redirects: u64,
    /// Client: SYN-ACKs from the VIP itself (no redirection: a plain or fallback server).
    pub plain_synacks: u64,
    /// Server: SYNs that carried the option.
    pub syns_redirected: u64,
    /// Server: SYN-ACKs that echoed it.
    pub echoes: u64,
    /// Server: pending echoes forgotten because the table was full.
    pub echoes_evicted: u64,
    /// Segments rewritten on the way in (client: server address back to the VIP).
    pub rx_rewritten: u64,
    /// Segments rewritten on the way out (client: VIP to server address).
    pub tx_rewritten: u64,
    /// The option on a segment without SYN (ignored).
    pub option_not_syn: u64,
    /// An option 42 whose length is not 6, or that overruns the header (ignored).
    pub option_bad_length: u64,
    /// SYN-ACKs redirecting a SYN this endpoint did not send (dropped).
    pub forged_redirects: u64,
    /// A segment that needed the option but had no room for it (40 bytes of options).
    pub no_room: u64,
    /// ARP requests for the direct-server-return VIP, ignored.
    pub vip_arp_ignored: u64,
}

/// The option in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrabOption {
    /// No option 42.
    Absent,
    /// A well-formed option with this VIP.
    Vip(Ipv4Addr),
    /// Option 42 with a wrong length or cut by the header's end.
    Malformed,
}

/// Where the IPv4 and TCP headers of an Ethernet frame are, and their fields CRAB uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset of the TCP header in the frame.
    pub tcp: usize,
    /// TCP header length (data offset × 4).
    pub tcp_len: usize,
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// TCP source port.
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// TCP flags (byte 13).
    pub flags: u8,
}

impl Segment {
    /// The TCP segment of an Ethernet/IPv4 frame (not a fragment, headers inside the frame),
    /// or None.
    pub fn parse(f: &[u8]) -> Option<Segment> {
        if f.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let ip = f.get(ETH..)?;
        let ihl = usize::from(*ip.first()? & 0x0f) * 4;
        if ip[0] >> 4 != 4 || ihl < 20 || *ip.get(9)? != 6 {
            return None;
        }
        // Not a fragment (MF clear, offset 0).
        if u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = ip.get(ihl..total.min(ip.len()))?;
        let tcp_len = usize::from(*tcp.get(12)? >> 4) * 4;
        if tcp_len < 20 || tcp.len() < tcp_len || total > ip.len() {
            return None;
        }
        let addr = |o: usize| Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
        Some(Segment {
            tcp: ETH + ihl,
            tcp_len,
            src: addr(12),
            dst: addr(16),
            sport: u16::from_be_bytes([tcp[0], tcp[1]]),
            dport: u16::from_be_bytes([tcp[2], tcp[3]]),
            flags: tcp[13],
        })
    }

    pub(crate) fn is_syn(&self) -> bool {
        self.flags & (SYN | ACK) == SYN
    }

    fn is_synack(&self) -> bool {
        self.flags & (SYN | ACK) == SYN | ACK
    }

    /// The segment's option 42.
    pub fn option(&self, f: &[u8]) -> CrabOption {
        let opts = f
            .get(self.tcp + 20..self.tcp + self.tcp_len)
            .unwrap_or_default();
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                END => break,
                NOP => i += 1,
                kind => {
                    let Some(&len) = opts.get(i + 1) else {
                        return if kind == KIND {
                            CrabOption::Malformed
                        } else {
                            CrabOption::Absent
                        };
                    };
                    let len = usize::from(len);
                    if kind == KIND {
                        return match opts.get(i..i + len) {
                            Some(o) if len == usize::from(LEN) => {
                                CrabOption::Vip(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
                            }
                            _ => CrabOption::Malformed,
                        };
                    }
                    if len < 2 {
                        break; // a broken option list: stop, as TCP stacks do
                    }
                    i += len;
                }
            }
        }
        CrabOption::Absent
    }
}

/// Replaces the 16-bit word at `at` in a checksummed region: `csum` updated by RFC 1624
/// eqn. 3.
pub(crate) fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    let s = (s & 0xffff) + (s >> 16);
    !(((s & 0xffff) + (s >> 16)) as u16)
}

pub(crate) fn word(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

pub(crate) fn put(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Sets the IPv4 source (`which` 12) or destination (16) of the segment `s` in `f`, updating
/// the IPv4 and TCP checksums incrementally.
fn set_addr(f: &mut [u8], s: &Segment, which: usize, ip: Ipv4Addr) {
    let at = ETH + which;
    let new = ip.octets();
    let (mut ipc, mut tcpc) = (word(f, ETH + 10), word(f, s.tcp + 16));
    for k in [0, 2] {
        let (o, n) = (word(f, at + k), u16::from_be_bytes([new[k], new[k + 1]]));
        ipc = update16(ipc, o, n);
        tcpc = update16(tcpc, o, n);
    }
    f[at..at + 4].copy_from_slice(&new);
    put(f, ETH + 10, ipc);
    put(f, s.tcp + 16, tcpc);
}

/// Sets the IPv4 destination of the segment `s` in `f` (checksums updated incrementally): a
/// CRAB load balancer sending a SYN on to a server.
pub fn set_dst(f: &mut [u8], s: &Segment, ip: Ipv4Addr) {
    set_addr(f, s, 16, ip);
}

/// Recomputes the TCP checksum of the segment `s` in `f` from scratch. For a frame whose
/// checksum may be *partial* (a sender on the same host left it for the NIC, which a
/// receive-offloading NIC reports as good, `PacketBuf::l4_checksum_ok`): forwarding it
/// unchanged, or updating it incrementally, would send a wrong one on.
pub fn recompute_tcp_checksum(f: &mut [u8], s: &Segment) {
    let total = usize::from(word(f, ETH + 2));
    let ihl = s.tcp - ETH;
    let Some(seg_len) = total.checked_sub(ihl) else {
        return;
    };
    if f.len() < s.tcp + seg_len {
        return;
    }
    put(f, s.tcp + 16, 0);
    let mut sum = Checksum::new();
    sum.add_bytes(&f[ETH + 12..ETH + 20]);
    sum.add_bytes(&[0, 6]);
    sum.add_bytes(&(seg_len as u16).to_be_bytes());
    sum.add_bytes(&f[s.tcp..s.tcp + seg_len]);
    put(f, s.tcp + 16, sum.finish());
}

/// Bytes of `opts` before its end-of-list option (all of them if none, or if the list is
/// broken).
fn options_used(opts: &[u8]) -> usize {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            END => return i,
            NOP => i += 1,
            _ => match opts.get(i + 1) {
                Some(&l) if l >= 2 => i += usize::from(l),
                _ => return opts.len(),
            },
        }
    }
    opts.len()
}

/// Writes `f` with the option (VIP `vip`) appended to its TCP options into `out` (`f.len()` +
/// [`BLOCK`] bytes), with lengths and both checksums recomputed. False if the options would
/// exceed 40 bytes or `out` has the wrong size.
pub fn insert_option(f: &[u8], s: &Segment, vip: Ipv4Addr, out: &mut [u8]) -> bool {
    if s.tcp_len + BLOCK > 60 || out.len() != f.len() + BLOCK {
        return false;
    }
    // Before an end-of-list option (whatever follows it is padding and stays so), else at
    // the header's end.
    let at = s.tcp + 20 + options_used(&f[s.tcp + 20..s.tcp + s.tcp_len]);
    out[..at].copy_from_slice(&f[..at]);
    let v = vip.octets();
    out[at..at + BLOCK].copy_from_slice(&[NOP, NOP, KIND, LEN, v[0], v[1], v[2], v[3]]);
    out[at + BLOCK..].copy_from_slice(&f[at..]);
    // IPv4 total length and header checksum.
    let total = word(out, ETH + 2).wrapping_add(BLOCK as u16);
    put(out, ETH + 2, total);
    put(out, ETH + 10, 0);
    let ihl = s.tcp - ETH;
    let c = crate::checksum::checksum(&out[ETH..ETH + ihl]);
    put(out, ETH + 10, c);
    // TCP data offset, and the checksum over the pseudo-header and the segment.
    out[s.tcp + 12] = (((s.tcp_len + BLOCK) / 4) as u8) << 4 | (out[s.tcp + 12] & 0x0f);
    recompute_tcp_checksum(out, s);
    true
}

/// Client: a connection moved to the server that answered its SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Redirect {
    vip: Ipv4Addr,
    vport: u16,
    server: Ipv4Addr,
    /// The next hop towards the server: the source MAC of its SYN-ACK (the server itself on
    /// the same segment, else the router that brought it).
    next_hop: [u8; 6],
}

/// What to do with a received frame.
#[derive(Debug, PartialEq, Eq)]
pub enum RxVerdict {
    /// Give it to smoltcp as it is.
    Pass,
    /// Give it to smoltcp after [`Crab::rewrite_rx`].
    Rewrite,
    /// Drop it (counted).
    Drop,
}

/// One endpoint's CRAB state.
#[derive(Debug, Default)]
pub struct Crab {
    client: bool,
    server: bool,
    /// Client: active opens waiting for their SYN-ACK, by local port: (VIP, port).
    opening: BTreeMap<u16, (Ipv4Addr, u16)>,
    /// Client: redirected connections, by local port.
    redirected: BTreeMap<u16, Redirect>,
    /// Server: SYNs that carried the option, by (peer, peer port, local port): the VIP; and
    /// their arrival order, for eviction.
    echo: BTreeMap<(Ipv4Addr, u16, u16), Ipv4Addr>,
    echo_order: VecDeque<(Ipv4Addr, u16, u16)>,
    /// A VIP served direct-server-return style (its ARP requests are not ours to answer).
    vip: Option<Ipv4Addr>,
    stats: CrabStats,
}

impl Crab {
    /// CRAB off: every frame passes untouched.
    pub fn off() -> Crab {
        Crab::default()
    }

    /// A CRAB client (and a server too if `server`).
    pub fn client(server: bool) -> Crab {
        Crab {
            client: true,
            server,
            ..Crab::default()
        }
    }

    /// A CRAB server.
    pub fn server() -> Crab {
        Crab {
            server: true,
            ..Crab::default()
        }
    }

    /// Serve `vip` direct-server-return style: ARP requests for it are dropped before
    /// smoltcp (which answers for every address it has).
    pub fn set_vip(&mut self, vip: Option<Ipv4Addr>) {
        self.vip = vip;
    }

    /// Whether this endpoint does anything.
    pub fn enabled(&self) -> bool {
        self.client || self.server || self.vip.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> CrabStats {
        self.stats
    }

    /// Client: an active open from `local_port` to `vip:vport` (its SYN will carry the option).
    pub fn opened(&mut self, local_port: u16, vip: Ipv4Addr, vport: u16) {
        if self.client {
            self.redirected.remove(&local_port);
            self.opening.insert(local_port, (vip, vport));
        }
    }

    /// Client: the connection from `local_port` is gone: forget it.
    pub fn closed(&mut self, local_port: u16) {
        self.opening.remove(&local_port);
        self.redirected.remove(&local_port);
    }

    /// The server a redirected connection from `local_port` moved to.
    pub fn server_of(&self, local_port: u16) -> Option<Ipv4Addr> {
        self.redirected.get(&local_port).map(|r| r.server)
    }

    /// Looks at a received frame (before smoltcp, before the parked-connection lookup).
    pub fn rx(&mut self, f: &[u8]) -> RxVerdict {
        if !self.enabled() {
            return RxVerdict::Pass;
        }
        let Some(s) = Segment::parse(f) else {
            if let Some(vip) = self.vip
                && f.get(12..14) == Some(&[0x08, 0x06])
                && f.get(20..22) == Some(&[0, 1])
                && f.get(38..42) == Some(&vip.octets())
            {
                self.stats.vip_arp_ignored += 1;
                return RxVerdict::Drop;
            }
            return RxVerdict::Pass;
        };
        let opt = s.option(f);
        match opt {
            CrabOption::Malformed => self.stats.option_bad_length += 1,
            CrabOption::Vip(_) if !(s.is_syn() || s.is_synack()) => {
                self.stats.option_not_syn += 1;
            }
            _ => {}
        }
        if self.client {
            if let Some(r) = self.redirected.get(&s.dport)
                && s.src == r.server
                && s.sport == r.vport
            {
                return RxVerdict::Rewrite;
            }
            if s.is_synack()
                && let Some(&(vip, vport)) = self.opening.get(&s.dport)
                && s.sport == vport
            {
                match opt {
                    CrabOption::Vip(v) if v == vip && s.src != vip => {
                        self.opening.remove(&s.dport);
                        self.redirected.insert(
                            s.dport,
                            Redirect {
                                vip,
                                vport,
                                server: s.src,
                                next_hop: f[6..12].try_into().unwrap_or_default(),
                            },
                        );
                        self.stats.redirects += 1;
                        return RxVerdict::Rewrite;
                    }
                    _ if s.src == vip => {
                        self.opening.remove(&s.dport);
                        self.stats.plain_synacks += 1;
                        return RxVerdict::Pass;
                    }
                    _ => {}
                }
            }
            if s.is_synack() && matches!(opt, CrabOption::Vip(v) if v != s.src) {
                // Redirecting a SYN we did not send (or to another VIP): never let it touch
                // a connection, or make smoltcp answer it.
                self.stats.forged_redirects += 1;
                return RxVerdict::Drop;
            }
        }
        if self.server {
            let key = (s.src, s.sport, s.dport);
            if s.is_syn()
                && let CrabOption::Vip(v) = opt
                && v != s.dst
            {
                self.stats.syns_redirected += 1;
                if self.echo.insert(key, v).is_none() {
                    self.echo_order.push_back(key);
                }
                while self.echo.len() > MAX_PENDING_ECHOES {
                    if let Some(old) = self.echo_order.pop_front()
                        && self.echo.remove(&old).is_some()
                    {
                        self.stats.echoes_evicted += 1;
                    }
                }
            } else if !s.is_syn() && !self.echo.is_empty() && self.echo.remove(&key).is_some() {
                // The handshake is done (or the peer gave up): no more SYN-ACKs to mark.
                self.echo_order.retain(|k| *k != key);
            }
        }
        RxVerdict::Pass
    }

    /// Rewrites a frame [`Crab::rx`] said [`RxVerdict::Rewrite`] to: the server's address back
    /// to the VIP the socket knows.
    pub fn rewrite_rx(&mut self, f: &mut [u8]) {
        let Some(s) = Segment::parse(f) else { return };
        if let Some(r) = self.redirected.get(&s.dport).copied()
            && s.src == r.server
        {
            set_addr(f, &s, 12, r.vip);
            self.stats.rx_rewritten += 1;
        }
    }

    /// Whether an outgoing frame may need the option inserted (then it must go through
    /// [`Crab::tx_insert`], which needs [`BLOCK`] more bytes).
    pub fn may_insert(&self) -> bool {
        (self.client && !self.opening.is_empty()) || (self.server && !self.echo.is_empty())
    }

    /// The VIP to insert into this outgoing frame, if it needs the option.
    pub fn tx_insert(&mut self, f: &[u8]) -> Option<(Segment, Ipv4Addr)> {
        let s = Segment::parse(f)?;
        if !matches!(s.option(f), CrabOption::Absent) {
            return None;
        }
        let vip = if self.client
            && s.is_syn()
            && let Some(&(vip, vport)) = self.opening.get(&s.sport)
            && (s.dst, s.dport) == (vip, vport)
        {
            self.stats.syns_marked += 1;
            vip
        } else if self.server
            && s.is_synack()
            && let Some(&vip) = self.echo.get(&(s.dst, s.dport, s.sport))
        {
            self.stats.echoes += 1;
            vip
        } else {
            return None;
        };
        if s.tcp_len + BLOCK > 60 {
            self.stats.no_room += 1;
            return None;
        }
        Some((s, vip))
    }

    /// Rewrites an outgoing frame in place: a redirected connection's segments go to its
    /// server (its address, and the MAC its SYN-ACK came from).
    pub fn rewrite_tx(&mut self, f: &mut [u8]) {
        if self.redirected.is_empty() {
            return;
        }
        let Some(s) = Segment::parse(f) else { return };
        if let Some(r) = self.redirected.get(&s.sport).copied()
            && (s.dst, s.dport) == (r.vip, r.vport)
        {
            set_addr(f, &s, 16, r.server);
            f[0..6].copy_from_slice(&r.next_hop);
            self.stats.tx_rewritten += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

    /// An Ethernet/IPv4/TCP frame with `opts` (a multiple of 4 bytes) and `payload`, valid
    /// checksums.
    fn seg(src: Ipv4Addr, dst: Ipv4Addr, ports: (u16, u16), flags: u8, opts: &[u8]) -> Vec<u8> {
        let payload = b"hi";
        let tcp_len = 20 + opts.len();
        let total = 20 + tcp_len + payload.len();
        let mut f = vec![0u8; 14 + total];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let c = crate::checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let t = 34;
        f[t..t + 2].copy_from_slice(&ports.0.to_be_bytes());
        f[t + 2..t + 4].copy_from_slice(&ports.1.to_be_bytes());
        f[t + 12] = ((tcp_len / 4) as u8) << 4;
        f[t + 13] = flags;
        f[t + 20..t + tcp_len].copy_from_slice(opts);
        f[t + tcp_len..].copy_from_slice(payload);
        let mut sum = Checksum::new();
        sum.add_bytes(&f[26..34]);
        sum.add_bytes(&[0, 6]);
        sum.add_bytes(&((tcp_len + payload.len()) as u16).to_be_bytes());
        sum.add_bytes(&f[t..]);
        let c = sum.finish();
        f[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// Both checksums verify.
    fn valid(f: &[u8]) -> bool {
        let s = Segment::parse(f).unwrap();
        let total = usize::from(word(f, 16));
        let mut sum = Checksum::new();
        sum.add_bytes(&f[26..34]);
        sum.add_bytes(&[0, 6]);
        sum.add_bytes(&((total - 20) as u16).to_be_bytes());
        sum.add_bytes(&f[s.tcp..14 + total]);
        crate::checksum::checksum(&f[14..34]) == 0 && sum.finish() == 0
    }

    const OPT: [u8; 8] = [NOP, NOP, KIND, LEN, 10, 0, 0, 100];

    #[test]
    fn options_are_found_and_checked() {
        let f = seg(C, VIP, (50000, 80), SYN, &OPT);
        let s = Segment::parse(&f).unwrap();
        assert_eq!(s.option(&f), CrabOption::Vip(VIP));
        // After other options (MSS, window scale), and absent.
        // smoltcp's SYN: MSS, window scale, SACK permitted, end of list and padding.
        let f = seg(
            C,
            VIP,
            (50000, 80),
            SYN,
            &[2, 4, 5, 0xb4, 3, 3, 0, 4, 2, 0, 0, 0],
        );
        let s = Segment::parse(&f).unwrap();
        let mut out = vec![0u8; f.len() + BLOCK];
        assert!(insert_option(&f, &s, VIP, &mut out));
        assert_eq!(
            Segment::parse(&out).unwrap().option(&out),
            CrabOption::Vip(VIP)
        );
        assert!(valid(&out));
        let mut opts = vec![2, 4, 5, 0xb4, 3, 3, 7, NOP];
        opts.extend_from_slice(&OPT);
        let f = seg(C, VIP, (50000, 80), SYN, &opts);
        assert_eq!(Segment::parse(&f).unwrap().option(&f), CrabOption::Vip(VIP));
        let f = seg(C, VIP, (50000, 80), SYN, &[2, 4, 5, 0xb4]);
        assert_eq!(Segment::parse(&f).unwrap().option(&f), CrabOption::Absent);
        // Wrong length, or cut by the header's end: malformed; a zero-length other option
        // stops the walk.
        let f = seg(C, VIP, (50000, 80), SYN, &[KIND, 5, 10, 0, 0, 100, 0, 0]);
        assert_eq!(
            Segment::parse(&f).unwrap().option(&f),
            CrabOption::Malformed
        );
        let f = seg(C, VIP, (50000, 80), SYN, &[NOP, NOP, NOP, KIND]);
        assert_eq!(
            Segment::parse(&f).unwrap().option(&f),
            CrabOption::Malformed
        );
        let f = seg(C, VIP, (50000, 80), SYN, &[9, 0, KIND, LEN, 10, 0, 0, 100]);
        assert_eq!(Segment::parse(&f).unwrap().option(&f), CrabOption::Absent);
    }

    #[test]
    fn parsing_never_reads_past_the_frame() {
        let f = seg(C, VIP, (50000, 80), SYN, &OPT);
        for n in 0..f.len() {
            if let Some(s) = Segment::parse(&f[..n]) {
                let _ = s.option(&f[..n]);
            }
        }
        let mut g = f.clone();
        g[14 + 2..14 + 4].copy_from_slice(&9000u16.to_be_bytes()); // total length beyond
        assert_eq!(Segment::parse(&g), None);
        let mut g = f.clone();
        g[34 + 12] = 0xf0; // data offset beyond the segment
        assert_eq!(Segment::parse(&g), None);
        let mut g = f;
        g[14 + 6] = 0x20; // a fragment
        assert_eq!(Segment::parse(&g), None);
    }

    #[test]
    fn inserting_and_rewriting_keep_checksums_valid() {
        let f = seg(C, VIP, (50000, 80), SYN, &[2, 4, 5, 0xb4]);
        assert!(valid(&f));
        let s = Segment::parse(&f).unwrap();
        let mut out = vec![0u8; f.len() + BLOCK];
        assert!(insert_option(&f, &s, VIP, &mut out));
        assert!(valid(&out));
        let t = Segment::parse(&out).unwrap();
        assert_eq!(t.tcp_len, 32);
        assert_eq!(t.option(&out), CrabOption::Vip(VIP));
        assert_eq!(&out[out.len() - 2..], b"hi", "payload kept");
        assert!(!insert_option(&f, &s, VIP, &mut vec![0u8; f.len()]));
        // No room beyond 40 bytes of options.
        let full = seg(C, VIP, (50000, 80), SYN, &[NOP; 36]);
        let s = Segment::parse(&full).unwrap();
        assert!(!insert_option(
            &full,
            &s,
            VIP,
            &mut vec![0u8; full.len() + BLOCK]
        ));
        let mut g = f.clone();
        set_addr(&mut g, &Segment::parse(&f).unwrap(), 16, S);
        assert!(valid(&g));
        // A partial checksum (the pseudo-header sum only) becomes a full one.
        let mut p = f.clone();
        p[34 + 16..34 + 18].copy_from_slice(&[0x12, 0x34]);
        assert!(!valid(&p));
        recompute_tcp_checksum(&mut p, &Segment::parse(&f).unwrap());
        assert!(valid(&p));
        assert_eq!(Segment::parse(&g).unwrap().dst, S);
    }

    /// The whole client/server exchange at the frame level, and what bad input does.
    #[test]
    fn redirection_at_both_ends() {
        let mut client = Crab::client(false);
        let mut server = Crab::server();
        client.opened(50000, VIP, 80);
        // The client's SYN gets the option.
        let syn = seg(C, VIP, (50000, 80), SYN, &[2, 4, 5, 0xb4]);
        assert!(client.may_insert());
        let (s, vip) = client.tx_insert(&syn).unwrap();
        let mut marked = vec![0u8; syn.len() + BLOCK];
        assert!(insert_option(&syn, &s, vip, &mut marked));
        // The load balancer sends it on to the server's address (the option kept).
        let ms = Segment::parse(&marked).unwrap();
        set_addr(&mut marked, &ms, 16, S);
        assert_eq!(server.rx(&marked), RxVerdict::Pass);
        assert!(server.may_insert());
        // The server's SYN-ACK echoes it.
        let synack = seg(S, C, (80, 50000), SYN | ACK, &[2, 4, 5, 0xb4]);
        let (s, vip) = server.tx_insert(&synack).unwrap();
        assert_eq!(vip, VIP);
        let mut echoed = vec![0u8; synack.len() + BLOCK];
        assert!(insert_option(&synack, &s, vip, &mut echoed));
        // A SYN-ACK to another peer is left alone.
        assert!(
            server
                .tx_insert(&seg(S, C, (80, 50001), SYN | ACK, &[]))
                .is_none()
        );
        // The client follows it: the SYN-ACK is rewritten to come from the VIP.
        assert_eq!(client.rx(&echoed), RxVerdict::Rewrite);
        client.rewrite_rx(&mut echoed);
        assert!(valid(&echoed));
        assert_eq!(Segment::parse(&echoed).unwrap().src, VIP);
        assert_eq!(client.server_of(50000), Some(S));
        // Its segments leave for the server; the server's come back as the VIP's.
        let mut ack = seg(C, VIP, (50000, 80), ACK, &[]);
        client.rewrite_tx(&mut ack);
        assert_eq!(Segment::parse(&ack).unwrap().dst, S);
        assert!(valid(&ack));
        let mut data = seg(S, C, (80, 50000), ACK, &[]);
        assert_eq!(client.rx(&data), RxVerdict::Rewrite);
        client.rewrite_rx(&mut data);
        assert_eq!(Segment::parse(&data).unwrap().src, VIP);
        // The handshake done, the server stops marking.
        assert_eq!(
            server.rx(&seg(C, S, (50000, 80), ACK, &[])),
            RxVerdict::Pass
        );
        assert!(!server.may_insert());
        // Bad input: a forged redirect for another port is dropped, the option on data is
        // counted and ignored, the connection is untouched.
        let forged = seg(Ipv4Addr::new(6, 6, 6, 6), C, (80, 50001), SYN | ACK, &OPT);
        assert_eq!(client.rx(&forged), RxVerdict::Drop);
        let odd = seg(S, C, (80, 50000), ACK, &OPT);
        assert_eq!(client.rx(&odd), RxVerdict::Rewrite);
        let st = client.stats();
        assert_eq!(
            (st.forged_redirects, st.option_not_syn, st.redirects),
            (1, 1, 1)
        );
        assert_eq!(client.server_of(50000), Some(S));
        client.closed(50000);
        assert_eq!(client.server_of(50000), None);
        assert_eq!(server.stats().echoes, 1);
    }

    #[test]
    fn a_plain_synack_from_the_vip_is_not_a_redirect() {
        let mut client = Crab::client(false);
        client.opened(50000, VIP, 80);
        assert_eq!(
            client.rx(&seg(VIP, C, (80, 50000), SYN | ACK, &[])),
            RxVerdict::Pass
        );
        assert_eq!(client.stats().plain_synacks, 1);
        assert!(!client.may_insert());
        let mut ack = seg(C, VIP, (50000, 80), ACK, &[]);
        let before = ack.clone();
        client.rewrite_tx(&mut ack);
        assert_eq!(ack, before);
    }

    #[test]
    fn pending_echoes_are_bounded_and_vip_arp_ignored() {
        let mut server = Crab::server();
        for p in 0..(MAX_PENDING_ECHOES as u16 + 10) {
            let syn = seg(C, S, (1000 + p, 80), SYN, &OPT);
            server.rx(&syn);
        }
        assert_eq!(server.stats().echoes_evicted, 10);
        assert!(
            server
                .tx_insert(&seg(S, C, (80, 1000), SYN | ACK, &[]))
                .is_none()
        );
        assert!(
            server
                .tx_insert(&seg(S, C, (80, 1010), SYN | ACK, &[]))
                .is_some()
        );
        let mut dsr = Crab::off();
        dsr.set_vip(Some(VIP));
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[20..22].copy_from_slice(&[0, 1]);
        arp[38..42].copy_from_slice(&VIP.octets());
        assert_eq!(dsr.rx(&arp), RxVerdict::Drop);
        arp[38..42].copy_from_slice(&S.octets());
        assert_eq!(dsr.rx(&arp), RxVerdict::Pass);
    }
}
