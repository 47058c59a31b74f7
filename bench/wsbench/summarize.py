#!/usr/bin/env python3
"""The table of scripts/bench-ws.sh: medians over the rounds of each tracker's wsload output,
ratios against the first (bittorrent-tracker), and the issue's goals checked.

    summarize.py [--peers-asked N] BASE.txt OTHER.txt...

Each file holds wsload's lines ("WSLOAD name=… ready …" then "WSLOAD name=… round=N rate=R …").
Rounds with rate=0 are the "max" scenario (closed loop: throughput, CPU); rounds with a rate are
the "rate" scenario (paced: the latency at that offered load), which the p99 goal is checked on
when the run has it.
A tracker whose core was not busy while the load generator's was is marked load-bound: its
announces/s is then what the load generator could drive, and announces per tracker CPU-second
(its capacity on one core, from /proc) is the fairer comparison; both are printed.
"""
import argparse
import statistics
import sys

GOAL_RATIO = 5.0       # × bittorrent-tracker's announces/s with offers relayed
GOAL_P99_MS = 10.0
GOAL_RSS_PER_PEER = 4096  # bytes of tracker RSS per connected WebSocket peer
GOAL_PEERS = 50000
BUSY = 0.9             # a core counts as saturated above this share of the wall time


def parse(path):
    """Returns (ready, rounds): the ready line's fields and each round's, as dicts."""
    ready, rounds = None, []
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words or words[0] != "WSLOAD":
                continue
            kv = {}
            for w in words[1:]:
                k, sep, v = w.partition("=")
                kv[k] = v if sep else True
            if "ready" in kv:
                ready = kv
            elif "round" in kv:
                rounds.append(kv)
    return ready, rounds


def num(kv, key):
    try:
        return float(kv.get(key, "nan"))
    except ValueError:
        return float("nan")


def count(kv, key):
    """An event count of a line; 0 when the line lacks it."""
    v = num(kv, key)
    return int(v) if v == v else 0


def summary(path):
    ready, rounds = parse(path)
    if ready is None:
        return None
    name = ready.get("name", path)
    # RSS per peer: after the settle time when wsload waited one (the steady state of idle
    # connected peers), else right after the last connection.
    rss_per_peer = num(ready, "rss_settled_per_peer_b")
    if rss_per_peer != rss_per_peer:
        rss_per_peer = num(ready, "rss_per_peer_b")
    s = {"name": name, "peers": int(num(ready, "connected")), "rss_per_peer": rss_per_peer,
         "rss_per_peer_now": num(ready, "rss_per_peer_b"),
         "rss_kb": num(ready, "rss_kb"), "connects_per_s": num(ready, "connects_per_s"), "rounds": len(rounds)}

    paced = [r for r in rounds if num(r, "rate") > 0]
    closed = [r for r in rounds if not num(r, "rate") > 0]

    def med(f, rs=closed):
        vals = [f(r) for r in rs]
        vals = [v for v in vals if v == v]  # drop NaN
        return statistics.median(vals) if vals else float("nan")

    s["ann"] = med(lambda r: num(r, "announces_per_s"))
    s["relayed"] = med(lambda r: num(r, "offers_relayed_per_s"))
    s["answers"] = med(lambda r: num(r, "answers_matched") / num(r, "wall_s"))
    s["p50"] = med(lambda r: num(r, "p50_ms"))
    s["p99"] = med(lambda r: num(r, "p99_ms"))
    s["ans_p99"] = med(lambda r: num(r, "answer_p99_ms"))
    s["trk_util"] = med(lambda r: num(r, "tracker_cpu_s") / num(r, "wall_s"))
    s["load_util"] = med(lambda r: num(r, "load_cpu_s") / num(r, "wall_s"))
    s["ann_per_cpu"] = med(lambda r: num(r, "announces") / num(r, "tracker_cpu_s") if num(r, "tracker_cpu_s") > 0 else float("nan"))
    s["rate"] = med(lambda r: num(r, "rate"), paced)
    s["rate_got"] = med(lambda r: num(r, "announces_per_s"), paced)
    s["rate_p50"] = med(lambda r: num(r, "p50_ms"), paced)
    s["rate_p99"] = med(lambda r: num(r, "p99_ms"), paced)
    s["missed"] = sum(count(r, "missed") for r in paced)
    s["errors"] = sum(count(r, k) for r in rounds for k in ("failures", "timeouts", "write_errors", "closed"))
    s["load_bound"] = s["trk_util"] < BUSY and s["load_util"] >= BUSY
    # Neither core busy in a closed loop: other programs on the machine took the time.
    s["starved"] = s["trk_util"] < BUSY and s["load_util"] < BUSY
    return s


def fmt(v, digits=0):
    if v != v:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return "–" if not b or a != a or b != b else f"{a / b:.2f}×"


def table(sums, peers_asked):
    base = sums[0]
    out = ["| tracker | peers | announces/s | offers relayed/s | answers delivered/s | p50 / p99 ms | offer→answer p99 ms "
           "| tracker CPU | load CPU | announces per tracker CPU-s | paced: announces/s | paced: p50 / p99 ms | RSS/peer settled (at once) | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sums:
        out.append("| {} | {} | {}{} | {} | {} | {} / {} | {} | {:.0%} | {:.0%} | {} | {} of {}{} | {} / {} | {} B ({} B) | {} |".format(
            s["name"], fmt(s["peers"]), fmt(s["ann"]), " (load-bound)" if s["load_bound"] else " (starved)" if s["starved"] else "", fmt(s["relayed"]),
            fmt(s["answers"]), fmt(s["p50"], 2), fmt(s["p99"], 2), fmt(s["ans_p99"], 2), s["trk_util"], s["load_util"],
            fmt(s["ann_per_cpu"]), fmt(s["rate_got"]), fmt(s["rate"]), f" ({s['missed']:,} missed)" if s["missed"] else "",
            fmt(s["rate_p50"], 2), fmt(s["rate_p99"], 2), fmt(s["rss_per_peer"]), fmt(s["rss_per_peer_now"]), s["errors"]))
    out.append("")
    for s in sums[1:]:
        out.append(f"### {s['name']} against {base['name']}")
        r = s["ann"] / base["ann"] if base["ann"] else float("nan")
        rc = s["ann_per_cpu"] / base["ann_per_cpu"] if base["ann_per_cpu"] else float("nan")
        ok = "met" if r >= GOAL_RATIO else "NOT met"
        note = ""
        if s["load_bound"]:
            ok = "not measurable here (load-bound)" if r < GOAL_RATIO else ok
            note = (f" The load generator's core was saturated and {s['name']}'s was not: the rate is the load"
                    f" generator's ceiling; per tracker CPU-second the ratio is {ratio(s['ann_per_cpu'], base['ann_per_cpu'])}"
                    f" ({'≥' if rc >= GOAL_RATIO else '<'} {GOAL_RATIO:g}×).")
        if s["starved"] or base["starved"]:
            note += (" Neither a tracker's core nor its load generator's was saturated: other programs"
                     " on the machine took the time, so the rates are theirs to share; announces per tracker"
                     " CPU-second is the figure to compare.")
        out.append(f"- announces/s with offers relayed: {ratio(s['ann'], base['ann'])} (goal ≥ {GOAL_RATIO:g}×: {ok}).{note}")
        out.append(f"- announces per tracker CPU-second: {ratio(s['ann_per_cpu'], base['ann_per_cpu'])}")
        if s["rate"] == s["rate"]:
            p99, bp99, at = s["rate_p99"], base["rate_p99"], f" at {fmt(s['rate'])} announces/s"
            if s["missed"]:
                at += f", {s['missed']:,} paced starts missed (every announcer was waiting: the tracker or the load generator fell behind)"
        else:
            p99, bp99, at = s["p99"], base["p99"], " in the closed loop (its latency is the queue)"
        out.append(f"- p99 announce→reply {fmt(p99, 2)} ms{at} (goal ≤ {GOAL_P99_MS:g} ms: "
                   f"{'met' if p99 <= GOAL_P99_MS else 'NOT met'}); {base['name']} {fmt(bp99, 2)} ms")
        at = "" if s["peers"] >= GOAL_PEERS else f", measured at {s['peers']:,} peers, not {GOAL_PEERS:,}"
        out.append(f"- RSS per connected peer {fmt(s['rss_per_peer'])} B (goal ≤ {GOAL_RSS_PER_PEER} B: "
                   f"{'met' if s['rss_per_peer'] <= GOAL_RSS_PER_PEER else 'NOT met'}{at}); "
                   f"{base['name']} {fmt(base['rss_per_peer'])} B ({ratio(base['rss_per_peer'], s['rss_per_peer'])} of it)")
        out.append("")
    if peers_asked and sums[0]["peers"] < peers_asked:
        out.append(f"Note: {peers_asked:,} peers were asked for; the file descriptor limit allowed {sums[0]['peers']:,}.")
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers-asked", type=int, default=0)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    sums = []
    for f in a.files:
        s = summary(f)
        if s is None:
            print(f"summarize.py: {f}: no ready line (its peers never connected)", file=sys.stderr)
            continue
        sums.append(s)
    if not sums:
        return 1
    print(table(sums, a.peers_asked))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
