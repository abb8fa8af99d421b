#!/usr/bin/env python3
"""Exact guest instruction counts per function from a QEMU TCG exec trace.

QEMU logs each translation block when it is translated (`-d in_asm`: its instructions) and
each time it runs (`-d exec,nochain`: its guest address and symbol). Multiplying gives exact
guest instructions per function, unlike the interrupt-driven sampler (`--profile-hz`), which
never fires while the kernel runs with interrupts off (all of `serve_tcp`).

    tbprof.py LOG N                 instructions per function over the logged window, / N
    tbprof.py LOG N --turn ADDR K   the K-th stretch starting at guest address ADDR (hex,
                                    e.g. the driver's rx_burst): its functions in order

See qemu/README.md ("Exact instruction profiles") for how to record LOG.
"""
import collections
import sys


def blocks(path):
    """Yields (pc, instructions, symbol) for every executed block."""
    size = {}
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("Trace "):
                fields = line.split("[", 1)[1].split("/")
                pc = int(fields[1], 16)
                sym = line.rsplit("]", 1)[1].strip()
                yield pc, size.get(pc, 1), sym
            elif line.startswith("0x"):
                a = int(line.split(":", 1)[0], 16)
                if cur is None:
                    cur, size[a] = a, 0
                size[cur] += 1
            elif line.startswith(("IN:", "---")):
                cur = None


def totals(path, n):
    count, runs = collections.Counter(), collections.Counter()
    total = 0
    for _, k, sym in blocks(path):
        count[sym] += k
        runs[sym] += 1
        total += k
    print(f"{total} instructions, {total / n:.1f} per unit (N = {n})")
    for sym, c in count.most_common(50):
        print(f"{c / n:10.1f} {100 * c / total:5.1f}% {runs[sym] / n:8.1f} blocks  {sym[:120]}")


def turn(path, entry, which):
    seen, at, last, acc = 0, 0, None, 0
    for pc, k, sym in blocks(path):
        if pc == entry:
            seen += 1
            if seen > which + 1:
                break
        if seen != which + 1:
            continue
        at += k
        if sym != last and last is not None:
            print(f"{at - k:7d} {acc:6d}  {last[:110]}")
            acc = 0
        last = sym
        acc += k
    if last is not None:
        print(f"{at:7d} {acc:6d}  {last[:110]}")


def main(argv):
    if len(argv) == 3:
        totals(argv[1], int(argv[2]))
    elif len(argv) == 6 and argv[3] == "--turn":
        turn(argv[1], int(argv[4], 16), int(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
