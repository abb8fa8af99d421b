# Network fragment for `--net stream-listen:PATH`: one end of a two-VM L2 link over a unix
# stream socket (start this VM first; the other uses stream-connect with the same PATH).
-netdev stream,id=net0,server=on,addr.type=unix,addr.path={path}
