# The NIC on PCI machines (q35): virtio-net-pci, multi-queue (one MSI-X vector per queue,
# plus config and control), with RSS as on microvm.
-device virtio-net-pci,netdev=net0,mac={mac},mq=on,rss=on,vectors={vectors}
