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
        &["nic=slirp", "filter=nic_arp"],
        Duration::from_secs(120),
        |o| {
            o.net = Some(NetSpec::User(vec![]));
        },
    );
    b.expect("virtio-net (mmio")
        .expect("link up")
        .expect("test nic_arp_to_slirp_gateway ... ok")
        .expect("1 passed, 0 failed")
        .expect_exit(0);
}
