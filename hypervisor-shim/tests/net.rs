//! The virtio-net device under KVM: hand-assembled guests read its registers through MMIO
//! exits and transmit a frame through a split ring notified by ioeventfd; the frame reaches
//! a switch peer and the statistics come back through `run_with_stats`. Needs /dev/kvm.

mod common;

use std::time::Duration;

use common::{Asm, Console, DATA, LOAD, elf, kvm_available, segment, temp_file};
use ferrix_abi::PORT_EXIT;
use ferrix_shim::net::backend::Backend;
use ferrix_shim::net::switch::Switch;
use ferrix_shim::{NetBackend, NetConfig, ShimError, VmConfig, VmOutcome, run_with_stats};

const MMIO: u32 = 0xd000_0000;

fn config(name: &str, seg: &[u8], net: NetConfig) -> VmConfig {
    let mut cfg = VmConfig::new(temp_file(name, &elf(seg, true)));
    cfg.mem_bytes = 32 << 20;
    cfg.timeout = Some(Duration::from_secs(30));
    cfg.net = Some(net);
    cfg
}

fn switch_net(dir: &std::path::Path) -> NetConfig {
    let mut n = NetConfig::new(NetBackend::Switch(dir.to_path_buf()));
    n.mac = Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    n
}

#[test]
fn guest_reads_magic_and_config_through_mmio() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Exit code = MagicValue, then a second VM exits with config bytes 2..6 of the MAC.
    let code = Asm::default()
        .load_eax(MMIO)
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let cfg = config("mmio-magic", &segment(code, &[]), switch_net(dir.path()));
    let (r, stats) = run_with_stats(&cfg, Box::new(Console::default())).unwrap();
    let _ = std::fs::remove_file(&cfg.image);
    assert_eq!(r, VmOutcome::Exited(0x7472_6976));
    assert!(!stats.unwrap().broken);

    let code = Asm::default()
        .load_eax(MMIO + 0x102)
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let cfg = config("mmio-mac", &segment(code, &[]), switch_net(dir.path()));
    let (r, _) = run_with_stats(&cfg, Box::new(Console::default())).unwrap();
    let _ = std::fs::remove_file(&cfg.image);
    assert_eq!(r, VmOutcome::Exited(0x5634_1200));
    // The switch socket is removed at exit.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `mov eax, [addr]; cmp eax, v; jne <back to the mov>`
fn wait_eq(mut a: Asm, addr: u32, v: u32) -> Asm {
    a = a.load_eax(addr);
    a.0.push(0x3d);
    a.0.extend_from_slice(&v.to_le_bytes());
    a.0.extend_from_slice(&[0x75, (-12i8) as u8]);
    a
}

#[test]
fn guest_transmits_a_frame_to_a_switch_peer() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Switch::open(dir.path()).unwrap();
    let (desc, avail, used) = (0x20_0000u32, 0x20_1000u32, 0x20_2000u32);
    let buf = LOAD + DATA + 0x100;
    let mut frame = vec![0xffu8; 6];
    frame.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x88, 0xb5]);
    frame.resize(60, 0x5a);
    let mut packet = vec![0u8; 12];
    packet.extend_from_slice(&frame);
    let r = |off: u32| MMIO + off;
    let code = Asm::default()
        .store(r(0x070), 3) // ACKNOWLEDGE | DRIVER
        .store(r(0x024), 1) // DriverFeaturesSel = 1
        .store(r(0x020), 1) // VIRTIO_F_VERSION_1
        .store(r(0x070), 11) // | FEATURES_OK
        .store(r(0x030), 1) // QueueSel = transmitq0
        .store(r(0x038), 16)
        .store(r(0x080), desc)
        .store(r(0x090), avail)
        .store(r(0x0a0), used)
        .store(r(0x044), 1) // QueueReady
        .store(r(0x070), 15) // | DRIVER_OK
        .store(desc, buf) // desc[0].addr
        .store(desc + 8, packet.len() as u32) // len; flags = next = 0
        .store(avail, 1 << 16) // flags 0, idx 1, ring[0] = 0
        .store(r(0x050), 1); // QueueNotify(1): absorbed by the ioeventfd
    let code = wait_eq(code, used, 1 << 16)
        .load_eax(r(0x060)) // InterruptStatus
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let cfg = config(
        "net-tx",
        &segment(code, &[(0x100, packet)]),
        switch_net(dir.path()),
    );
    let (r, stats) = run_with_stats(&cfg, Box::new(Console::default())).unwrap();
    let _ = std::fs::remove_file(&cfg.image);
    assert_eq!(r, VmOutcome::Exited(1), "used-buffer interrupt pending");
    let stats = stats.unwrap();
    assert_eq!(stats.queues[1].frames, 1, "{stats}");
    assert!(stats.interrupts >= 1 && !stats.broken, "{stats}");
    let mut b = [0u8; 2048];
    let n = peer
        .recv(&mut b)
        .unwrap()
        .expect("the peer got the broadcast");
    assert_eq!(&b[..n], &frame[..]);
}

#[test]
fn guest_receives_a_frame_from_a_switch_peer() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (desc, avail, used, buf) = (0x21_0000u32, 0x21_1000u32, 0x21_2000u32, 0x22_0000u32);
    let r = |off: u32| MMIO + off;
    let code = Asm::default()
        .store(r(0x070), 3)
        .store(r(0x024), 1)
        .store(r(0x020), 1)
        .store(r(0x070), 11)
        .store(r(0x030), 0) // QueueSel = receiveq0
        .store(r(0x038), 16)
        .store(r(0x080), desc)
        .store(r(0x090), avail)
        .store(r(0x0a0), used)
        .store(r(0x044), 1)
        .store(desc, buf)
        .store(desc + 8, 1526)
        .store(desc + 12, 2) // VIRTQ_DESC_F_WRITE
        .store(avail, 1 << 16)
        .store(r(0x070), 15); // DRIVER_OK: frames are delivered from now on
    let code = wait_eq(code, used, 1 << 16)
        .load_eax(buf + 12 + 14) // the first payload dword after the header
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let cfg = config("net-rx", &segment(code, &[]), switch_net(dir.path()));
    // The peer floods a broadcast every few ms until the VM has exited.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let mut peer = Switch::open(dir.path()).unwrap();
        std::thread::spawn(move || {
            let mut f = vec![0xffu8; 6];
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
            f.extend_from_slice(&0xcafe_f00du32.to_le_bytes());
            f.resize(60, 0);
            for _ in 0..3000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let _ = peer.send(&f);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let res = run_with_stats(&cfg, Box::new(Console::default()));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sender.join().unwrap();
    let _ = std::fs::remove_file(&cfg.image);
    let (r, stats) = res.unwrap();
    assert_eq!(r, VmOutcome::Exited(0xcafe_f00d));
    let stats = stats.unwrap();
    assert!(
        stats.queues[0].frames >= 1 && stats.interrupts >= 1,
        "{stats}"
    );
}

#[test]
fn bad_net_configuration_fails_before_kvm() {
    let mut cfg = VmConfig::new("/nonexistent.elf");
    cfg.net = Some(NetConfig::new(NetBackend::Switch(
        "/proc/ferrix-no/sw".into(),
    )));
    // The image is checked first.
    assert!(matches!(
        run_with_stats(&cfg, Box::new(Console::default())),
        Err(ShimError::ImageNotFound { .. })
    ));
    let mut net = NetConfig::new(NetBackend::Tap("t".into()));
    net.queues = Some(17);
    cfg.net = Some(net);
    let e = run_with_stats(&cfg, Box::new(Console::default())).unwrap_err();
    assert!(matches!(e, ShimError::BadQueueCount { .. }), "{e}");
    assert_eq!(e.exit_code(), 5);
    let mut net = NetConfig::new(NetBackend::Tap("t".into()));
    net.rss_key = Some(vec![1, 2, 3]);
    cfg.net = Some(net);
    let e = run_with_stats(&cfg, Box::new(Console::default())).unwrap_err();
    assert!(matches!(e, ShimError::BadRssKey { len: 3 }), "{e}");
}
