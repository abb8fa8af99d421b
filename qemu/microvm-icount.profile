# microvm under TCG with -icount shift=0: the virtual clock, and with it the guest TSC,
# advances by one per guest instruction, so TSC differences are instruction counts:
# deterministic, unlike wall time on a noisy machine. Used by `ferrix bench boot`.
# The accelerator is always TCG here (icount does not exist under KVM): --accel is ignored.
-M microvm,pit=on,pic=on,rtc=on
-accel tcg
-icount shift=0
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
