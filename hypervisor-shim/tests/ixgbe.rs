//! The emulated 82599 under KVM: hand-assembled guests find it through the PCI configuration
//! ports, read its MAC through BAR0 MMIO exits, and transmit a frame from an advanced TX
//! descriptor to a switch peer. Needs /dev/kvm.

mod common;

use std::time::Duration;

use common::{Asm, Console, DATA, LOAD, elf, kvm_available, segment, temp_file};
use ferrix_abi::PORT_EXIT;
use ferrix_ixgbe_regs::desc::{TxData, tx_cmd, tx_olinfo};
use ferrix_ixgbe_regs::*;
use ferrix_shim::ixgbe::BAR0_BASE;
use ferrix_shim::net::NicModel;
use ferrix_shim::net::backend::Backend;
use ferrix_shim::net::switch::Switch;
use ferrix_shim::{NetBackend, NetConfig, VmConfig, VmOutcome, run_with_stats};

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x82, 0x59, 0x01];

fn config(name: &str, seg: &[u8], dir: &std::path::Path) -> VmConfig {
    let mut cfg = VmConfig::new(temp_file(name, &elf(seg, true)));
    cfg.mem_bytes = 32 << 20;
    cfg.timeout = Some(Duration::from_secs(30));
    let mut net = NetConfig::new(NetBackend::Switch(dir.to_path_buf()));
    net.model = NicModel::Ixgbe;
    net.mac = Some(MAC);
    cfg.net = Some(net);
    cfg
}

/// Selects configuration dword `reg` of 00:02.0.
fn select(a: Asm, reg: u32) -> Asm {
    a.out_port(0xcf8, 0x8000_0000 | (2 << 11) | reg)
}

fn exit_with_eax(a: Asm) -> Asm {
    a.mov_edx(u32::from(PORT_EXIT)).out().hang()
}

fn run(name: &str, seg: &[u8], dir: &std::path::Path) -> VmOutcome {
    let cfg = config(name, seg, dir);
    let (r, _) = run_with_stats(&cfg, Box::new(Console::default())).unwrap();
    let _ = std::fs::remove_file(&cfg.image);
    r
}

#[test]
fn guest_finds_the_82599_and_reads_its_mac() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = select(Asm::default(), 0).mov_edx(0xcfc).inp();
    let r = run("ixgbe-id", &segment(exit_with_eax(code), &[]), dir.path());
    assert_eq!(r, VmOutcome::Exited(0x10fb_8086));
    // Memory decoding on, then RAL(0): the MAC's first four bytes.
    let code = select(Asm::default(), 4)
        .out_port(0xcfc, 0x6)
        .load_eax(BAR0_BASE as u32 + ral(0));
    let r = run("ixgbe-mac", &segment(exit_with_eax(code), &[]), dir.path());
    assert_eq!(
        r,
        VmOutcome::Exited(u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]))
    );
}

#[test]
fn guest_transmits_a_frame_through_the_82599() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Switch::open(dir.path()).unwrap();
    let ring = 0x20_0000u32;
    let buf = LOAD + DATA + 0x100;
    let mut frame = vec![0xffu8; 6];
    frame.extend_from_slice(&MAC);
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.resize(60, 0x82);
    let d = TxData {
        addr: u64::from(buf),
        cmd_type_len: tx_cmd::DTYP_DATA
            | tx_cmd::DEXT
            | tx_cmd::EOP
            | tx_cmd::IFCS
            | tx_cmd::RS
            | frame.len() as u32,
        olinfo_status: (frame.len() as u32) << tx_olinfo::PAYLEN_SHIFT,
    }
    .encode();
    let word = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
    let r = |off: u32| BAR0_BASE as u32 + off;
    let code = select(Asm::default(), 4)
        .out_port(0xcfc, 0x6)
        .store(ring, word(0))
        .store(ring + 4, word(4))
        .store(ring + 8, word(8))
        .store(ring + 12, word(12))
        .store(r(tdbal(0)), ring)
        .store(r(tdlen(0)), 128)
        .store(r(DMATXCTL), DMATXCTL_TE)
        .store(r(txdctl(0)), XDCTL_ENABLE)
        .store(r(tdt(0)), 1) // the doorbell: the shim transmits on this exit
        .load_eax(ring + 12); // the written-back status
    let r = run(
        "ixgbe-tx",
        &segment(exit_with_eax(code), &[(0x100, frame.clone())]),
        dir.path(),
    );
    assert_eq!(
        r,
        VmOutcome::Exited(word(12) | tx_olinfo::DD),
        "DD written back"
    );
    let mut b = [0u8; 2048];
    let n = peer.recv(&mut b).unwrap().expect("the peer got the frame");
    assert_eq!(&b[..n], &frame[..]);
}
