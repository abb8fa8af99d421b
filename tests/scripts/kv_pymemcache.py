"""pymemcache (a memcached client nobody here wrote) against the kv guest: kv_pymemcache.py HOST PORT.

Prints "pymemcache: ok N checks" and exits 0, or raises (exit 1) on the first wrong answer.
"""
import sys

from pymemcache.client.base import Client

host, port = sys.argv[1], int(sys.argv[2])
c = Client((host, port), connect_timeout=10, timeout=10)
checks = 0


def check(ok, what):
    global checks
    if not ok:
        raise SystemExit("pymemcache: " + what)
    checks += 1


check(c.set("py:a", b"alpha", noreply=False), "set")
check(c.get("py:a") == b"alpha", "get")
check(c.add("py:a", b"again", noreply=False) is False, "add on an existing key")
check(c.replace("py:a", b"beta", noreply=False), "replace")
check(c.append("py:a", b"+", noreply=False), "append")
check(c.prepend("py:a", b"-", noreply=False), "prepend")
check(c.get("py:a") == b"-beta+", "after append/prepend")
value, cas = c.gets("py:a")
check(value == b"-beta+" and cas is not None, "gets")
check(c.cas("py:a", b"gamma", cas, noreply=False), "cas with the current id")
check(c.cas("py:a", b"delta", cas, noreply=False) is False, "cas with a stale id")
check(c.set("py:n", b"10", noreply=False), "set n")
check(c.incr("py:n", 5) == 15, "incr")
check(c.decr("py:n", 20) == 0, "decr floors at 0")
# memcached shortens a decremented number in place, padding with spaces ("15" -> "0 ").
many = c.get_many(["py:a", "py:n", "py:none"])
check(many == {"py:a": b"gamma", "py:n": b"0 "}, "get_many: %r" % many)
check(c.touch("py:a", 100, noreply=False), "touch")
check(c.delete("py:a", noreply=False), "delete")
check(c.get("py:a") is None, "get after delete")
big = bytes(range(256)) * 2000  # 512,000 bytes, binary-safe
check(c.set("py:big", big, noreply=False), "set 512 kB")
check(c.get("py:big") == big, "get 512 kB")
check(c.version() != b"", "version")
stats = c.stats()
check(b"curr_items" in stats or "curr_items" in stats, "stats has curr_items")
c.close()
print(f"pymemcache: ok {checks} checks")
