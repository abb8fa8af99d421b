# Network fragment for `--net user[:udp:HOST:GUEST,...]`: QEMU user-mode networking (slirp),
# no root needed. The guest is 10.0.2.15/24, the gateway 10.0.2.2; forwarded host ports are
# bound to 127.0.0.1 only.
-netdev user,id=net0,net=10.0.2.0/24{hostfwd}
