#!/usr/bin/python3
"""Side-by-side seeding benchmark: seedctl against aria2 and libtorrent on loopback, one run.

Driven by scripts/bench-seed.sh (which installs the clients, builds seedctl and cleans up);
run it directly only to debug. Stdlib only.

Two directions, measured in interleaved rounds so that load from elsewhere on the machine hits
every client alike:

  seed  every SEEDER (aria2, lt, seedctl) -> libtorrent downloader; seedctl-base, another
        seedctl build (--seedctl-base), seeds beside them for an A/B of two builds in one run
  get   aria2 seeder -> every GETTER (lt, seedctl)

aria2 -> lt belongs to both. Every seeder is started once (its payload check is not timed),
each with an in-process tracker of its own (minitracker.py) and a copy of the torrent that
names it, so a downloader meets only the seeder under test. A seeder is ready when its
tracker sees its left=0 announce. Per transfer:

  wall      downloader start -> downloader exit (exit 0: complete, every piece hash-checked)
  ttfb      downloader start -> first payload block on disk
  xfer      first block -> exit (the transfer without start-up, announce and unchoke)
  seed CPU  seeder utime+stime during the transfer (/proc/PID/stat), per GiB
  seed HWM  seeder VmHWM (peak RSS of its whole life, payload check included)
  get CPU/RSS of the downloader (/usr/bin/time -v)

then the download must be byte-identical to the payload (cmp). Results: one JSON line per
transfer in OUT/results.jsonl; the tables, ratios and limits on stdout, in OUT/summary.md and
as JSON lines in OUT/summary.jsonl. Exit status 1 if a seeder never became ready or a
transfer failed; targets missed are reported, not an error.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

from minitracker import Tracker
from opentracker import OpenTracker
from torrentfile import info_hash, retrack, single_file

TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
LOOPBACK = "127.0.0.1"
SEEDERS = ("aria2", "lt", "seedctl", "seedctl-base")
GETTERS = ("lt", "seedctl", "aria2")
# The downloader of the seed direction and the seeder of the get direction (issue #6).
SEED_GETTER = "lt"
GET_SEEDER = "aria2"
# Targets of issue #6.
SEED_TARGET = 1.1  # seedctl seeding / the faster of aria2 and lt seeding
GET_TARGET = 1.0  # seedctl getting / lt getting, both from aria2
RSS_LIMIT_MB = 30.0  # seedctl seeder peak RSS, 10^6 bytes
MIN_PIECE_LOG2, MAX_PIECE_LOG2 = 15, 24  # mktorrent's smallest piece, seedctl make's largest

A2FLAGS = ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
           "--enable-peer-exchange=false", "--disable-ipv6=true", "--interface=" + LOOPBACK,
           "--file-allocation=none", "--console-log-level=warn", "--summary-interval=0",
           "--enable-color=false", "--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=10",
           "--bt-max-peers=0", "--auto-save-interval=0"]


class Interrupted(Exception):
    """SIGTERM or SIGINT: stop every client, then exit."""


def _interrupt(signum, frame):
    # Once is enough: timeout(1) passes a SIGTERM on to its child and then to its whole group,
    # so a second one follows at once and must not cut the clean-up short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def auto_piece_log2(size):
    """seedctl make's automatic rule: the smallest power of two from 16 KiB to 16 MiB that
    cuts the payload into at most 2,000 pieces (so the benchmark uses the torrent a seedctl
    user would publish), but at least 32 KiB, mktorrent's smallest (payloads under 64 MB)."""
    n = MIN_PIECE_LOG2
    while n < MAX_PIECE_LOG2 and -(-size // (1 << n)) > 2000:
        n += 1
    return n


def free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime of the whole thread group
    except (OSError, IndexError, ValueError):
        return None


def vm_kb(pid, field):
    """A memory figure (VmHWM: peak RSS, VmRSS: now) of /proc/PID/status in KiB."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def disk_blocks(root):
    """Allocated 512-byte blocks of every file under root (0 if none yet)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks
            except OSError:
                pass
    return total


def parse_time_v(path):
    """User/system seconds, peak RSS and exit status from /usr/bin/time -v's report."""
    r = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return r
    for line in lines:
        key, _, val = line.strip().rpartition(":")
        try:
            if key == "User time (seconds)":
                r["user"] = float(val)
            elif key == "System time (seconds)":
                r["sys"] = float(val)
            elif key == "Maximum resident set size (kbytes)":
                r["rss_kb"] = int(val)
            elif key == "Exit status":
                r["exit"] = int(val)
        except ValueError:
            pass
    return r


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Proc:
    """A client under `timeout`: bounded even if this driver is killed.

    timeout(1) leads a process group of its own, so the group id is the pid of the process
    we started; it is recorded in pgid_file for scripts/bench-seed.sh's exit trap.
    """

    def __init__(self, cmd, log_path, bound, pgid_file):
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(["timeout", "-k", "5", "%d" % bound] + cmd,
                                  stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        with open(pgid_file, "a") as f:
            f.write("%d\n" % self.p.pid)

    def alive(self):
        return self.p.poll() is None

    def child_pid(self, timeout=5):
        """The client's pid, or None if timeout(1) has no child.

        The client is timeout's child or, under a wrapper that did not exec (a script given
        as SEEDCTL_BIN), the innermost only child: the process whose CPU and memory count.
        """
        end = time.time() + timeout
        while time.time() < end and self.alive():
            kids = _children(self.p.pid)
            if kids:
                pid = kids[0]
                while len(_children(pid)) == 1:
                    pid = _children(pid)[0]
                return pid
            time.sleep(0.02)
        return None

    def stop(self, grace=15):
        """SIGTERM (timeout passes it on: clients announce stopped), then SIGKILL the group."""
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        return self.p.returncode

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = os.path.abspath(a.work)
        self.out = os.path.abspath(a.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.pgids = os.path.join(self.work, "pgids")
        # kind -> proc, pid, url, torrent, port, ready_s; "error" if it never started or died
        self.seeders = {}
        self.trackers = []
        self.getter = None  # the download in progress, stopped by close
        self.results = []

    # --- payload and torrent -------------------------------------------------------------

    def make_payload(self):
        a = self.a
        self.name = "seedbench-%d.bin" % a.size
        pdir = os.path.join(self.work, "payload")
        os.makedirs(pdir)
        self.payload = os.path.join(pdir, self.name)
        with open(self.payload, "wb") as f:
            left = a.size
            while left:
                chunk = os.urandom(min(left, 4 << 20))
                f.write(chunk)
                left -= len(chunk)
            # Written back now, not by the kernel half a minute later in the middle of a transfer;
            # the pages stay cached (warm) for the seeders.
            f.flush()
            os.fsync(f.fileno())
        self.piece_log2 = auto_piece_log2(a.size) if a.piece == "auto" else int(a.piece)
        base = os.path.join(self.work, "base.torrent")
        subprocess.run(["timeout", "600", "mktorrent", "-a", "http://%s:1/announce" % LOOPBACK,
                        "-l", str(self.piece_log2), "-t", "2", "-n", self.name, "-o", base,
                        self.payload], check=True, stdout=subprocess.DEVNULL)
        self.base = open(base, "rb").read()
        name, length = single_file(self.base)
        assert (name, length) == (self.name, a.size), (name, length)

    # --- clients -------------------------------------------------------------------------

    def seeder_cmd(self, kind, torrent, datadir, url, port):
        a = self.a
        if kind == "aria2":
            return ["aria2c", "--dir=" + datadir, "--listen-port=%d" % port] + A2FLAGS + [
                "--bt-exclude-tracker=*", "--bt-tracker=" + url, "--check-integrity=true",
                "--bt-seed-unverified=false", "--seed-ratio=0.0",
                "--seed-time=%d" % (a.budget // 60 + 1), torrent]
        if kind == "lt":
            return ["/usr/bin/python3", a.lt_py, "seed", torrent, datadir, url, "--port", str(port),
                    "--seconds", str(a.budget), "--quiet", "--ip", LOOPBACK]
        if kind in ("seedctl", "seedctl-base"):
            state = os.path.join(self.work, "state-" + kind)
            os.makedirs(state, exist_ok=True)
            binary = a.seedctl if kind == "seedctl" else a.seedctl_base
            return [binary, "seed", torrent, "--data", datadir, "--bind", LOOPBACK,
                    "--minport", str(port), "--maxport", str(port), "--state", state, "--quiet"]
        raise ValueError("unknown seeder %r" % kind)

    def getter_cmd(self, kind, torrent, outdir, url, port, n):
        a = self.a
        if kind == "lt":
            return ["/usr/bin/python3", a.lt_py, "get", torrent, outdir, url, "--port", str(port),
                    "--seconds", str(a.get_timeout), "--quiet", "--ip", a.getter_ip]
        if kind == "aria2":
            return ["aria2c", "--dir=" + outdir, "--listen-port=%d" % port] + A2FLAGS + [
                "--bt-exclude-tracker=*", "--bt-tracker=" + url, "--seed-ratio=0.0",
                "--seed-time=0", torrent]
        if kind == "seedctl":
            state = os.path.join(self.work, "state-get-%d" % n)
            os.makedirs(state, exist_ok=True)
            return [a.seedctl, "get", torrent, "--out", outdir, "--exit-on-complete", "--quiet",
                    "--bind", LOOPBACK, "--minport", str(port), "--maxport", str(port),
                    "--state", state]
        raise ValueError("unknown getter %r" % kind)

    def start_seeder(self, kind):
        a = self.a
        datadir = os.path.join(self.work, "seed-" + kind)
        os.makedirs(datadir)
        # A hard link: every seeder reads the same inode, so the same warm page cache.
        os.link(self.payload, os.path.join(datadir, self.name))
        if a.tracker == "opentracker":
            tr = OpenTracker(bytes.fromhex(info_hash(self.base)), os.path.join(self.work, "ot-" + kind),
                             os.path.join(self.logs, "opentracker-%s.log" % kind), a.budget, self.pgids)
        else:
            tr = Tracker(interval=a.interval, log_path=os.path.join(self.logs, "tracker-%s.jsonl" % kind))
        self.trackers.append(tr.start())
        torrent = os.path.join(self.work, kind + ".torrent")
        with open(torrent, "wb") as f:
            f.write(retrack(self.base, tr.url))
        port = free_port()
        t0 = time.time()
        proc = Proc(self.seeder_cmd(kind, torrent, datadir, tr.url, port),
                    os.path.join(self.logs, "seeder-%s.log" % kind), a.budget, self.pgids)
        ready = tr.wait_seed(port, a.ready_timeout, alive=proc.alive)
        pid = proc.child_pid() if ready else None
        if pid is None:
            if ready:
                why = "no client process under timeout(1)"
            elif not proc.alive():
                why = "exited with status %s before announcing left=0" % proc.p.returncode
            else:
                why = "no left=0 announce within %d s" % a.ready_timeout
            proc.stop()
            self.seeders[kind] = {"error": why}
            print("seeder %-8s FAILED: %s (see %s)" % (kind, why, proc.log.name), flush=True)
            return
        self.seeders[kind] = {"proc": proc, "pid": pid, "url": tr.url, "torrent": torrent,
                              "port": port, "ready_s": round(ready - t0, 2)}
        print("seeder %-8s ready after %.1f s (payload check included), pid %d, port %d" % (
            kind, ready - t0, pid, port), flush=True)

    def wait_quiet(self, pid, timeout=5.0):
        """Wait (bounded) until the seeder is idle, so one transfer's tail (disconnects,
        buffers) does not overlap the next."""
        end = time.time() + timeout
        last = cpu_ticks(pid)
        while time.time() < end and last is not None:
            time.sleep(0.25)
            now = cpu_ticks(pid)
            if now is None or now - last <= max(1, TICK // 40):
                return
            last = now

    # --- one transfer ----------------------------------------------------------------------

    def transfer(self, seeder, getter, rnd, n):
        a = self.a
        s = self.seeders[seeder]
        outdir = os.path.join(self.work, "dl")
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        target = os.path.join(outdir, self.name)
        tv = os.path.join(self.work, "time-%d.txt" % n)
        port = free_port()
        load1 = float(open("/proc/loadavg").read().split()[0])
        spid = s["pid"]
        c0 = cpu_ticks(spid)
        t0 = time.time()
        g = Proc(["/usr/bin/time", "-v", "-o", tv] +
                 self.getter_cmd(getter, s["torrent"], outdir, s["url"], port, n),
                 os.path.join(self.logs, "get-%02d-%s-from-%s.log" % (n, getter, seeder)),
                 a.get_timeout, self.pgids)
        self.getter = g
        tfirst = None
        while g.alive():
            if tfirst is None and disk_blocks(outdir) > 0:
                tfirst = time.time()
            if time.time() - t0 > a.get_timeout + 15:  # timeout(1) itself failed us
                g.kill()
                break
            time.sleep(0.02)
        t1 = time.time()
        c1 = cpu_ticks(spid)
        hwm, rss = vm_kb(spid, "VmHWM"), vm_kb(spid, "VmRSS")
        rc = g.stop()
        self.getter = None
        tvr = parse_time_v(tv)
        size = os.path.getsize(target) if os.path.exists(target) else 0
        same = size == a.size and subprocess.run(
            ["timeout", "300", "cmp", "-s", self.payload, target]).returncode == 0
        shutil.rmtree(outdir, ignore_errors=True)
        shutil.rmtree(os.path.join(self.work, "state-get-%d" % n), ignore_errors=True)
        wall = t1 - t0
        xfer = t1 - tfirst if tfirst else None
        seed_cpu = (c1 - c0) / TICK if c0 is not None and c1 is not None else None
        get_cpu = tvr.get("user", 0) + tvr.get("sys", 0) if "user" in tvr else None
        res = {
            "seeder": seeder, "getter": getter, "round": rnd, "n": n, "bytes": size,
            "ok": rc == 0 and same, "exit": rc, "identical": same,
            "wall_s": round(wall, 3), "mbps_wall": round(size / wall / 1e6, 1) if same else 0.0,
            "ttfb_s": round(tfirst - t0, 3) if tfirst else None,
            "xfer_s": round(xfer, 3) if xfer else None,
            "mbps_xfer": round(size / xfer / 1e6, 1) if same and xfer else None,
            "seed_cpu_s": round(seed_cpu, 2) if seed_cpu is not None else None,
            "seed_cpu_s_per_gib": round(seed_cpu / (a.size / GIB), 2) if seed_cpu is not None else None,
            "seed_hwm_mb": round(hwm * 1024 / 1e6, 1) if hwm else None,
            "seed_rss_mb": round(rss * 1024 / 1e6, 1) if rss else None,
            "get_cpu_s": round(get_cpu, 2) if get_cpu is not None else None,
            "get_cpu_s_per_gib": round(get_cpu / (a.size / GIB), 2) if get_cpu is not None else None,
            "get_rss_mb": round(tvr["rss_kb"] * 1024 / 1e6, 1) if "rss_kb" in tvr else None,
            "load1_before": load1,
        }
        with open(os.path.join(self.out, "results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
        print("round %d %-8s -> %-8s %s %7.1f MB/s wall %7s MB/s xfer  seeder %s CPU s/GiB  HWM %s MB" % (
            rnd, seeder, getter, "ok  " if res["ok"] else "FAIL", res["mbps_wall"],
            res["mbps_xfer"], res["seed_cpu_s_per_gib"], res["seed_hwm_mb"]), flush=True)
        self.results.append(res)
        self.wait_quiet(spid)

    # --- the run ---------------------------------------------------------------------------

    def run(self):
        a = self.a
        self.make_payload()
        need = list(a.seeders)
        if a.getters and GET_SEEDER not in need:
            need.append(GET_SEEDER)
        for kind in need:
            self.start_seeder(kind)
        pairs = transfer_plan(a.seeders, a.getters)
        n = 0
        for rnd in range(1, a.rounds + 1):
            # Rotate the order each round: no client always goes first (or right after another).
            k = (rnd - 1) % len(pairs) if pairs else 0
            for seeder, getter in pairs[k:] + pairs[:k]:
                if "error" in self.seeders[seeder]:
                    continue
                if not self.seeders[seeder]["proc"].alive():
                    self.seeders[seeder]["error"] = "died during the run (status %s)" % (
                        self.seeders[seeder]["proc"].p.returncode)
                    print("seeder %s died during the run" % seeder, flush=True)
                    continue
                n += 1
                self.transfer(seeder, getter, rnd, n)

    def close(self):
        if self.getter:
            self.getter.stop(grace=5)
        for s in self.seeders.values():
            if "proc" in s:
                s["proc"].stop()
        for tr in self.trackers:
            tr.close()


def transfer_plan(seeders, getters):
    """The transfers of one round: every seeder to lt, and aria2 to every getter; aria2 -> lt,
    which both directions need, once."""
    pairs = [(s, SEED_GETTER) for s in seeders]
    pairs += [(GET_SEEDER, g) for g in getters if (GET_SEEDER, g) not in pairs]
    return pairs


def _median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 2) if xs else None


def _row(kind, seeder, getter, runs):
    ok = [r for r in runs if r["ok"]]
    def peak(key):
        xs = [r[key] for r in runs if r.get(key) is not None]
        return max(xs) if xs else None
    return {"kind": kind, "seeder": seeder, "getter": getter, "runs": len(runs), "ok": len(ok),
            "mbps_wall": _median(r["mbps_wall"] for r in ok),
            "mbps_xfer": _median(r["mbps_xfer"] for r in ok),
            "ttfb_s": _median(r["ttfb_s"] for r in ok),
            "seed_cpu_s_per_gib": _median(r["seed_cpu_s_per_gib"] for r in ok),
            "seed_hwm_mb": peak("seed_hwm_mb"), "seed_rss_mb": peak("seed_rss_mb"),
            "get_cpu_s_per_gib": _median(r["get_cpu_s_per_gib"] for r in ok),
            "get_rss_mb": _median(r["get_rss_mb"] for r in ok)}


def _ratio(name, mine, theirs, target, results):
    """seedctl's row against the faster of theirs, on median wall MB/s (xfer alongside), and
    round by round: the two ran back to back there, so the per-round ratios show the noise."""
    theirs = [t for t in theirs if t and t["mbps_wall"]]
    best = max(theirs, key=lambda t: t["mbps_wall"]) if theirs else None
    rec = {"kind": "ratio", "name": name, "target": target, "value": None, "value_xfer": None,
           "rounds": [],
           "versus": best and (best["getter"] if name == "get" else best["seeder"]), "pass": None}
    if mine is None or best is None:
        return rec
    if mine["mbps_wall"]:
        rec["value"] = round(mine["mbps_wall"] / best["mbps_wall"], 3)
        if mine["mbps_xfer"] and best["mbps_xfer"]:
            rec["value_xfer"] = round(mine["mbps_xfer"] / best["mbps_xfer"], 3)
    m, b = _by_round(results, mine), _by_round(results, best)
    rec["rounds"] = [round(m[k] / b[k], 3) for k in sorted(m) if b.get(k)]
    # A failed seedctl run fails the target whatever the median of the others says.
    if target is not None:
        rec["pass"] = rec["value"] is not None and mine["ok"] == mine["runs"] and rec["value"] >= target
    return rec


def _by_round(results, row):
    """Wall MB/s of row's verified runs, by round."""
    return {r["round"]: r["mbps_wall"] for r in results
            if r["seeder"] == row["seeder"] and r["getter"] == row["getter"] and r["ok"]}


def summarize(results, seeders, getters):
    """Rows per direction, the two ratios and the RSS limit, as JSON-ready dicts."""
    def runs(s, g):
        return [r for r in results if r["seeder"] == s and r["getter"] == g]
    seed = [_row("seed", s, SEED_GETTER, runs(s, SEED_GETTER)) for s in seeders]
    get = [_row("get", GET_SEEDER, g, runs(GET_SEEDER, g)) for g in getters]
    by_seeder = {r["seeder"]: r for r in seed}
    by_getter = {r["getter"]: r for r in get}
    out = seed + get
    if "seedctl" in by_seeder:
        out.append(_ratio("seed", by_seeder["seedctl"],
                          [by_seeder.get("aria2"), by_seeder.get("lt")], SEED_TARGET, results))
        hwm = by_seeder["seedctl"]["seed_hwm_mb"]
        out.append({"kind": "limit", "name": "seed_rss_mb", "value": hwm, "limit": RSS_LIMIT_MB,
                    "rss_after_mb": by_seeder["seedctl"]["seed_rss_mb"],
                    "pass": None if hwm is None else hwm <= RSS_LIMIT_MB})
    if "seedctl" in by_seeder and "seedctl-base" in by_seeder:
        out.append(_ratio("ab", by_seeder["seedctl"], [by_seeder["seedctl-base"]], None, results))
    if "seedctl" in by_getter:
        out.append(_ratio("get", by_getter["seedctl"], [by_getter.get("lt")], GET_TARGET, results))
    return out


def _fmt(v, spec="%.1f"):
    return "–" if v is None else spec % v


# The two tables: row kind, title, the column naming each row, its CPU and memory columns.
_TABLES = (("seed", "seeders -> libtorrent", "seeder", "seed_cpu_s_per_gib", "seed_hwm_mb"),
           ("get", "aria2 -> getters", "getter", "get_cpu_s_per_gib", "get_rss_mb"))


def render(summary, meta):
    """The human summary: a table per direction, then the ratio and limit lines."""
    lines = ["# seedctl seeding benchmark, %s" % meta["when"], "",
             "%s payload, piece %s, %d round(s), loopback, warm cache; %s" % (
                 _size(meta["size"]), _size(1 << meta["piece_log2"]), meta["rounds"], meta["versions"]),
             "tracker: %s; libtorrent downloader at %s" % (
                 meta.get("tracker", "mini"), meta.get("getter_ip", LOOPBACK)),
             "MB/s = 10^6 bytes/s, median over the runs that completed and verified; "
             "HWM = peak RSS of the seeder's whole life", ""]
    for kind, title, who, cpu, mem in _TABLES:
        rows = [r for r in summary if r["kind"] == kind]
        if not rows:
            continue
        lines += ["## " + title, "",
                  "| %s | ok | MB/s wall | MB/s xfer | first byte s | %s CPU s/GiB | %s |" % (
                      who, who, "seeder HWM MB" if mem == "seed_hwm_mb" else "getter RSS MB"),
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += ["| %s | %d/%d | %s | %s | %s | %s | %s |" % (
            r[who], r["ok"], r["runs"], _fmt(r["mbps_wall"]), _fmt(r["mbps_xfer"]),
            _fmt(r["ttfb_s"], "%.2f"), _fmt(r[cpu], "%.2f"), _fmt(r[mem])) for r in rows]
        lines.append("")
    for kind, why in sorted(meta.get("errors", {}).items()):
        lines.append("seeder %s: %s" % (kind, why))
    for r in summary:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[r.get("pass")]
        if r["kind"] == "ratio" and r["name"] == "seed":
            lines.append("ratio seed: seedctl / max(aria2, lt) = %s, faster peer %s; target >= %.2f: %s" % (
                _values(r), r["versus"] or "–", r["target"], verdict))
        elif r["kind"] == "ratio" and r["name"] == "ab":
            lines.append("ratio A/B: seedctl / seedctl-base = %s" % _values(r))
        elif r["kind"] == "ratio":
            lines.append("ratio get: seedctl / lt (from aria2) = %s; target >= %.2f: %s" % (
                _values(r), r["target"], verdict))
        elif r["kind"] == "limit":
            lines.append("seedctl seeder peak RSS (VmHWM) = %s MB (RSS after a transfer: %s MB); "
                         "limit <= %.0f MB: %s" % (
                             _fmt(r["value"]), _fmt(r["rss_after_mb"]), r["limit"], verdict))
    return "\n".join(lines) + "\n"


def _values(ratio):
    """'1.129 wall (1.131 xfer; per round 1.13 1.12 1.13)'"""
    rounds = ""
    if len(ratio["rounds"]) > 1:
        rounds = "; per round " + " ".join("%.2f" % x for x in ratio["rounds"])
    return "%s wall (%s xfer%s)" % (_fmt(ratio["value"], "%.3f"), _fmt(ratio["value_xfer"], "%.3f"), rounds)


def _size(n):
    for unit, k in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << k and n % (1 << k) == 0:
            return "%d %s" % (n >> k, unit)
    return "%d bytes" % n


def _kinds(s, allowed):
    kinds = [k for k in s.split(",") if k]
    bad = [k for k in kinds if k not in allowed]
    if bad:
        raise argparse.ArgumentTypeError("unknown %s (want %s)" % (",".join(bad), ",".join(allowed)))
    return list(dict.fromkeys(kinds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="scratch directory (payload, downloads)")
    ap.add_argument("--out", required=True, help="results directory")
    ap.add_argument("--size", type=int, required=True, help="payload bytes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seeders", type=lambda s: _kinds(s, SEEDERS), default=list(SEEDERS))
    ap.add_argument("--getters", type=lambda s: _kinds(s, GETTERS), default=["lt", "seedctl"])
    ap.add_argument("--seedctl", help="seedctl binary (needed if seedctl seeds or gets)")
    ap.add_argument("--seedctl-base", help="the seedctl build seedctl-base seeds with (A/B)")
    ap.add_argument("--lt-py", required=True, help="the libtorrent driver lt.py")
    ap.add_argument("--piece", default="auto", help="piece length as log2 (18 = 256 KiB) or auto")
    ap.add_argument("--interval", type=int, default=30, help="tracker announce interval")
    ap.add_argument("--tracker", choices=["mini", "opentracker"], default="mini",
                    help="each seeder's tracker: minitracker.py in process, or a real opentracker")
    ap.add_argument("--getter-ip", default=LOOPBACK,
                    help="loopback address of the libtorrent downloader (127.0.0.2: another host)")
    ap.add_argument("--get-timeout", type=int, default=None, help="seconds per download")
    ap.add_argument("--ready-timeout", type=int, default=None, help="seconds for a seeder's check")
    ap.add_argument("--budget", type=int, default=3600, help="bound on every seeder's life, seconds")
    ap.add_argument("--versions", default="", help="client versions, for the report")
    a = ap.parse_args()
    if a.rounds < 1 or a.size < 1:
        ap.error("--rounds and --size must be positive")
    if a.piece != "auto" and not (a.piece.isdigit() and MIN_PIECE_LOG2 <= int(a.piece) <= MAX_PIECE_LOG2):
        ap.error("--piece: auto or %d..%d" % (MIN_PIECE_LOG2, MAX_PIECE_LOG2))
    if "seedctl" in a.seeders + a.getters and not a.seedctl:
        ap.error("--seedctl is needed when seedctl seeds or gets")
    if "seedctl-base" in a.seeders and not a.seedctl_base:
        ap.error("--seedctl-base is needed when seedctl-base seeds")
    # At least 5 MB/s for a download and 20 MB/s for a payload check, plus a minute.
    a.get_timeout = a.get_timeout or 60 + a.size // 5_000_000
    a.ready_timeout = a.ready_timeout or 60 + a.size // 20_000_000
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    b = Bench(a)
    try:
        b.run()
    except Interrupted as e:
        print("seedbench: interrupted (%s): summary of what finished" % e, file=sys.stderr)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        sys.exit("seedbench: %s" % e)  # after close, in finally
    finally:
        b.close()
    summary = summarize(b.results, [s for s in a.seeders if s in b.seeders],
                        [g for g in a.getters if GET_SEEDER in b.seeders])
    meta = {"kind": "run", "when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "size": a.size,
            "piece_log2": getattr(b, "piece_log2", 0), "rounds": a.rounds, "versions": a.versions,
            "tracker": a.tracker, "getter_ip": a.getter_ip,
            "seeders": a.seeders, "getters": a.getters,
            "ready_s": {k: s.get("ready_s") for k, s in b.seeders.items()},
            "errors": {k: s["error"] for k, s in b.seeders.items() if "error" in s}}
    text = render(summary, meta)
    print()
    print(text, end="")
    with open(os.path.join(b.out, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(b.out, "summary.jsonl"), "w") as f:
        for rec in [meta] + summary:
            f.write(json.dumps(rec) + "\n")
    failed = meta["errors"] or any(not r["ok"] for r in b.results)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
