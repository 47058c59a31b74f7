#!/usr/bin/python3
"""Sums a CPU profile's flat time by component: where seedctl's data-channel path spends it.

    go tool pprof -top -nodecount=100000 -nodefraction=0 BINARY PROFILE | python3 pprofgroup.py

Reads `go tool pprof -top` output on stdin and prints, largest first, each component's share of
all samples (flat time: a function's own, so the shares add up to 100 %). Stdlib only.
"""
import sys

# (component, function name prefixes), first match wins.
COMPONENTS = (
    ("pion SCTP (association, chunks, timers)", ("github.com/pion/sctp",)),
    ("SCTP checksum (CRC32c)", ("hash/crc32",)),
    ("pion DTLS (records)", ("github.com/pion/dtls",)),
    ("AES-GCM (DTLS encryption)", ("crypto/",)),
    ("pion ICE, STUN and UDP mux", ("github.com/pion/ice", "github.com/pion/stun", "github.com/pion/transport")),
    ("pion WebRTC and data channels", ("github.com/pion/",)),
    ("webswarm (wire, session, storage, rtc)", ("github.com/webswarm/",)),
    ("system calls", ("internal/runtime/syscall", "syscall.", "golang.org/x/sys")),
    ("Go runtime (scheduler, GC, timers, channels)", ("runtime.", "internal/runtime", "gcWriteBarrier", "aeshash", "expandAVX512",
                                                      "indexbytebody", "memeqbody")),
    ("Go standard library (net, os, sync, time...)", ("net.", "net/", "internal/poll", "os.", "sync.", "sync/",
                                                      "internal/sync", "time.", "sort.", "io.", "bufio.",
                                                      "encoding/", "errors.", "bytes.", "strings.")),
)
OTHER = "other"
NOT_LISTED = "not listed (pprof dropped small nodes: run it with -nodefraction=0)"


def component(name):
    for comp, prefixes in COMPONENTS:
        if name.startswith(prefixes):
            return comp
    return OTHER


def seconds(s):
    """pprof's durations: 1.50s, 120ms, 30us, 1.2mins, 2hrs, and 0."""
    if s == "0":
        return 0.0
    for unit, f in (("mins", 60.0), ("hrs", 3600.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if s.endswith(unit):
            return float(s[:-len(unit)]) * f
    raise ValueError("not a duration: %r" % s)


def parse_top(text):
    """(total seconds, [(flat seconds, function name)]) of `go tool pprof -top` output."""
    total, rows, table = None, [], False
    for line in text.splitlines():
        if "Total samples = " in line:
            total = seconds(line.split("Total samples = ")[1].split()[0])
        elif line.split()[:2] == ["flat", "flat%"]:
            table = True
        elif table and line.strip():
            f = line.split()
            rows.append((seconds(f[0]), " ".join(f[5:])))
    if total is None:
        raise ValueError("no 'Total samples' line: not go tool pprof -top output")
    return total, rows


def group(total, rows):
    """[(component, seconds, percent of total)], largest first."""
    sums = {}
    for flat, name in rows:
        c = component(name)
        sums[c] = sums.get(c, 0.0) + flat
    missing = total - sum(sums.values())
    if missing > 0.005 * total:
        sums[NOT_LISTED] = missing
    out = [(c, s, 100.0 * s / total if total else 0.0) for c, s in sums.items()]
    return sorted(out, key=lambda x: -x[1])


def main():
    total, rows = parse_top(sys.stdin.read())
    print("| component | CPU s | % of samples |")
    print("|---|---:|---:|")
    for c, s, pct in group(total, rows):
        print("| %s | %.2f | %.1f %% |" % (c, s, pct))
    print("| all | %.2f | 100 %% |" % total)


if __name__ == "__main__":
    main()
