# The NIC on machines without PCI (microvm): virtio-net over virtio-mmio, multi-queue; RSS
# (QEMU hashes each flow with the key and table the guest driver configures) with `--rss`.
-device virtio-net-device,netdev=net0,mac={mac},mq=on,rss={rss}
