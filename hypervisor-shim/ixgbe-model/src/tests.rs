//! The model driven register by register, as a driver would (the real driver's tests live in
//! `ferrix-drivers`' `ixgbe` module).

use super::*;
use ferrix_abi::rss::{MICROSOFT_RSS_KEY, toeplitz};
use ferrix_ixgbe_regs::desc::*;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];
const BASE: u64 = 0x10_0000;
/// Memory layout: RX rings at BASE + q * 0x1000, TX ring at BASE + 0x10000, buffers at
/// BASE + 0x20000 + q * 0x10000 + i * 0x800.
const ENTRIES: u32 = 8;

fn buf(q: usize, i: u32) -> u64 {
    BASE + 0x20000 + q as u64 * 0x10000 + u64::from(i) * 0x800
}

fn device() -> Ixgbe82599<VecMemory> {
    let mut d = Ixgbe82599::new(MAC, VecMemory::new(BASE, 0x20000 + 0x10000 * 17));
    d.mmio_write(u64::from(AUTOC), AUTOC_RESTART_AN);
    d.mmio_write(u64::from(FCTRL), FCTRL_BAM);
    d.mmio_write(u64::from(RXCSUM), RXCSUM_PCSD);
    d
}

/// Sets up RX queue `q` with ENTRIES descriptors, all but one posted.
fn rx_queue(d: &mut Ixgbe82599<VecMemory>, q: usize) {
    let ring = BASE + q as u64 * 0x1000;
    for i in 0..ENTRIES {
        let desc = rx_read(buf(q, i), 0);
        d.memory().write(ring + u64::from(i) * 16, &desc).unwrap();
    }
    d.mmio_write(u64::from(rdbal(q)), ring as u32);
    d.mmio_write(u64::from(rdbah(q)), (ring >> 32) as u32);
    d.mmio_write(u64::from(rdlen(q)), ENTRIES * 16);
    d.mmio_write(u64::from(srrctl(q)), SRRCTL_DESCTYPE_ADV_ONEBUF | 2);
    d.mmio_write(u64::from(rxdctl(q)), XDCTL_ENABLE);
    d.mmio_write(u64::from(rdt(q)), ENTRIES - 1);
    d.mmio_write(u64::from(RXCTRL), RXCTRL_RXEN);
}

fn rx_wb(d: &mut Ixgbe82599<VecMemory>, q: usize, i: u32) -> RxWriteBack {
    let mut b = [0u8; 16];
    let at = BASE + q as u64 * 0x1000 + u64::from(i) * 16;
    d.memory().read(at, &mut b).unwrap();
    RxWriteBack::decode(&b)
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let flow = frames::Flow {
        dst_mac: MAC,
        src,
        dst,
        tcp: false,
        sport,
        dport,
    };
    frames::ipv4_frame(&flow, payload)
}

fn program_rss(d: &mut Ixgbe82599<VecMemory>, queues: usize) {
    for (i, c) in MICROSOFT_RSS_KEY.chunks_exact(4).enumerate() {
        d.mmio_write(
            u64::from(rssrk(i)),
            u32::from_le_bytes(c.try_into().unwrap()),
        );
    }
    for i in 0..32 {
        let e = |j: usize| ((4 * i + j) % queues) as u32;
        d.mmio_write(
            u64::from(reta(i)),
            e(0) | (e(1) << 8) | (e(2) << 16) | (e(3) << 24),
        );
    }
    d.mmio_write(
        u64::from(MRQC),
        MRQC_MRQE_RSS | MRQC_RSS_TCPIPV4 | MRQC_RSS_IPV4 | MRQC_RSS_UDPIPV4,
    );
}

#[test]
fn reset_loads_the_mac_and_the_link_needs_autoneg() {
    let mut d = Ixgbe82599::new(MAC, VecMemory::new(0, 0));
    d.mmio_write(u64::from(EIMS), 0xffff);
    d.mmio_write(u64::from(CTRL), CTRL_RST);
    let reads: Vec<bool> = (0..5)
        .map(|_| d.mmio_read(u64::from(CTRL)) & CTRL_RST != 0)
        .collect();
    assert_eq!(reads, [true, true, true, false, false]);
    assert_eq!(d.mmio_read(u64::from(EIMS)), 0, "reset masks everything");
    assert_ne!(d.mmio_read(u64::from(EEC)) & EEC_ARD, 0);
    assert_eq!(d.mmio_read(u64::from(ral(0))), 0x0000_0002);
    assert_eq!(d.mmio_read(u64::from(rah(0))), 0x4200 | RAH_AV);
    assert_eq!(d.mmio_read(u64::from(LINKS)) & LINKS_UP, 0);
    d.mmio_write(u64::from(AUTOC), AUTOC_RESTART_AN);
    assert_eq!(d.mmio_read(u64::from(LINKS)), LINKS_UP | LINKS_SPEED_10G);
    assert_ne!(d.mmio_read(u64::from(STATUS)) & STATUS_LINK_UP, 0);
    d.set_carrier(false);
    assert_eq!(d.mmio_read(u64::from(LINKS)) & LINKS_UP, 0);
    assert_eq!(d.mmio_read(u64::from(EICR)), EICR_LSC);
    assert_eq!(d.mmio_read(u64::from(EICR)), 0, "EICR clears on read");
    // Out of BAR0 and unaligned: counted, harmless.
    assert_eq!(d.mmio_read(BAR0_SIZE), 0);
    d.mmio_write(3, 1);
    assert_eq!(d.counters().bad_mmio, 2);
}

#[test]
fn rss_sends_each_flow_to_its_toeplitz_queue() {
    let mut d = device();
    for q in 0..4 {
        rx_queue(&mut d, q);
    }
    program_rss(&mut d, 4);
    let mut next = [0u32; 4];
    for i in 0..24u16 {
        let f = udp(
            [10, 0, 0, i as u8],
            [10, 0, 0, 200],
            1000 + i * 7,
            9000,
            b"hi",
        );
        let input = ferrix_abi::rss::flow_input(&f).unwrap();
        let h = toeplitz(&MICROSOFT_RSS_KEY, &input.0[..input.1]);
        let want = (h % 128) as usize % 4;
        if next[want] == ENTRIES - 1 {
            continue; // that queue is full; the next test covers wrap
        }
        assert_eq!(d.inject_rx(&f), RxOutcome::Delivered { queue: want });
        let wb = rx_wb(&mut d, want, next[want]);
        next[want] += 1;
        assert!(wb.done() && wb.status_error & rx_status::EOP != 0);
        assert_eq!(wb.rss_hash, h);
        assert_eq!(wb.rss_type, rss_type::UDP_IPV4);
        assert_eq!(wb.length as usize, f.len());
        let good = rx_status::IPCS | rx_status::L4CS | rx_status::UDPCS;
        assert_eq!(
            wb.status_error & (good | rx_error::TCPE | rx_error::IPE),
            good
        );
    }
    let total: u32 = next.iter().sum();
    assert!(next.iter().all(|&n| n > 0), "{next:?}");
    assert_eq!(d.mmio_read(u64::from(GPRC)), total);
    assert_eq!(d.mmio_read(u64::from(GPRC)), 0, "clear on read");
    assert_eq!(d.mmio_read(u64::from(qprc(0))), next[0]);
}

#[test]
fn a_full_ring_counts_missed_packets_and_a_bad_checksum_is_flagged() {
    let mut d = device();
    rx_queue(&mut d, 0);
    let mut f = udp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, b"payload");
    f[45] ^= 0xff; // corrupt the payload: the UDP checksum no longer holds
    for _ in 0..ENTRIES - 1 {
        assert_eq!(d.inject_rx(&f), RxOutcome::Delivered { queue: 0 });
    }
    assert_eq!(d.inject_rx(&f), RxOutcome::NoDescriptor { queue: 0 });
    assert_eq!(d.mmio_read(u64::from(MPC0)), 1);
    assert_ne!(rx_wb(&mut d, 0, 0).status_error & rx_error::TCPE, 0);
    // Another MAC, a too-long frame: refused.
    let mut other = f.clone();
    other[5] = 0x43;
    assert_eq!(d.inject_rx(&other), RxOutcome::Filtered);
    assert_eq!(d.inject_rx(&[0u8; 1600]), RxOutcome::BadSize);
}

#[test]
fn guest_addresses_are_untrusted() {
    let mut d = device();
    rx_queue(&mut d, 0);
    // A descriptor pointing outside guest memory: counted, completed with an error.
    d.memory()
        .write(BASE, &rx_read(0xdead_0000_0000, 0))
        .unwrap();
    let f = udp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, b"x");
    assert_eq!(d.inject_rx(&f), RxOutcome::DmaError { queue: 0 });
    let wb = rx_wb(&mut d, 0, 0);
    assert!(wb.done() && wb.status_error & rx_error::RXE != 0 && wb.length == 0);
    // A ring outside memory, a ring length not a multiple of 128, a tail beyond the ring.
    d.mmio_write(u64::from(rdbah(0)), 0xffff_ffff);
    assert_eq!(d.inject_rx(&f), RxOutcome::DmaError { queue: 0 });
    d.mmio_write(u64::from(rdbah(0)), 0);
    d.mmio_write(u64::from(rdlen(0)), 100);
    assert_eq!(d.inject_rx(&f), RxOutcome::QueueUnusable { queue: 0 });
    d.mmio_write(u64::from(rdlen(0)), 128);
    d.mmio_write(u64::from(rdt(0)), 4000);
    assert_eq!(d.inject_rx(&f), RxOutcome::QueueUnusable { queue: 0 });
    let c = d.counters();
    assert_eq!((c.dma_errors, c.bad_rings), (2, 2));
    // Transmit from a buffer outside memory: dropped, counted, DD still written back.
    let tx_ring = BASE + 0x10000;
    let bad = TxData {
        addr: u64::MAX - 4,
        cmd_type_len: tx_cmd::DTYP_DATA | tx_cmd::DEXT | tx_cmd::EOP | tx_cmd::RS | 60,
        olinfo_status: 0,
    };
    d.memory().write(tx_ring, &bad.encode()).unwrap();
    setup_tx(&mut d, tx_ring, 1);
    assert!(d.take_tx().is_empty());
    assert_eq!(d.counters().dma_errors, 3);
    let mut b = [0u8; 16];
    d.memory().read(tx_ring, &mut b).unwrap();
    assert_ne!(TxData::decode(&b).olinfo_status & tx_olinfo::DD, 0);
}

fn setup_tx(d: &mut Ixgbe82599<VecMemory>, ring: u64, tail: u32) {
    d.mmio_write(u64::from(tdbal(0)), ring as u32);
    d.mmio_write(u64::from(tdlen(0)), ENTRIES * 16);
    d.mmio_write(u64::from(txdctl(0)), XDCTL_ENABLE);
    d.mmio_write(u64::from(DMATXCTL), DMATXCTL_TE);
    d.mmio_write(u64::from(tdt(0)), tail);
}

#[test]
fn transmit_inserts_checksums_from_the_context() {
    let mut d = device();
    let good = udp([1, 2, 3, 4], [5, 6, 7, 8], 1111, 2222, b"offload me");
    let mut f = good.clone();
    f[24..26].fill(0); // IP checksum: the device inserts it (IXSM)
    let pseudo = pseudo_header_for(&f).unwrap();
    f[40..42].copy_from_slice(&pseudo.to_be_bytes()); // UDP: pseudo-header sum (TXSM)
    let ring = BASE + 0x10000;
    let data_at = buf(0, 0);
    d.memory().write(data_at, &f).unwrap();
    let ctx = TxContext {
        vlan_macip_lens: (14 << MACLEN_SHIFT) | 20,
        type_tucmd_mlhl: tx_cmd::DTYP_CTXT | tx_cmd::DEXT | tx_tucmd::IPV4 | tx_tucmd::L4T_UDP,
        mss_l4len_idx: 1 << tx_olinfo::IDX_SHIFT,
        ..TxContext::default()
    };
    // A packet in two data descriptors (header, payload) after its context.
    let split = 30;
    let olinfo = (f.len() as u32) << tx_olinfo::PAYLEN_SHIFT
        | tx_olinfo::CC
        | (1 << tx_olinfo::IDX_SHIFT)
        | tx_olinfo::IXSM
        | tx_olinfo::TXSM;
    let first = TxData {
        addr: data_at,
        cmd_type_len: tx_cmd::DTYP_DATA | tx_cmd::DEXT | split as u32,
        olinfo_status: olinfo,
    };
    let second = TxData {
        addr: data_at + split as u64,
        cmd_type_len: tx_cmd::DTYP_DATA
            | tx_cmd::DEXT
            | tx_cmd::EOP
            | tx_cmd::RS
            | (f.len() - split) as u32,
        olinfo_status: 0,
    };
    for (i, desc) in [ctx.encode(), first.encode(), second.encode()]
        .iter()
        .enumerate()
    {
        d.memory().write(ring + 16 * i as u64, desc).unwrap();
    }
    d.mmio_write(u64::from(ivar(0)), (IVAR_VALID | 1) << 8); // TX queue 0 -> vector 1
    d.mmio_write(u64::from(EIMS), 0b10);
    setup_tx(&mut d, ring, 3);
    assert_eq!(d.take_tx(), vec![good]);
    assert_eq!(d.mmio_read(u64::from(tdh(0))), 3);
    assert_eq!(d.pending_interrupts(), 0b10);
    let mut b = [0u8; 16];
    d.memory().read(ring + 32, &mut b).unwrap();
    assert_ne!(TxData::decode(&b).olinfo_status & tx_olinfo::DD, 0);
    assert_eq!(d.mmio_read(u64::from(GPTC)), 1);
    assert_eq!(d.mmio_read(u64::from(GOTCL)), f.len() as u32 + 4);
    assert_eq!(d.mmio_read(u64::from(GOTCH)), 0);
    assert_eq!(d.mmio_read(u64::from(GOTCL)), 0, "cleared by the high half");
}

#[test]
fn flow_director_steers_a_port_before_rss() {
    let mut d = device();
    for q in 0..4 {
        rx_queue(&mut d, q);
    }
    program_rss(&mut d, 4);
    use ferrix_ixgbe_regs::fdir::*;
    d.mmio_write(u64::from(FDIRSIP4M), u32::MAX);
    d.mmio_write(u64::from(FDIRDIP4M), u32::MAX);
    d.mmio_write(u64::from(FDIRUDPM), 0x0000_ffff); // compare the destination port only
    d.mmio_write(u64::from(FDIRM), FDIRM_IGNORE_VLAN_POOL_FLEX);
    d.mmio_write(
        u64::from(FDIRCTRL),
        FDIRCTRL_PBALLOC_64K | FDIRCTRL_PERFECT_MATCH,
    );
    assert_ne!(d.mmio_read(u64::from(FDIRCTRL)) & FDIRCTRL_INIT_DONE, 0);
    d.mmio_write(u64::from(FDIRPORT), 7777 << 16);
    d.mmio_write(
        u64::from(FDIRHASH),
        FDIRHASH_VALID | (5 << FDIRHASH_SWINDEX_SHIFT),
    );
    let add = FDIRCMD_ADD_FLOW | FDIRCMD_L4TYPE_UDP | FDIRCMD_QUEUE_EN | (3 << 16);
    d.mmio_write(u64::from(FDIRCMD), add);
    assert_eq!(d.mmio_read(u64::from(FDIRCMD)) & FDIRCMD_CMD_MASK, 0);
    assert_eq!(d.mmio_read(u64::from(FDIRFREE)), PERFECT_FILTERS_64K - 1);
    let mut seen = [0; 4];
    for i in 0..6u16 {
        let f = udp([9, 9, 9, i as u8], [10, 0, 0, 1], 4000 + i, 7777, b"steer");
        assert_eq!(d.inject_rx(&f), RxOutcome::Delivered { queue: 3 });
        let wb = rx_wb(&mut d, 3, seen[3]);
        seen[3] += 1;
        assert_ne!(wb.status_error & rx_status::FLM, 0);
        assert_eq!(wb.rss_hash, 5, "the filter id");
    }
    assert_eq!(d.mmio_read(u64::from(FDIRMATCH)), 6);
    // Remove it: RSS decides again.
    d.mmio_write(u64::from(FDIRCMD), FDIRCMD_REMOVE_FLOW | FDIRCMD_L4TYPE_UDP);
    let f = udp([9, 9, 9, 0], [10, 0, 0, 1], 4000, 7777, b"steer");
    let (v, n) = ferrix_abi::rss::flow_input(&f).unwrap();
    let want = (toeplitz(&MICROSOFT_RSS_KEY, &v[..n]) % 128) as usize % 4;
    assert_eq!(d.inject_rx(&f), RxOutcome::Delivered { queue: want });
    assert_eq!(d.mmio_read(u64::from(FDIRUSTAT)), 1 | (1 << 16));
    assert_eq!(d.mmio_read(u64::from(FDIRMISS)), 1);
}

#[test]
fn rx_interrupts_follow_ivar_and_the_mask() {
    let mut d = device();
    rx_queue(&mut d, 1);
    d.mmio_write(u64::from(ivar(0)), (IVAR_VALID | 4) << 16); // RX queue 1 -> vector 4
    let f = udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"");
    d.mmio_write(u64::from(ral(1)), 0); // (a second RAR entry unused)
    d.mmio_write(u64::from(MRQC), 0);
    // Without RSS everything goes to queue 0, which is disabled here.
    assert_eq!(d.inject_rx(&f), RxOutcome::QueueUnusable { queue: 0 });
    program_rss(&mut d, 1);
    for i in 0..32 {
        d.mmio_write(u64::from(reta(i)), 0x0101_0101);
    }
    assert_eq!(d.inject_rx(&f), RxOutcome::Delivered { queue: 1 });
    assert_eq!(d.pending_interrupts(), 0, "masked");
    d.mmio_write(u64::from(EIMS), 1 << 4);
    assert_eq!(d.pending_interrupts(), 1 << 4);
    d.mmio_write(u64::from(EICR), 1 << 4);
    assert_eq!(d.pending_interrupts(), 0, "write 1 clears");
    d.mmio_write(u64::from(EICS), 1 << 4);
    d.mmio_write(u64::from(EIMC), 1 << 4);
    assert_eq!(d.pending_interrupts(), 0);
    assert_eq!(d.mmio_read(u64::from(EICR)), 1 << 4);
}
