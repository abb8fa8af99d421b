# The NIC on machines without PCI (microvm): virtio-net over virtio-mmio, multi-queue, with
# RSS (QEMU hashes each flow with the key and table the guest driver configures).
-device virtio-net-device,netdev=net0,mac={mac},mq=on,rss=on
