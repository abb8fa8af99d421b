//! The ixgbe driver against the 82599 device model: bring-up, frames both ways, ring wrap,
//! RSS spread, checksum offload, Flow Director, statistics, and a hostile device.

use super::sim::{SimPort, SimRegs, device};
use super::*;
use crate::buf::PacketBuf;
use ferrix_abi::rss::frame_hash;
use ferrix_ixgbe_model::frames::{Flow, checksum_field, ipv4_frame, l4_checksum_ok};
use ferrix_ixgbe_model::{Hostile, RxOutcome, pseudo_header_for};
use ferrix_ixgbe_regs::desc::{RxWriteBack, rx_status};

const MAC: [u8; 6] = [0x02, 0x1f, 0, 0, 0, 7];

fn nic(pairs: usize, flow_director: bool) -> (Ixgbe<SimRegs>, Vec<Box<dyn QueuePair>>, SimPort) {
    let (regs, port) = device(MAC);
    let config = IxgbeConfig {
        queue_pairs: pairs,
        flow_director,
    };
    let mut nic = Ixgbe::new(regs, config, port.dma()).expect("bring-up");
    let qs = nic.take_queues();
    (nic, qs, port)
}

fn flow(i: u32, tcp: bool) -> Flow {
    Flow {
        dst_mac: MAC,
        src: [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        dst: [10, 0, 0, 1],
        tcp,
        sport: 1024u16.wrapping_add((i as u16).wrapping_mul(13)),
        dport: 80,
    }
}

/// The queue `ferrix_abi::rss` predicts for `frame` over `pairs` queues (RETA i -> i mod pairs).
fn predicted(frame: &[u8], pairs: usize) -> usize {
    let h = frame_hash(&ferrix_abi::rss::MICROSOFT_RSS_KEY, frame).unwrap();
    (h as usize % INDIRECTION_ENTRIES) % pairs
}

fn rx_one(q: &mut Box<dyn QueuePair>) -> PacketBuf {
    let mut v = Vec::new();
    assert_eq!(q.rx_burst(&mut v, 1), 1, "queue {}: no frame", q.index());
    v.pop().unwrap()
}

#[test]
fn bring_up_resets_and_programs_the_device() {
    let (nic, qs, port) = nic(4, false);
    let info = nic.info();
    assert_eq!(info.mac, MAC, "read from RAL(0)/RAH(0)");
    assert!(info.link_up, "the driver restarted auto-negotiation");
    assert_eq!(info.queue_pairs, 4);
    assert!(info.offloads.rss_toeplitz && info.offloads.tx_checksum && info.offloads.rx_checksum);
    assert_eq!(qs.len(), 4);
    let mut m = port.model();
    for (i, k) in ferrix_abi::rss::MICROSOFT_RSS_KEY
        .chunks_exact(4)
        .enumerate()
    {
        assert_eq!(m.mmio_read(u64::from(rssrk(i))).to_le_bytes(), k);
    }
    assert_eq!(m.mmio_read(u64::from(reta(0))), 0x0302_0100);
    assert_eq!(m.mmio_read(u64::from(RXCTRL)), RXCTRL_RXEN);
    assert_eq!(
        m.mmio_read(u64::from(EIMS)),
        0,
        "interrupts masked: ferrix polls"
    );
    assert_eq!(
        m.mmio_read(u64::from(ivar(1))),
        0x8383_8282,
        "queues 2, 3 -> vectors 2, 3"
    );
    assert_eq!(
        m.mmio_read(u64::from(rdt(0))),
        u32::from(RING_SIZE) - 1,
        "RX ring posted"
    );
    assert_eq!(
        m.counters(),
        Default::default(),
        "the driver did nothing the model refused"
    );
}

/// A device that answers all-ones (gone from the bus) or never finishes its reset.
#[derive(Clone)]
struct Dead;
impl Regs for Dead {
    fn read(&self, _off: u32) -> u32 {
        u32::MAX
    }
    fn write(&self, _off: u32, _v: u32) {}
}

#[test]
fn a_device_that_never_resets_fails_bring_up() {
    let config = IxgbeConfig {
        queue_pairs: 1,
        flow_director: false,
    };
    let r = Ixgbe::new(Dead, config, |_| None);
    assert_eq!(r.err(), Some(IxgbeError::ResetTimeout));
}

#[test]
fn frames_go_both_ways_and_the_rings_wrap() {
    let (_nic, mut qs, port) = nic(1, false);
    let q = &mut qs[0];
    let rounds = 3 * u32::from(RING_SIZE) + 17;
    for i in 0..rounds {
        let f = ipv4_frame(&flow(i, i % 2 == 0), &vec![i as u8; (i % 1400) as usize]);
        assert_eq!(
            port.inject(&f),
            RxOutcome::Delivered { queue: 0 },
            "frame {i}"
        );
        assert!(q.rx_pending());
        let b = rx_one(q);
        assert_eq!(b.data(), &f[..]);
        assert!(b.l4_checksum_ok());
        let mut tx = vec![b];
        assert_eq!(q.tx_burst(&mut tx), 1);
        assert_eq!(port.take_sent(), vec![f]);
    }
    // Bursts: more frames than one refill batch, fewer than the ring.
    for burst in 0..4u32 {
        let frames: Vec<Vec<u8>> = (0..200)
            .map(|i| ipv4_frame(&flow(burst * 1000 + i, false), b"burst"))
            .collect();
        for f in &frames {
            assert_eq!(port.inject(f), RxOutcome::Delivered { queue: 0 });
        }
        let mut rx = Vec::new();
        let mut got = 0;
        for _ in 0..10 {
            got += q.rx_burst(&mut rx, 64);
        }
        assert_eq!(got, 200);
        assert!(
            rx.iter()
                .map(PacketBuf::data)
                .eq(frames.iter().map(|f| &f[..]))
        );
        assert_eq!(q.tx_burst(&mut rx), 200);
        assert_eq!(port.take_sent(), frames);
    }
    let s = q.stats();
    let n = u64::from(rounds) + 800;
    assert_eq!((s.rx_packets, s.tx_packets), (n, n));
    assert_eq!(
        (s.device_errors, s.rx_dropped, s.foreign_buffers),
        (0, 0, 0)
    );
}

#[test]
fn rss_puts_every_flow_on_its_toeplitz_queue() {
    let pairs = 4;
    let (_nic, mut qs, port) = nic(pairs, false);
    let mut per_queue = [0u32; 4];
    for i in 0..600 {
        let f = ipv4_frame(&flow(i * 7919, i % 3 == 0), b"rss");
        let want = predicted(&f, pairs);
        assert_eq!(port.inject(&f), RxOutcome::Delivered { queue: want });
        for (j, q) in qs.iter_mut().enumerate() {
            assert_eq!(q.rx_pending(), j == want, "flow {i}: queue {j}");
        }
        let b = rx_one(&mut qs[want]);
        assert_eq!(b.data(), &f[..]);
        qs[want].free(b);
        per_queue[want] += 1;
    }
    assert!(per_queue.iter().all(|&n| n > 100), "spread {per_queue:?}");
}

#[test]
fn transmit_checksums_are_offloaded_or_done_in_software() {
    let (_nic, mut qs, port) = nic(1, false);
    let q = &mut qs[0];
    for (i, tcp) in [(1, false), (2, true), (3, false), (4, true)] {
        let good = ipv4_frame(&flow(i, tcp), b"checksum me, device");
        let mut f = good.clone();
        let field = checksum_field(tcp);
        let pseudo = pseudo_header_for(&f).unwrap();
        f[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
        assert!(!l4_checksum_ok(&f));
        let mut b = q.alloc().unwrap();
        assert!(b.set_len(f.len()));
        b.data_mut().copy_from_slice(&f);
        b.request_tx_checksum(34, (field - 34) as u16);
        let mut tx = vec![b];
        assert_eq!(q.tx_burst(&mut tx), 1);
        assert_eq!(port.take_sent(), vec![good], "frame {i}");
    }
    // A frame the device's context cannot describe (VLAN-tagged: MACLEN 18, not 14): the
    // driver completes the checksum itself.
    let good = ipv4_frame(&flow(9, false), b"soft");
    let pseudo = pseudo_header_for(&good).unwrap();
    let mut f = good.clone();
    f[40..42].copy_from_slice(&pseudo.to_be_bytes());
    f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    let mut b = q.alloc().unwrap();
    assert!(b.set_len(f.len()));
    b.data_mut().copy_from_slice(&f);
    b.request_tx_checksum(38, 6);
    let mut tx = vec![b];
    q.tx_burst(&mut tx);
    let sent = port.take_sent();
    let mut untagged = sent[0].clone();
    untagged.drain(12..16);
    assert_eq!(untagged, good, "software checksum");
    // Receive: a corrupted checksum is not vouched for.
    let mut bad = ipv4_frame(&flow(5, true), b"corrupt");
    let n = bad.len();
    bad[n - 1] ^= 0x55;
    port.inject(&bad);
    assert!(!rx_one(q).l4_checksum_ok());
}

#[test]
fn flow_director_steers_a_port_to_a_queue() {
    let (mut nic, mut qs, port) = nic(4, true);
    nic.steer_port(L4::Udp, 7777, 2, 11).unwrap();
    assert_eq!(
        nic.steer_port(L4::Tcp, 1, 9, 1),
        Err(IxgbeError::BadQueue(9))
    );
    let mut not_rss = 0;
    for i in 0..64 {
        let mut fl = flow(i * 31, false);
        fl.dport = 7777;
        let f = ipv4_frame(&fl, b"fdir");
        not_rss += usize::from(predicted(&f, 4) != 2);
        assert_eq!(port.inject(&f), RxOutcome::Delivered { queue: 2 });
        let b = rx_one(&mut qs[2]);
        qs[2].free(b);
        // The same port over TCP is not matched: RSS decides.
        fl.tcp = true;
        let f = ipv4_frame(&fl, b"fdir");
        let want = predicted(&f, 4);
        assert_eq!(port.inject(&f), RxOutcome::Delivered { queue: want });
        let b = rx_one(&mut qs[want]);
        qs[want].free(b);
    }
    assert!(not_rss > 20, "the filter, not RSS, chose queue 2");
    let s = nic.hw_stats();
    assert_eq!((s.fdir_matches, s.fdir_misses), (64, 64));
    let (mut plain, _, _) = self::nic(2, false);
    assert_eq!(
        plain.steer_port(L4::Udp, 1, 0, 0),
        Err(IxgbeError::FdirRejected)
    );
}

#[test]
fn statistics_add_up_across_reads() {
    let (mut nic, mut qs, port) = nic(1, false);
    let q = &mut qs[0];
    let f = ipv4_frame(&flow(1, false), &[0u8; 100]);
    let total = u64::from(RING_SIZE) + 10;
    for i in 0..total {
        port.inject(&f);
        let mut tx = vec![rx_one(q)];
        q.tx_burst(&mut tx);
        port.take_sent();
        if i == 100 {
            nic.hw_stats(); // a read in the middle clears the registers
        }
    }
    // No rx_burst now: the posted descriptors fill up, the rest are missed.
    let mut delivered = 0;
    let mut missed = 0;
    for _ in 0..RING_SIZE {
        match port.inject(&f) {
            RxOutcome::Delivered { .. } => delivered += 1,
            RxOutcome::NoDescriptor { .. } => missed += 1,
            o => panic!("{o:?}"),
        }
    }
    assert!(missed > 0);
    let s = nic.hw_stats();
    let wire = f.len() as u64 + 4;
    assert_eq!(s.rx_good_packets, total + delivered);
    assert_eq!(s.tx_good_packets, total);
    assert_eq!(s.tx_good_bytes, total * wire);
    assert_eq!(s.rx_good_bytes, (total + delivered) * wire);
    assert_eq!(s.rx_missed, missed);
}

#[test]
fn a_hostile_device_is_counted_not_trusted() {
    let (_nic, mut qs, port) = nic(1, false);
    let q = &mut qs[0];
    let f = ipv4_frame(&flow(3, false), b"lies");
    let mut rx = Vec::new();
    let mut errors = 0;
    for lie in [
        Hostile::LengthBeyondBuffer,
        Hostile::ZeroLength,
        Hostile::NoEop,
    ] {
        port.set_hostile(lie);
        for _ in 0..100 {
            assert_eq!(port.inject(&f), RxOutcome::Delivered { queue: 0 });
            assert_eq!(q.rx_burst(&mut rx, 8), 0, "{lie:?}: nothing delivered");
            errors += 1;
        }
        assert_eq!(q.stats().device_errors, errors, "{lie:?}");
    }
    // DD written on the one RX descriptor the driver had not posted, and on TX descriptors
    // never handed over: each counted when the driver reaches it.
    port.set_hostile(Hostile::Honest);
    {
        let mut m = port.model();
        let rdh = m.mmio_read(u64::from(rdh(0)));
        let wb = RxWriteBack {
            status_error: rx_status::DD | rx_status::EOP,
            length: 60,
            ..RxWriteBack::default()
        };
        // The driver keeps one descriptor unposted: the one before the device's head.
        let i = (rdh + u32::from(RING_SIZE) - 1) % u32::from(RING_SIZE);
        assert!(m.write_rx_descriptor_raw(0, i, wb));
        assert!(m.write_tx_done_raw(0, 40));
        assert!(m.write_tx_done_raw(0, 41));
    }
    // The stack keeps working: a full ring's worth of honest traffic, several times around.
    for i in 0..3 * u32::from(RING_SIZE) {
        let f = ipv4_frame(&flow(i, true), b"honest");
        assert_eq!(port.inject(&f), RxOutcome::Delivered { queue: 0 });
        let b = rx_one(q);
        assert_eq!(b.data(), &f[..]);
        let mut tx = vec![b];
        assert_eq!(q.tx_burst(&mut tx), 1);
        assert_eq!(port.take_sent(), vec![f]);
    }
    let s = q.stats();
    assert_eq!(
        s.device_errors,
        errors + 3,
        "one RX, two TX descriptors not in flight"
    );
    assert_eq!(s.rx_packets, 3 * u64::from(RING_SIZE));
    assert_eq!(s.foreign_buffers, 0);
}
