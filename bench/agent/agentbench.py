#!/usr/bin/python3
"""Start-up benchmark of seedctl agent beside libtorrent's seed mode (issue #7), one run.

Driven by scripts/bench-agent.sh (which installs python3-libtorrent, builds seedctl and the
tracker, makes the torrents with bench/agent/gen, runs the tracker and cleans up); run it
directly only to debug. Stdlib only, plus bench/seed/seedbench.py's process helpers.

For every size N (torrents made by gen in WORK/nN/torrents, the publish layout, with clean
resume records in WORK/nN/state) and every round, each contender starts once, in an order
that rotates round by round so that load from elsewhere on the machine hits all alike:

  seedctl    `seedctl agent --dir D --state S --metrics 127.0.0.1:P --bind 127.0.0.1 --port 0`
             on a fresh copy of the clean state; ready when its /metrics says
             webswarm_seed_torrents{state="seeding"} == N. Time from exec (Go start-up,
             directory scan, .torrent parsing and resume records all count).
  lt-sync    lt_seedmode.py: one libtorrent session, add_torrent with seed_mode per .torrent;
  lt-async   the same with async_add_torrent. Time from session creation (after
             `import libtorrent`) to every torrent in state seeding, as the script reports
             it; the exec-to-ready time is recorded too.

RSS: seedctl's VmHWM (peak of its whole life) and VmRSS when all are seeding and again HOLD
seconds later; libtorrent's growth of RSS over the process before the session existed (the
interpreter and the module are not libtorrent's session), and its VmHWM. MB = 10^6 bytes.

Results: one JSON line per run in OUT/results.jsonl; the table and the ratios on stdout, in
OUT/summary.md and OUT/summary.jsonl; every process's output in OUT/logs/. Exit status 1 if
any run never reached "all seeding"; targets missed are reported, not an error.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "seed"))
from seedbench import Interrupted, Proc, _interrupt, _kinds, free_port, vm_kb  # noqa: E402

CONTENDERS = ("seedctl", "lt-sync", "lt-async")
TIME_TARGET = 1.0  # seedctl start-up time / libtorrent's (the faster mode): at most this
RSS_LIMIT_MB = 80.0  # the whole agent, 10^6 bytes
MB = 1e6

# family{labels} value [timestamp]
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)(?:\s+\S+)?$')


def samples(text, family):
    """(labels, value) of every sample of family in Prometheus text.

    Only well-formed, finite, whole, non-negative sample values count (every figure read
    here is a count): a malformed line is skipped rather than taken for a figure."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or m.group(1) != family:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        if v != v or v < 0 or v == float("inf") or v != int(v):
            continue
        out.append((dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")), int(v)))
    return out


def parse_states(text):
    """Torrents by state from the agent's /metrics text, {} if the family is absent."""
    return {lb["state"]: v for lb, v in samples(text, "webswarm_seed_torrents") if "state" in lb}


def announces(text, event):
    """The tracker's successful announces of one event (started, stopped) so far."""
    return sum(v for lb, v in samples(text, "webswarm_tracker_announces_total")
               if lb.get("event") == event and lb.get("outcome") == "ok")


def rotate(xs, k):
    """xs turned k places to the left: round k's order."""
    if not xs:
        return []
    k %= len(xs)
    return list(xs[k:]) + list(xs[:k])


def _tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


def _mb(kib):
    return None if kib is None else round(kib * 1024 / MB, 1)


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = os.path.abspath(a.work)
        self.out = os.path.abspath(a.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.pgids = os.path.join(self.work, "pgids")
        self.proc = None  # the contender running now, stopped by close
        self.at_stop = None  # the tracker's announce counts just before the last stop

    def tracker_counts(self):
        """The tracker's successful started and stopped announces so far, None without one."""
        if not self.a.tracker_metrics:
            return None
        try:
            with urllib.request.urlopen(self.a.tracker_metrics, timeout=5) as r:
                text = r.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return None
        return {ev: announces(text, ev) for ev in ("started", "stopped")}

    def close(self):
        if self.proc is not None:
            self.proc.stop(grace=15)
            self.proc = None

    def _start(self, cmd, log):
        self.proc = Proc(cmd, log, self.a.bound, self.pgids)
        return self.proc

    def _stop(self):
        self.at_stop = self.tracker_counts()
        t = time.monotonic()
        rc = self.proc.stop(grace=15)
        self.proc = None
        return rc, round(time.monotonic() - t, 2)

    def run_seedctl(self, n, rnd):
        """One agent start from clean resume records; ready at seeding == n on /metrics."""
        a = self.a
        src = os.path.join(self.work, "n%d" % n)
        state = os.path.join(self.work, "run-state")
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(os.path.join(src, "state"), state)  # the gen's records, untouched
        port = free_port()
        log = os.path.join(self.logs, "seedctl-n%d-r%d.log" % (n, rnd))
        rec = {"who": "seedctl", "n": n, "round": rnd, "ok": False}
        t0 = time.monotonic()
        p = self._start([a.seedctl, "agent", "--dir", os.path.join(src, "torrents"),
                         "--state", state, "--metrics", "127.0.0.1:%d" % port,
                         "--bind", "127.0.0.1", "--port", "0"], log)
        pid = p.child_pid()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        states, polls = {}, 0
        deadline = t0 + a.ready_timeout
        try:
            while time.monotonic() < deadline and p.alive():
                try:
                    # Only the one family (promhttp's name[] filter): the agent still
                    # snapshots every torrent, but encodes and sends a few lines, not ~250 KB.
                    conn.request("GET", "/metrics?name[]=webswarm_seed_torrents")
                    resp = conn.getresponse()
                    body = resp.read().decode("utf-8", "replace")
                    polls += 1
                    if resp.status == 200:
                        states = parse_states(body)
                except (OSError, http.client.HTTPException):
                    conn.close()  # not listening yet, or a dropped keep-alive: reconnect
                if states.get("seeding", 0) >= n:
                    rec["seconds"] = round(time.monotonic() - t0, 3)
                    break
                time.sleep(a.poll)
            rec.update(states=states, polls=polls)
            if "seconds" not in rec:
                rec["why"] = "not all seeding after %.0f s (%s)" % (
                    time.monotonic() - t0, "exited" if not p.alive() else "still running")
            else:
                rec["hwm_mb"] = _mb(vm_kb(pid, "VmHWM"))
                rec["rss_mb"] = _mb(vm_kb(pid, "VmRSS"))
                if self._hold(p):
                    rec["hold_hwm_mb"] = _mb(vm_kb(pid, "VmHWM"))
                    rec["hold_rss_mb"] = _mb(vm_kb(pid, "VmRSS"))
                    rec["ok"] = True
                else:
                    rec["why"] = "exited within %g s of all seeding" % a.hold
        finally:
            conn.close()
            rec["exit"], rec["stop_s"] = self._stop()
            shutil.rmtree(state, ignore_errors=True)
        if not rec["ok"]:
            rec["log_tail"] = _tail(log)
        return rec

    def _hold(self, p):
        """Wait HOLD seconds; False if the process died meanwhile."""
        end = time.monotonic() + self.a.hold
        while time.monotonic() < end:
            if not p.alive():
                return False
            time.sleep(0.1)
        return p.alive()

    def run_lt(self, n, rnd, mode):
        """One libtorrent session in seed mode; its own JSON lines say when and how much."""
        a = self.a
        src = os.path.join(self.work, "n%d" % n)
        who = "lt-" + mode
        log = os.path.join(self.logs, "%s-n%d-r%d.log" % (who, n, rnd))
        rec = {"who": who, "n": n, "round": rnd, "ok": False}
        cmd = [a.python, a.lt_py, os.path.join(src, "torrents"), "--port", "0",
               "--hold", "%g" % a.hold, "--seconds", "%d" % a.bound]
        if mode == "async":
            cmd.append("--async")
        t0 = time.monotonic()
        p = self._start(cmd, log)
        events = {}
        deadline = t0 + a.ready_timeout + a.hold + 5
        def scan():
            for line in _tail(log, 1000):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict) and "event" in ev and ev["event"] not in events:
                    events[ev["event"]] = ev
                    if ev["event"] == "seeding":
                        rec["exec_seconds"] = round(time.monotonic() - t0, 3)

        try:
            while time.monotonic() < deadline:
                alive = p.alive()
                scan()  # after the liveness check: the last lines of a process that just exited count
                if not alive or "hold" in events or "failed" in events:
                    break
                if "seeding" not in events and time.monotonic() > t0 + a.ready_timeout:
                    break
                time.sleep(a.poll)
            base, ready, hold = events.get("base"), events.get("seeding"), events.get("hold")
            if ready:
                rec.update(seconds=ready["seconds"], add_seconds=ready.get("add_seconds"),
                           hwm_mb=_mb(ready["hwm_kib"]), rss_mb=_mb(ready["rss_kib"]),
                           growth_mb=_mb(ready["growth_kib"]), states=ready.get("states"))
            if base:
                rec["base_rss_mb"] = _mb(base["rss_kib"])
            if hold:
                rec.update(hold_hwm_mb=_mb(hold["hwm_kib"]), hold_rss_mb=_mb(hold["rss_kib"]),
                           hold_growth_mb=_mb(hold["growth_kib"]))
            rec["ok"] = bool(ready and hold)
            if not rec["ok"]:
                rec["why"] = json.dumps(events.get("failed")) if "failed" in events else (
                    "not all seeding" if not ready else "exited during the hold")
        finally:
            rec["exit"], rec["stop_s"] = self._stop()
        if not rec["ok"]:
            rec["log_tail"] = _tail(log)
        return rec

    def run(self, rnd, n, who):
        """One contender's run; with the tracker's counts, how many of its torrents announced
        started while it ran and stopped when it was stopped."""
        before = self.tracker_counts()
        self.at_stop = None
        if who == "seedctl":
            rec = self.run_seedctl(n, rnd)
        else:
            rec = self.run_lt(n, rnd, who.split("-", 1)[1])
        after = self.tracker_counts()
        if before and self.at_stop and after:
            rec["announced_started"] = self.at_stop["started"] - before["started"]
            rec["announced_stopped"] = after["stopped"] - self.at_stop["stopped"]
        return rec


def _median(xs, digits=3):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), digits) if xs else None


def summarize(results, sizes, contenders):
    """A row per (size, contender), then per size the time ratio and the RSS limit."""
    out = []
    for n in sizes:
        rows = {}
        for who in contenders:
            runs = [r for r in results if r["n"] == n and r["who"] == who]
            ok = [r for r in runs if r["ok"]]
            row = {"kind": "row", "n": n, "who": who, "runs": len(runs), "ok": len(ok),
                   "seconds": _median(r.get("seconds") for r in ok),
                   "exec_seconds": _median(r.get("exec_seconds", r.get("seconds")) for r in ok),
                   "hwm_mb": _median((r.get("hold_hwm_mb") for r in ok), 1),
                   "rss_mb": _median((r.get("rss_mb") for r in ok), 1),
                   "hold_rss_mb": _median((r.get("hold_rss_mb") for r in ok), 1),
                   "growth_mb": _median((r.get("hold_growth_mb") for r in ok), 1),
                   "started": _median((r.get("announced_started") for r in ok), 0),
                   "stopped": _median((r.get("announced_stopped") for r in ok), 0)}
            rows[who] = row
            out.append(row)
        mine = rows.get("seedctl")
        lts = [rows[w] for w in contenders if w.startswith("lt-") and rows[w]["seconds"]]
        best = min(lts, key=lambda r: r["seconds"]) if lts else None
        rec = {"kind": "ratio", "n": n, "target": TIME_TARGET, "versus": best and best["who"],
               "value": None, "value_exec": None, "rounds": [], "pass": None}
        if mine and best and mine["seconds"]:
            rec["value"] = round(mine["seconds"] / best["seconds"], 3)
            # Both from exec: libtorrent's then carries the interpreter and its import too.
            rec["value_exec"] = round(mine["seconds"] / best["exec_seconds"], 3)
            m = {r["round"]: r["seconds"] for r in results
                 if r["n"] == n and r["who"] == "seedctl" and r["ok"]}
            b = {r["round"]: r["seconds"] for r in results
                 if r["n"] == n and r["who"] == best["who"] and r["ok"]}
            rec["rounds"] = [round(m[k] / b[k], 3) for k in sorted(m) if b.get(k)]
            # A failed agent run fails the target whatever the median of the others says.
            rec["pass"] = mine["ok"] == mine["runs"] and rec["value"] <= TIME_TARGET
        out.append(rec)
        if mine:
            peak = [r.get("hold_hwm_mb") for r in results
                    if r["n"] == n and r["who"] == "seedctl" and r["ok"]]
            peak = max(peak) if peak else None
            out.append({"kind": "limit", "n": n, "value": peak, "limit": RSS_LIMIT_MB,
                        "rss_mb": mine["hold_rss_mb"], "lt_growth_mb": best and best["growth_mb"],
                        "pass": None if peak is None else (
                            mine["ok"] == mine["runs"] and peak <= RSS_LIMIT_MB)})
    return out


def _fmt(v, spec="%.1f"):
    return "–" if v is None else spec % v


def render(summary, meta):
    lines = ["# seedctl agent start-up benchmark, %s" % meta["when"], "",
             "%d round(s), loopback, warm cache, %s; %s" % (
                 meta["rounds"], meta["payload"], meta["versions"]),
             "seconds: seedctl from exec, libtorrent from session creation (exec in brackets); "
             "median over the runs that reached all seeding. MB = 10^6 bytes; HWM = peak RSS "
             "(whole process) %g s after all seeding; lt growth = RSS over the process before "
             "its session existed; announces: started while it ran, stopped when it "
             "was stopped, as the tracker counted them." % meta["hold"], "",
             "| torrents | contender | ok | seconds | RSS at ready MB | RSS +%gs MB | HWM MB "
             "| lt growth MB | announces started/stopped |" % meta["hold"],
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary:
        if r["kind"] != "row":
            continue
        secs = _fmt(r["seconds"], "%.3f")
        if r["who"] != "seedctl" and r["exec_seconds"] is not None:
            secs += " (%.3f)" % r["exec_seconds"]
        lines.append("| %d | %s | %d/%d | %s | %s | %s | %s | %s | %s/%s |" % (
            r["n"], r["who"], r["ok"], r["runs"], secs, _fmt(r["rss_mb"]),
            _fmt(r["hold_rss_mb"]), _fmt(r["hwm_mb"]),
            _fmt(r["growth_mb"]) if r["who"] != "seedctl" else "–",
            _fmt(r["started"], "%d"), _fmt(r["stopped"], "%d")))
    lines.append("")
    for r in summary:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[r.get("pass")]
        if r["kind"] == "ratio":
            rounds = ""
            if len(r["rounds"]) > 1:
                rounds = " (per round %s)" % " ".join("%.2f" % x for x in r["rounds"])
            lines.append("N=%d time: seedctl / %s = %s%s [both from exec: %s]; target <= %.2f: %s" % (
                r["n"], r["versus"] or "libtorrent", _fmt(r["value"], "%.3f"), rounds,
                _fmt(r["value_exec"], "%.3f"), r["target"], verdict))
        elif r["kind"] == "limit":
            lines.append("N=%d RSS: seedctl agent peak %s MB (%s MB after %g s; libtorrent's "
                         "session grew %s MB); limit <= %.0f MB: %s" % (
                             r["n"], _fmt(r["value"]), _fmt(r["rss_mb"]), meta["hold"],
                             _fmt(r["lt_growth_mb"]), r["limit"], verdict))
    for r in meta.get("failures", []):
        lines.append("FAILED %s N=%d round %d: %s" % (r["who"], r["n"], r["round"], r.get("why")))
        lines += ["    " + x for x in r.get("log_tail", [])[-8:]]
    return "\n".join(lines) + "\n"


def _sizes(s):
    try:
        xs = [int(x) for x in s.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError("want comma-separated positive integers: %r" % s)
    if not xs or any(x < 1 for x in xs):
        raise argparse.ArgumentTypeError("want comma-separated positive integers: %r" % s)
    return list(dict.fromkeys(xs))


def _contenders(s):
    xs = _kinds(s, CONTENDERS)
    if not xs:
        raise argparse.ArgumentTypeError("no contender (want some of %s)" % ",".join(CONTENDERS))
    return xs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="holds nN/torrents and nN/state from gen")
    ap.add_argument("--out", required=True, help="results directory")
    ap.add_argument("--sizes", type=_sizes, required=True, help="torrent counts, e.g. 1000,10000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--contenders", type=_contenders, default=list(CONTENDERS))
    ap.add_argument("--seedctl", required=True, help="seedctl binary")
    ap.add_argument("--lt-py", required=True, help="bench/agent/lt_seedmode.py")
    ap.add_argument("--python", default="/usr/bin/python3", help="the python with libtorrent")
    ap.add_argument("--hold", type=float, default=10, help="seconds after all seeding to measure RSS again")
    ap.add_argument("--poll", type=float, default=0.02, help="seconds between readiness polls")
    ap.add_argument("--ready-timeout", type=float, default=300, help="seconds to reach all seeding")
    ap.add_argument("--bound", type=int, default=600, help="timeout(1) of every process, seconds")
    ap.add_argument("--tracker-metrics", default="", help="the tracker's /metrics URL (announce counts)")
    ap.add_argument("--payload", default="", help="what gen made, for the report")
    ap.add_argument("--versions", default="", help="versions, for the report")
    a = ap.parse_args()
    if a.rounds < 1 or a.hold < 0 or not 0 < a.poll <= 1 or a.ready_timeout <= 0:
        ap.error("--rounds >= 1, --hold >= 0, 0 < --poll <= 1, --ready-timeout > 0")
    for n in a.sizes:
        for sub in ("torrents", "state"):
            if not os.path.isdir(os.path.join(a.work, "n%d" % n, sub)):
                ap.error("%s: missing (make it with bench/agent/gen)" % os.path.join(a.work, "n%d" % n, sub))

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    b = Bench(a)
    results = []
    rc = 0
    try:
        with open(os.path.join(b.out, "results.jsonl"), "a") as res:
            for rnd in range(a.rounds):
                for n in a.sizes:
                    for who in rotate(a.contenders, rnd):
                        r = b.run(rnd + 1, n, who)
                        results.append(r)
                        res.write(json.dumps(r) + "\n")
                        res.flush()
                        print("  round %d N=%d %-8s %s" % (
                            rnd + 1, n, who,
                            "%.3f s, RSS %s MB, +%gs %s MB" % (
                                r["seconds"], _fmt(r.get("rss_mb")), a.hold,
                                _fmt(r.get("hold_rss_mb"))) if r["ok"] else "FAILED: %s" % r.get("why")),
                            flush=True)
    except Interrupted as e:
        print("agentbench: interrupted (%s): summary of what finished" % e, file=sys.stderr)
        rc = 130
    finally:
        b.close()
    failures = [r for r in results if not r["ok"]]
    if failures and rc == 0:
        rc = 1
    summary = summarize(results, a.sizes, a.contenders)
    meta = {"when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "rounds": a.rounds,
            "hold": a.hold, "payload": a.payload, "versions": a.versions, "failures": failures}
    text = render(summary, meta)
    with open(os.path.join(b.out, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(b.out, "summary.jsonl"), "w") as f:
        for r in summary:
            f.write(json.dumps(r) + "\n")
    print()
    print(text, end="")
    return rc


if __name__ == "__main__":
    sys.exit(main())
