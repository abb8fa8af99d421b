# The NIC on PCI machines (q35): virtio-net-pci, multi-queue (one MSI-X vector per queue,
# plus config and control), RSS with `--rss` as on microvm.
-device virtio-net-pci,netdev=net0,mac={mac},mq=on,rss={rss},vectors={vectors}
