//! Device-level tests without KVM: the test driver sets the device up over real guest
//! memory, and frames go through socketpair, switch and pcap backends.

use std::time::{Duration, Instant};

use super::device::NetIo;
use super::header::*;
use super::pcap::PcapSink;
use super::rss::{MICROSOFT_RSS_KEY, Steering};
use super::switch::Switch;
use super::test_driver::*;
use super::worker::Worker;
use crate::hypercall::GuestMem;
use crate::virtio::STATUS_DEVICE_NEEDS_RESET;
use crate::virtio::mmio::*;
use crate::virtio::queue::{VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

const ALL: u64 = u64::MAX;

fn io_pair() -> (NetIo, std::os::unix::net::UnixDatagram) {
    let (b, peer) = PairBackend::new();
    (
        NetIo {
            backend: Box::new(b),
            pcap: None,
        },
        peer,
    )
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(len, 0x5a);
    f
}

/// Ethernet + IPv4 + UDP to `dst` MAC.
fn udp(dst: [u8; 6], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 9, 0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 8, 0, 0]);
    f
}

#[test]
fn registers_identify_the_device() {
    let drv = TestDriver::new(device_config(4));
    assert_eq!(drv.r(REG_MAGIC_VALUE), 0x7472_6976);
    assert_eq!(drv.r(REG_VERSION), 2);
    assert_eq!(drv.r(REG_DEVICE_ID), 1);
    assert_eq!(drv.r(REG_VENDOR_ID), 0x5852_5246);
    drv.w(REG_DEVICE_FEATURES_SEL, 0);
    let lo = drv.r(REG_DEVICE_FEATURES);
    drv.w(REG_DEVICE_FEATURES_SEL, 1);
    assert_eq!(drv.r(REG_DEVICE_FEATURES), 1, "VERSION_1");
    let want = (1 << VIRTIO_NET_F_MAC)
        | (1 << VIRTIO_NET_F_STATUS)
        | (1 << VIRTIO_NET_F_CTRL_VQ)
        | (1 << VIRTIO_NET_F_MQ);
    assert_eq!(lo, want, "no offloads, no indirect, no event idx");
    let mut cfg = [0u8; 10];
    drv.dev.mmio_read(REG_CONFIG, &mut cfg);
    assert_eq!(cfg, [0x52, 0x54, 0, 0, 0, 4, 1, 0, 4, 0]);
    let mut b = [0u8; 2];
    drv.dev.mmio_read(REG_CONFIG + 8, &mut b);
    assert_eq!(u16::from_le_bytes(b), 4);
    assert_eq!(drv.dev.num_queues(), 9);
    // Notifications of any width reach the queue's eventfd.
    drv.dev.mmio_write(REG_QUEUE_NOTIFY, &3u16.to_le_bytes());
    drv.w(REG_QUEUE_NOTIFY, 8);
    assert_eq!(drv.dev.kicks()[3].read().unwrap(), 1);
    assert_eq!(drv.dev.kicks()[8].read().unwrap(), 1);
    assert!(
        drv.dev.kicks()[1].read().is_err(),
        "no notification pending"
    );
    assert_eq!(drv.dev.ctrl_queue(), Some(8));
    let one = TestDriver::new(device_config(1));
    one.w(REG_DEVICE_FEATURES_SEL, 0);
    assert_eq!(one.r(REG_DEVICE_FEATURES) & (1 << VIRTIO_NET_F_MQ), 0);
    assert_eq!(one.dev.num_queues(), 2);
}

#[test]
fn tx_reaches_backend_and_rx_reaches_ring() {
    let mut drv = TestDriver::new(device_config(1));
    let (mut io, peer) = io_pair();
    drv.init(ALL);
    let f = frame([0xff; 6], drv.dev.mac(), 60);
    drv.send(1, &f);
    drv.dev.process_queue(1, &mut io);
    let mut buf = [0u8; 2048];
    let n = peer.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &f[..]);
    assert_eq!(drv.used(1).len(), 1);
    assert_eq!(drv.irq.count(), 1);
    assert_eq!(drv.r(REG_INTERRUPT_STATUS), 1);
    drv.w(REG_INTERRUPT_ACK, 1);
    assert_eq!(drv.r(REG_INTERRUPT_STATUS), 0);

    drv.post_rx(0, 1526);
    let g = frame(drv.dev.mac(), [2, 0, 0, 0, 0, 1], 100);
    drv.dev.receive(&g, &mut io);
    let got = drv.received(0);
    assert_eq!(got, vec![(rx_header().to_vec(), g.clone())]);
    assert_eq!(drv.irq.count(), 2);
    // No buffer left: dropped and counted.
    drv.dev.receive(&g, &mut io);
    let st = drv.dev.stats();
    assert_eq!(st.drops.rx_no_buffer, 1);
    assert_eq!((st.rx_frames(), st.tx_frames()), (1, 1));
    assert_eq!(st.queues[1].bytes, 60);
    assert!(!st.broken);
}

#[test]
fn rx_too_big_keeps_the_buffer() {
    let mut drv = TestDriver::new(device_config(1));
    let (mut io, _peer) = io_pair();
    drv.init(ALL);
    drv.post_rx(0, 100);
    drv.dev.receive(&frame([0xff; 6], [2; 6], 89), &mut io);
    assert_eq!(drv.dev.stats().drops.rx_too_big, 1);
    let small = frame([0xff; 6], [2; 6], 88);
    drv.dev.receive(&small, &mut io);
    assert_eq!(drv.received(0)[0].1, small);
}

#[test]
fn not_ready_and_no_interrupt_flag() {
    let mut drv = TestDriver::new(device_config(1));
    let (mut io, peer) = io_pair();
    drv.dev.receive(&frame([0xff; 6], [2; 6], 60), &mut io);
    assert_eq!(drv.dev.stats().drops.rx_not_ready, 1);
    drv.init(ALL);
    // The driver suppresses TX interrupts.
    let avail = 0x10_0000 + 0x4000 + 0x1000;
    assert!(
        drv.mem
            .write(avail, &VIRTQ_AVAIL_F_NO_INTERRUPT.to_le_bytes())
    );
    drv.send(1, &frame([0xff; 6], [2; 6], 60));
    drv.dev.process_queue(1, &mut io);
    assert!(peer.recv(&mut [0u8; 100]).is_ok());
    assert_eq!(drv.irq.count(), 0);
}

#[test]
fn ctrl_queue_sets_pairs() {
    let mut drv = TestDriver::new(device_config(4));
    let (mut io, _peer) = io_pair();
    drv.init(ALL);
    for (cmd, ack, pairs) in [
        (
            vec![VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 3, 0],
            0,
            3,
        ),
        (
            vec![VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 0, 0],
            1,
            3,
        ),
        (
            vec![VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 5, 0],
            1,
            3,
        ),
        (vec![0, 0, 1], 1, 3), // VIRTIO_NET_CTRL_RX: unknown here
        (
            vec![VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 4, 0],
            0,
            4,
        ),
    ] {
        let at = drv.post_ctrl(8, &cmd);
        drv.dev.process_queue(8, &mut io);
        assert_eq!(drv.byte(at), ack, "{cmd:?}");
        assert_eq!(drv.used(8)[0].1, 1);
        assert_eq!(drv.dev.stats().active_pairs, pairs);
    }
    // Reset returns to one pair.
    drv.w(REG_STATUS, 0);
    assert_eq!(drv.dev.stats().active_pairs, 1);
    // Without MQ negotiated the command is refused.
    let mut drv = TestDriver::new(device_config(4));
    drv.init(ALL & !(1 << VIRTIO_NET_F_MQ));
    let at = drv.post_ctrl(8, &[4, 0, 2, 0]);
    drv.dev.process_queue(8, &mut io);
    assert_eq!(drv.byte(at), VIRTIO_NET_ERR);
}

/// Two UDP flows that differ only in ports and hash to different pairs out of `pairs`.
fn two_flows(pairs: u16, mac: [u8; 6]) -> (Vec<u8>, Vec<u8>, u16, u16) {
    let s = Steering::new(MICROSOFT_RSS_KEY.to_vec(), pairs);
    let a = udp(mac, 5000, 7);
    let pa = s.pair_for(&a);
    for port in 5001..6000 {
        let b = udp(mac, port, 7);
        let pb = s.pair_for(&b);
        if pb != pa {
            return (a, b, pa, pb);
        }
    }
    panic!("no second flow found");
}

#[test]
fn rss_spreads_flows_over_queues() {
    let mut drv = TestDriver::new(device_config(4));
    let (mut io, _peer) = io_pair();
    drv.init(ALL);
    let at = drv.post_ctrl(
        8,
        &[VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 4, 0],
    );
    drv.dev.process_queue(8, &mut io);
    assert_eq!(drv.byte(at), VIRTIO_NET_OK);
    for q in 0..4 {
        drv.post_rx(2 * q, 1526);
        drv.post_rx(2 * q, 1526);
    }
    let (a, b, pa, pb) = two_flows(4, drv.dev.mac());
    drv.dev.receive(&a, &mut io);
    drv.dev.receive(&b, &mut io);
    assert_eq!(
        drv.received(2 * usize::from(pa)),
        vec![(rx_header().to_vec(), a)]
    );
    assert_eq!(
        drv.received(2 * usize::from(pb)),
        vec![(rx_header().to_vec(), b)]
    );
    // Non-IPv4 goes to queue 0.
    let arp = frame([0xff; 6], [2; 6], 60);
    drv.dev.receive(&arp, &mut io);
    assert_eq!(drv.received(0).len(), 1);
    // Before VQ_PAIRS_SET everything lands on queue 0.
    let mut one = TestDriver::new(device_config(4));
    one.init(ALL);
    one.post_rx(0, 1526);
    one.post_rx(0, 1526);
    let (a, b, _, _) = two_flows(4, one.dev.mac());
    one.dev.receive(&a, &mut io);
    one.dev.receive(&b, &mut io);
    assert_eq!(one.received(0).len(), 2);
}

fn assert_broken(drv: &TestDriver) {
    assert_ne!(drv.r(REG_STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    assert_ne!(
        drv.r(REG_INTERRUPT_STATUS) & 2,
        0,
        "config change interrupt"
    );
    let st = drv.dev.stats();
    assert!(st.broken && st.broken_events >= 1, "{st:?}");
}

#[test]
fn bad_tx_address_breaks_the_device_until_reset() {
    let mut drv = TestDriver::new(device_config(1));
    let (mut io, peer) = io_pair();
    drv.init(ALL);
    drv.put_desc(1, 0, RAM - 8, 64, 0, 0);
    drv.publish(1, 0);
    drv.dev.process_queue(1, &mut io);
    assert_broken(&drv);
    assert!(drv.irq.count() >= 1);
    // Broken: nothing is processed any more.
    drv.send(1, &frame([0xff; 6], [2; 6], 60));
    drv.dev.process_queue(1, &mut io);
    assert!(peer.recv(&mut [0u8; 100]).is_err());
    // A reset clears the state; the device works again.
    drv.init(ALL);
    assert_eq!(drv.r(REG_STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    drv.send(1, &frame([0xff; 6], [2; 6], 60));
    drv.dev.process_queue(1, &mut io);
    assert!(peer.recv(&mut [0u8; 100]).is_ok());
    assert!(!drv.dev.stats().broken);
}

#[test]
fn rx_loop_and_read_only_buffers_break_the_device() {
    let mut drv = TestDriver::new(device_config(1));
    let (mut io, _peer) = io_pair();
    drv.init(ALL);
    let w = VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT;
    drv.put_desc(0, 0, 0x180_0000, 1000, w, 1);
    drv.put_desc(0, 1, 0x180_1000, 1000, w, 0);
    drv.publish(0, 0);
    drv.dev.receive(&frame([0xff; 6], [2; 6], 60), &mut io);
    assert_broken(&drv);
    assert!(drv.dev.stats().broken_reason.unwrap().contains("loop"));

    drv.init(ALL);
    drv.put_desc(0, 0, 0x180_0000, 2000, 0, 0);
    drv.publish(0, 0);
    drv.dev.receive(&frame([0xff; 6], [2; 6], 60), &mut io);
    assert_broken(&drv);
    assert!(drv.dev.stats().broken_reason.unwrap().contains("read-only"));

    drv.init(ALL);
    drv.put_desc(
        0,
        0,
        0x180_0000,
        2000,
        VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
        99,
    );
    drv.publish(0, 0);
    drv.dev.receive(&frame([0xff; 6], [2; 6], 60), &mut io);
    assert_broken(&drv);
    assert_eq!(drv.dev.stats().broken_events, 3);
}

#[test]
fn bad_ring_layout_breaks_the_device() {
    let drv = TestDriver::new(device_config(1));
    drv.w(REG_STATUS, 1 | 2);
    drv.setup_queue(0, 16, RAM - 16, 0x1000, 0x2000);
    assert_broken(&drv);
}

#[test]
fn pcap_captures_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.pcap");
    let mut drv = TestDriver::new(device_config(1));
    let (b, peer) = PairBackend::new();
    let mut io = NetIo {
        backend: Box::new(b),
        pcap: Some(PcapSink::create(&path).unwrap()),
    };
    drv.init(ALL);
    let tx = frame([0xff; 6], drv.dev.mac(), 60);
    drv.send(1, &tx);
    drv.dev.process_queue(1, &mut io);
    drv.post_rx(0, 1526);
    let rx = frame(drv.dev.mac(), [2, 0, 0, 0, 0, 1], 70);
    drv.dev.receive(&rx, &mut io);
    drop(io);
    drop(peer);
    let file = std::fs::File::open(&path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(file).unwrap();
    assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut got = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert!(p.timestamp > Duration::from_secs(1_600_000_000));
        assert_eq!(p.orig_len as usize, p.data.len());
        got.push(p.data.into_owned());
    }
    assert_eq!(got, vec![tx, rx]);
    match std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
        }
        Err(_) => eprintln!("skipping the tshark check: tshark is not installed"),
    }
}

/// Delivers every frame pending on `io`'s backend to `drv`.
fn pump(drv: &TestDriver, io: &mut NetIo) {
    let mut buf = vec![0u8; 65536];
    while let Some(n) = io.backend.recv(&mut buf).unwrap() {
        drv.dev.receive(&buf[..n], io);
    }
}

#[test]
fn switch_connects_two_devices() {
    let dir = tempfile::tempdir().unwrap();
    let sw = dir.path().join("segment");
    let mut cfg_a = device_config(1);
    cfg_a.mac = [0x52, 0x54, 0, 0, 0, 0xa];
    let mut cfg_b = device_config(1);
    cfg_b.mac = [0x52, 0x54, 0, 0, 0, 0xb];
    let cfg_c = device_config(1);
    let (mut a, mut b, mut c) = (
        TestDriver::new(cfg_a),
        TestDriver::new(cfg_b),
        TestDriver::new(cfg_c),
    );
    let open = || NetIo {
        backend: Box::new(Switch::open(&sw).unwrap()),
        pcap: None,
    };
    let (mut ia, mut ib, mut ic) = (open(), open(), open());
    for d in [&mut a, &mut b, &mut c] {
        d.init(ALL);
        for _ in 0..4 {
            d.post_rx(0, 1526);
        }
    }
    // A broadcasts: B and C receive it.
    let hello = frame([0xff; 6], a.dev.mac(), 60);
    a.send(1, &hello);
    a.dev.process_queue(1, &mut ia);
    pump(&b, &mut ib);
    pump(&c, &mut ic);
    assert_eq!(b.received(0)[0].1, hello);
    assert_eq!(c.received(0).len(), 1);
    // B answers A by unicast: B learned A, so C sees nothing.
    let reply = frame(a.dev.mac(), b.dev.mac(), 60);
    b.send(1, &reply);
    b.dev.process_queue(1, &mut ib);
    pump(&a, &mut ia);
    pump(&c, &mut ic);
    assert_eq!(a.received(0)[0].1, reply);
    assert!(c.received(0).is_empty());
    assert_eq!(c.dev.stats().drops.rx_not_for_us, 0);
    // Unknown unicast is flooded, and filtered by the port that is not addressed.
    let unknown = frame([0x52, 0x54, 0, 9, 9, 9], a.dev.mac(), 60);
    a.send(1, &unknown);
    a.dev.process_queue(1, &mut ia);
    pump(&c, &mut ic);
    assert_eq!(c.dev.stats().drops.rx_not_for_us, 1);
}

#[test]
fn worker_thread_serves_notifications_and_backend() {
    let mut drv = TestDriver::new(device_config(1));
    let (io, peer) = io_pair();
    drv.init(ALL);
    drv.post_rx(0, 1526);
    let worker = Worker::spawn(drv.dev.clone(), io).unwrap();
    let f = frame([0xff; 6], drv.dev.mac(), 60);
    drv.send(1, &f); // QueueNotify write -> eventfd -> device thread
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    let n = peer.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &f[..]);
    let g = frame(drv.dev.mac(), [2, 0, 0, 0, 0, 1], 64);
    peer.send(&g).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        got = drv.received(0);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got, vec![(rx_header().to_vec(), g)]);
    assert!(worker.stop().is_some());
}
