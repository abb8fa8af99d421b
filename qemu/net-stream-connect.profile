# Network fragment for `--net stream-connect:PATH`: the other end of a stream-listen link.
-netdev stream,id=net0,server=off,addr.type=unix,addr.path={path}
