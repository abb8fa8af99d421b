# Live statistics records (`ferrix run --stats-live`, `--stats-json`): the guest writes them to
# port 0xe9 (ferrix_abi::stats::QEMU_STATS_PORT), an isa-debugcon of their own, never mixed
# with the console; the chardev connects to the unix socket `ferrix` listens on ({stats}).
-chardev socket,id=fxstats,path={stats}
-device isa-debugcon,iobase=0xe9,chardev=fxstats
