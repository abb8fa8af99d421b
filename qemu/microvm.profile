# ferrix default QEMU machine: microvm, PVH boot of the image with -kernel.
# Format: see README.md in this directory.
#
# pit/pic/rtc are on so the kernel has the legacy timers to calibrate against (QEMU 7.2's
# microvm defaults them to "auto", which means off when the in-kernel irqchip is used).
-M microvm,pit=on,pic=on,rtc=on,acpi=off
# Devices are announced on the kernel command line (virtio_mmio.device=...), not in ACPI,
# and virtio-mmio speaks the modern (version 2) interface.
-global virtio-mmio.force-legacy=false
-accel {accel}
-cpu max
-smp {cpus}
-m {mem}
-nodefaults -no-user-config
-display none
-serial stdio
# A guest reset (triple fault) ends QEMU with status 0 instead of rebooting forever.
-no-reboot
-kernel {kernel}
-append {cmdline}
# Writing V to port 0xf4 exits QEMU with status (V << 1) | 1.
-device isa-debug-exit,iobase=0xf4,iosize=0x04
