#!/usr/bin/env python3
"""The headline table of scripts/bench-tracker.sh: each tracker's medians and its ratio against
the base tracker (the first directory), with webswarm's goals (issue 3) checked.

  ratios.py BASE_DIR [OTHER_DIR...]      directories written by run.sh (suite.sh: SUITE_OUT/NAME)

Rates: higher is better, ratio = other / base. p99 latency: lower is better, ratio = other / base,
goal is an absolute bound. RSS per peer: the settled RSS growth from PEERS to PEERS_BIG divided by
the peers added (without a big phase: from start to PEERS, marked "(0→N)").
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summarize import group, load, med, rss_per_peer, scenario_stats  # noqa: E402

# (label, phase, scenario, metric, goal, goal kind)
ROWS = [
    ("HTTP announce, keep-alive", "main", "http-ka-pin", "rate", 2.0, "ratio>="),
    ("HTTP announce, Connection: close", "main", "http-close-pin", "rate", 1.1, "ratio>="),
    ("HTTP scrape (1 hash)", "main", "http-scrape-pin", "rate", 3.0, "ratio>="),
    ("UDP announce", "main", "udp-pin", "rate", None, ""),
    ("HTTP announce, keep-alive, p99 ms", "main", "http-ka-pin", "p99", 5.0, "abs<="),
    ("HTTP close, p99 ms", "main", "http-close-pin", "p99", 5.0, "abs<="),
    ("HTTP scrape, p99 ms", "main", "http-scrape-pin", "p99", 5.0, "abs<="),
    ("UDP announce, p99 ms", "main", "udp-pin", "p99", None, ""),
    ("HTTP announce, keep-alive (big)", "big", "http-ka-pin", "rate", 2.0, "ratio>="),
    ("HTTP keep-alive p99 ms (big)", "big", "http-ka-pin", "p99", 5.0, "abs<="),
    ("UDP announce (big)", "big", "udp-pin", "rate", None, ""),
    # CPU time the tracker spent per request: much less disturbed by other load on the machine
    # than the rates (which need the CPU to be free), so a check on them when the host is busy.
    ("tracker CPU µs/req, keep-alive", "main", "http-ka-pin", "cpu", None, ""),
    ("tracker CPU µs/req, close", "main", "http-close-pin", "cpu", None, ""),
    ("tracker CPU µs/req, scrape", "main", "http-scrape-pin", "cpu", None, ""),
    ("tracker CPU µs/req, UDP", "main", "udp-pin", "cpu", None, ""),
    # A shared store's own CPU (a redis-server pinned to the other core), for targets with one.
    ("store CPU µs/req, keep-alive", "main", "http-ka-pin", "store", None, ""),
    ("store CPU µs/req, keep-alive (big)", "big", "http-ka-pin", "store", None, ""),
]


def stats_of(d):
    name, rows, rss, _ = load(d)
    by = {}
    for (phase, pop, sc), rs in group(rows).items():
        by[(phase, sc)] = (int(pop), scenario_stats(rs))
    return name, by, rss


def value(st, metric):
    if metric == "rate":
        return med(st["rates"])
    if metric == "cpu":
        return st["cpu_us"]
    if metric == "store":
        return st["store_us"]
    return st["p99"] / 1000.0  # µs -> ms


def fmt(v, metric):
    if v is None or v != v:
        return "-"
    return f"{v:,.0f}" if metric == "rate" else f"{v:.1f}" if metric in ("cpu", "store") else f"{v:.2f}"


def bytes_per_peer(rss):
    per = rss_per_peer(rss)
    big = [(k, v) for k, v in per.items() if not k.startswith("0→")]
    if big:
        return big[0][1], big[0][0]
    small = list(per.items())
    if small:
        return small[0][1], small[0][0]
    return float("nan"), "-"


def main():
    dirs = sys.argv[1:]
    if not dirs:
        print(__doc__)
        sys.exit(2)
    data = [stats_of(d) for d in dirs]
    base = data[0][0]
    names = [d[0] for d in data]
    head = "| metric | peers | " + " | ".join(names) + " | " + " | ".join(f"{n}/{base}" for n in names[1:]) + " | goal | met |"
    print(head)
    print("|---|---:|" + "---:|" * len(names) + "---:|" * (len(names) - 1) + "---|---|")
    bad = 0
    for label, phase, sc, metric, goal, kind in ROWS:
        cells, pop = [], None
        vals = []
        for _, by, _ in data:
            if (phase, sc) in by:
                pop, st = by[(phase, sc)]
                vals.append(value(st, metric))
            else:
                vals.append(None)
        if all(v is None for v in vals):
            continue
        cells = [fmt(v, metric) for v in vals]
        ratios = []
        for v in vals[1:]:
            if v is None or vals[0] is None or vals[0] == 0:
                ratios.append("-")
            else:
                ratios.append(f"{v / vals[0]:.2f}×")
        met = ""
        if goal is not None and len(vals) > 1 and vals[-1] is not None:
            if kind == "ratio>=" and vals[0]:
                ok = vals[-1] / vals[0] >= goal
                met = "yes" if ok else "NO"
                gtxt = f"≥ {goal}×"
            elif kind == "abs<=":
                ok = vals[-1] <= goal
                met = "yes" if ok else "NO"
                gtxt = f"≤ {goal} ms"
            bad += met == "NO"
        else:
            gtxt = {"ratio>=": f"≥ {goal}×", "abs<=": f"≤ {goal} ms"}.get(kind, "")
        print(f"| {label} | {pop:,} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {gtxt} | {met} |")
    bpp = [bytes_per_peer(rss) for _, _, rss in data]
    span = next((s for _, s in bpp if s != "-"), "-")
    cells = [f"{v:.1f}" if v == v else "-" for v, _ in bpp]
    ratios = [f"{v / bpp[0][0]:.2f}×" if bpp[0][0] == bpp[0][0] and bpp[0][0] > 0 and v == v else "-" for v, _ in bpp[1:]]
    met = ""
    if len(bpp) > 1 and bpp[-1][0] == bpp[-1][0]:
        met = "yes" if bpp[-1][0] <= 40 else "NO"
        bad += met == "NO"
    print(f"| RSS bytes per peer ({span}) | | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | ≤ 40 | {met} |")
    print()
    print("ratio = tracker / " + base + " (rates: higher is better; p99, CPU and bytes: lower is better); "
          "'met' judges the last tracker. Medians over RUNS rounds; one core pinned per tracker.")
    others = [st["others"] for _, by, _ in data for _, st in by.values() if st["others"] == st["others"]]
    if others and max(others) > 0.3:
        print(f"WARNING: other programs used up to {max(others):.2f} cores during the measurements "
              "(column 'max other-load cores' in compare.md): figures are depressed and noisy; "
              "ratios hold only as far as that load hit both trackers alike.")
    if bad:
        print(f"goals missed: {bad}")


if __name__ == "__main__":
    main()
