//! The NIC path with QEMU's user network (no root, nothing leaves the machine): the guest's
//! virtio-net driver sends an ARP request to slirp's gateway and receives its reply.

use ferrix_cli::Vmm;
use ferrix_cli::netspec::NetSpec;
use ferrix_tests::boot_with;
use std::time::Duration;

#[test]
fn virtio_net_mmio_arp_roundtrip_with_slirp() {
    let b = boot_with(
        "ktest",
        Vmm::Qemu,
        2,
        &["arp=10.0.2.15,10.0.2.2", "filter=nic_arp"],
        Duration::from_secs(120),
        |o| {
            o.net = Some(NetSpec::User(vec![]));
        },
    );
    b.expect("virtio-net (mmio")
        .expect("link up")
        .expect("test nic_arp_roundtrip ... ok")
        .expect("1 passed, 0 failed")
        .expect_exit(0);
}

/// The `ferrix` command built for the tests (tests/src/bin/ferrix-in-test.rs).
const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// Boots ktest inside a fresh namespace with a multi-queue TAP device whose host side is
/// 10.77.0.1/24, and checks the guest (10.77.0.2) gets Linux's ARP reply.
fn arp_through_tap(vmm: &str, profile: &str, cpus: u32, want_pairs: u32) {
    if let Some(why) = ferrix_tests::netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let image = ferrix_tests::image("ktest");
    let ns = ferrix_tests::netns::NetNs::create();
    ns.tap("ft0", "10.77.0.1/24");
    let cpus_s = cpus.to_string();
    let out = ns
        .command(&[
            FERRIX,
            "run",
            image.to_str().unwrap(),
            "--vmm",
            vmm,
            "--cpus",
            &cpus_s,
            "--net",
            "tap:ft0",
            "--profile",
            profile,
            "--timeout",
            "120",
            "--",
            "arp=10.77.0.2,10.77.0.1",
            "filter=nic_arp",
        ])
        .output()
        .expect("run ferrix");
    let console = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{console}\n{err}",
        out.status
    );
    assert!(
        console.contains(&format!("queue pairs {want_pairs}")),
        "{console}"
    );
    assert!(
        console.contains("test nic_arp_roundtrip ... ok"),
        "{console}"
    );
}

#[test]
fn virtio_net_multiqueue_tap_under_qemu() {
    arp_through_tap("qemu", "microvm", 4, 4);
}

#[test]
fn virtio_net_pci_multiqueue_tap_under_qemu_q35() {
    arp_through_tap("qemu", "q35", 2, 2);
}

#[test]
fn virtio_net_pci_arp_roundtrip_with_slirp() {
    let b = boot_with(
        "ktest",
        Vmm::Qemu,
        1,
        &["arp=10.0.2.15,10.0.2.2", "filter=nic_arp"],
        Duration::from_secs(120),
        |o| {
            o.net = Some(NetSpec::User(vec![]));
            o.profile = Some("q35".into());
        },
    );
    b.expect("virtio-net (pci 00:")
        .expect("test nic_arp_roundtrip ... ok")
        .expect_exit(0);
}
