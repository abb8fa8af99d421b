# The PC machine (q35 chipset, SeaBIOS, PCI): slower to boot than microvm, but it has PCI for
# virtio-net-pci and friends. Format: see README.md in this directory.
-M q35
-accel {accel}
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
