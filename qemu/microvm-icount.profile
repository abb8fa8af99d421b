# microvm under TCG with -icount shift=0: the virtual clock, and with it the guest TSC,
# advances by one per guest instruction, so TSC differences are instruction counts:
# deterministic, unlike wall time on a noisy machine. Used by `ferrix bench boot`.
# The accelerator is always TCG here (icount does not exist under KVM): --accel is ignored.
-M microvm,pit=on,pic=on,rtc=on,acpi=off
# Devices are announced on the kernel command line (virtio_mmio.device=...), not in ACPI,
# and virtio-mmio speaks the modern (version 2) interface.
-global virtio-mmio.force-legacy=false
-accel tcg
-icount shift=0,sleep=off
-cpu max
-smp {cpus}
-m {mem}
-nodefaults -no-user-config
-display none
-serial stdio
-no-reboot
-kernel {kernel}
-append {cmdline}
-device isa-debug-exit,iobase=0xf4,iosize=0x04
