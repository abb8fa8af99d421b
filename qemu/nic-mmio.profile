# The NIC on machines without PCI (microvm): virtio-net over virtio-mmio, multi-queue.
-device virtio-net-device,netdev=net0,mac={mac},mq=on
