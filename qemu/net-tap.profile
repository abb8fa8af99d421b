# Network fragment for `--net tap:NAME`: an existing or new TAP device, one queue per vCPU
# (multi-queue TAP); QEMU runs no ifup/ifdown scripts.
-netdev tap,id=net0,ifname={ifname},script=no,downscript=no,queues={queues}
