# `--pcap FILE` under QEMU: every frame on net0, both directions, in pcap format.
-object filter-dump,id=dump0,netdev=net0,file={pcap}
