# The disk on machines without PCI (microvm): virtio-blk over virtio-mmio on a raw image,
# host page cache on, so the guest's flush (VIRTIO_BLK_T_FLUSH) is what makes writes durable.
-drive file={disk},format=raw,if=none,id=disk0,cache=writeback
-device virtio-blk-device,drive=disk0
