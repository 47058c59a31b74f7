#!/usr/bin/python3
"""WebRTC seeding benchmark: seedctl against a browser seeding to a browser, one run.

Driven by scripts/bench-webrtc.sh, which builds the programs and runs this inside a private
network namespace (lo plus a veth address for ICE: Chromium gathers no candidate on lo);
run it directly only to debug. Stdlib only, with bench/seed's helpers.

Two seeders of the same torrent, each with a tracker (webswarm's `tracker`, WebSocket on
/announce) of its own, so a downloader meets only the seeder under test:

  a  `seedctl seed --webrtc on`                      -> a Chromium page (webtorrent)
  b  a Chromium page seeding the file with webtorrent -> a Chromium page (webtorrent)

The browser seeder makes the torrent (as a visitor who picks a file does); seedctl seeds a copy
naming its own tracker (torrentfile.retrack: same info bytes, same info-hash). Both seeders
start once and stay up; rounds alternate a, b then b, a. Per download: a fresh browser
context in one downloader Chromium adds the torrent; the time is from adding it to its last
piece verified in the page; the page's SHA-1 of the file must be the payload's and every byte
must have come from peers. The seeder's CPU during the download (utime + stime from
/proc/PID/stat): seedctl's process, and for the browser seeder the sum over all of its
Chromium's processes (the browser, zygotes, renderer, GPU and network services: its whole
process tree).

Then the peers mode: a fresh `seedctl seed` of a second torrent (PEERS_SIZE) serves PEERS
browser contexts downloading at once (--max-uploads PEERS, so all are served together); its
peak RSS is VmHWM of /proc/PID/status, the most WebRTC peers it had at once is sampled from its
metrics (webswarm_seed_transport_peers{transport="webrtc"}).

With --profile ADDR (a seedctl built with -tags pprof, serving pprof on ADDR) an extra a
download, not counted, is profiled: OUT/seedctl.cpu.pprof.

Results: a JSON line per download in OUT/results.jsonl; the table, medians, ratios and goals on
stdout and in OUT/summary.md. Exit status 1 when a seeder never became ready or a download
failed or was wrong; goals missed are reported, not an error.
"""
import argparse
import hashlib
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "seed"))
from seedbench import LOOPBACK, cpu_ticks, free_port, vm_kb  # noqa: E402
from torrentfile import retrack  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
MB = 1e6
# Goals (issue 15).
SPEED_GOAL = 1.2  # seedctl -> browser MB/s against browser -> browser
CPU_GOAL = 0.5  # seedctl's CPU a GiB against the browser seeder's
RSS_GOAL_MB = 60.0  # seedctl's peak RSS serving PEERS_GOAL browsers at once, 10^6 bytes
PEERS_GOAL = 20
SEEDERS = ("seedctl", "browser")


class Failed(Exception):
    """A seeder or a download did not do what it must: the run is void."""


# --- pure helpers (unit-tested) ---------------------------------------------------------------

def parse_stat(text):
    """(ppid, utime + stime ticks) of a /proc/PID/stat line; the name may hold ') '."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def descendants(root, parents):
    """root and every process below it, given {pid: ppid}."""
    kids = {}
    for pid, ppid in parents.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def tree_cpu_ticks(root, proc="/proc"):
    """utime + stime of root and all its descendants, or None when root is gone.

    A process that ends during a measurement takes its ticks with it (its parent's cutime
    gets them only once reaped); Chromium's processes live as long as the browser.
    """
    parents, ticks = {}, {}
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat")) as f:
                ppid, t = parse_stat(f.read())
        except (OSError, IndexError, ValueError):
            continue
        parents[int(name)] = ppid
        ticks[int(name)] = t
    if root not in ticks:
        return None
    return sum(ticks.get(p, 0) for p in descendants(root, parents))


def parse_metric(text, sample):
    """The value of sample (name with its labels, as exposed) in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


def summarize(rows):
    """Medians per seeder and the ratios seedctl / browser of the rows of complete downloads.

    rows: dicts with seeder, mbps, cpu_gib. Returns {"seedctl": {...}, "browser": {...},
    "speed_ratio", "cpu_ratio"}; a ratio is None when a side has no row.
    """
    out = {}
    for s in SEEDERS:
        mine = [r for r in rows if r["seeder"] == s]
        out[s] = {
            "n": len(mine),
            "mbps": statistics.median(r["mbps"] for r in mine) if mine else None,
            "cpu_gib": statistics.median(r["cpu_gib"] for r in mine) if mine else None,
            "xfer_mbps": statistics.median(r["xfer_mbps"] for r in mine) if mine else None,
        }
    a, b = out["seedctl"], out["browser"]
    out["speed_ratio"] = a["mbps"] / b["mbps"] if a["mbps"] and b["mbps"] else None
    out["cpu_ratio"] = a["cpu_gib"] / b["cpu_gib"] if a["cpu_gib"] is not None and b["cpu_gib"] else None
    return out


def round_order(i):
    """The seeders of round i (from 1): a, b on odd rounds, b, a on even ones."""
    return SEEDERS if i % 2 else SEEDERS[::-1]


def verdict(value, goal, higher_is_better):
    if value is None:
        return "n/a"
    ok = value >= goal if higher_is_better else value <= goal
    return "met" if ok else "NOT met"


def fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


# --- processes --------------------------------------------------------------------------------

class Proc:
    """A program under timeout(1), which leads a process group of its own; stopped by its PID."""

    def __init__(self, cmd, log_path, bound, stdin=subprocess.DEVNULL, stdout=None, env=None):
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(["timeout", "-k", "5", "%d" % bound] + cmd, stdin=stdin,
                                  stdout=stdout or self.log, stderr=self.log, env=env, text=True)

    def alive(self):
        return self.p.poll() is None

    def pid(self, timeout=5):
        """The program's PID (timeout's child)."""
        end = time.time() + timeout
        while time.time() < end and self.alive():
            try:
                with open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)) as f:
                    kids = f.read().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.02)
        raise Failed("%s: no process" % self.p.args[3])

    def stop(self, grace=15):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)  # timeout(1) passes it on
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
        self.log.close()


class Pages:
    """pages.mjs: one Chromium, driven one command at a time."""

    def __init__(self, bench, name):
        self.name = name
        work = os.path.join(bench.work, name)
        os.makedirs(work)
        self.pid_file = os.path.join(work, "chromium.pid")
        env = dict(os.environ, HOME=work)
        cmd = ["node", os.path.join(bench.here, "pages.mjs"), bench.a.modules, bench.a.chromium,
               bench.page_url, os.path.join(work, "profile"), self.pid_file,
               "%d" % (bench.a.budget * 1000)]
        self.proc = Proc(cmd, os.path.join(bench.out, name + ".log"), bench.a.budget,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.answer("READY", 120)

    def _read(self):
        for line in self.proc.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def answer(self, prefix, timeout):
        end = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, end - time.time()))
            except queue.Empty:
                raise Failed("%s: no %s within %d s" % (self.name, prefix, timeout)) from None
            if line is None:
                raise Failed("%s: the driver ended (see %s.log)" % (self.name, self.name))
            if line.startswith("ERROR "):
                raise Failed("%s: %s" % (self.name, line[6:]))
            if line.startswith(prefix + " ") or line == prefix:
                return json.loads(line[len(prefix) + 1:]) if line != prefix else None

    def call(self, command, prefix, timeout):
        self.proc.p.stdin.write(command + "\n")
        self.proc.p.stdin.flush()
        return self.answer(prefix, timeout)

    def chromium_pid(self):
        with open(self.pid_file) as f:
            return int(f.read())

    def stop(self):
        if self.proc.alive():
            try:
                self.proc.p.stdin.write("quit\n")
                self.proc.p.stdin.close()
                self.proc.p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        # Chromium leads its own process group (puppeteer starts it detached): stop it by PID.
        try:
            pid = self.chromium_pid()
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        self.proc.stop()


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# --- the benchmark ----------------------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.a = a
        self.here = os.path.dirname(os.path.abspath(__file__))
        self.work = os.path.abspath(a.work)
        self.out = os.path.abspath(a.out)
        self.htdocs = os.path.join(self.work, "htdocs")
        self.procs = []
        self.rows = []

    def start(self, cmd, name, **kw):
        p = Proc(cmd, os.path.join(self.out, name + ".log"), self.a.budget, **kw)
        self.procs.append(p)
        return p

    def serve(self):
        """The page, the webtorrent bundle and the .torrent files over HTTP on loopback."""
        os.makedirs(os.path.join(self.htdocs, "webtorrent"))
        shutil.copy(os.path.join(self.a.modules, "webtorrent", "dist", "webtorrent.min.js"),
                    os.path.join(self.htdocs, "webtorrent"))
        with open(os.path.join(self.htdocs, "rtc.html"), "w") as f:
            f.write('<!doctype html><link rel="icon" href="data:,"><title>WebRTC benchmark</title>'
                    '<input type=file>\n')
        self.http = ThreadingHTTPServer((LOOPBACK, free_port()), partial(Quiet, directory=self.htdocs))
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.site = "http://%s:%d" % (LOOPBACK, self.http.server_address[1])
        self.page_url = self.site + "/rtc.html"

    def tracker(self, name):
        """webswarm's tracker on a free port; its WebSocket announce URL."""
        port = free_port()
        self.start([self.a.tracker, "--port", str(port), "--bind", LOOPBACK, "--udp_port", "0",
                    "--dfile", os.path.join(self.work, name + ".bencode"), "--logfile", "",
                    "--nat_check", "0", "--max_announce_rate", "0", "--max_peers_per_ip", "0"], name)
        wait_for(lambda: urllib.request.urlopen("http://%s:%d/scrape" % (LOOPBACK, port), timeout=2),
                 30, name + " to answer")
        return "ws://%s:%d/announce" % (LOOPBACK, port)

    def seedctl(self, name, torrent, data_dir, extra=()):
        """seedctl seed over WebRTC; returns (Proc, PID, metrics URL) once it seeds."""
        metrics = "%s:%d" % (LOOPBACK, free_port())
        state = os.path.join(self.work, name + "-state")
        os.makedirs(state)
        status = os.path.join(self.out, name + ".jsonl")
        env = dict(os.environ)
        if self.a.profile:
            env["WEBSWARM_PPROF"] = self.a.profile
        out = open(status, "w")
        p = self.start([self.a.seedctl, "seed", torrent, "--data", data_dir, "--webrtc", "on",
                        "--min-peers", "0", "--bind", LOOPBACK, "--state", state, "--json",
                        "--check", "full", "--metrics", metrics] + list(extra), name,
                       stdout=out, env=env)
        out.close()
        wait_for(lambda: p.alive() and '"state":"seeding"' in open(status).read().replace(" ", ""),
                 self.a.ready_timeout, name + " to seed")
        return p, p.pid(), "http://%s/metrics" % metrics

    def run(self):
        a = self.a
        data = os.path.join(self.work, "data")
        os.makedirs(data)
        payload = os.path.join(data, "webrtc-bench.bin")
        sha1 = write_random(payload, a.size)
        self.serve()
        url_a = self.tracker("tracker-seedctl")
        url_b = self.tracker("tracker-browser")

        # b: the browser seeder makes the torrent; a: seedctl seeds a copy naming its tracker.
        seeder_b = Pages(self, "browser-seeder")
        self.pages = [seeder_b]
        torrent_b = os.path.join(self.htdocs, "b.torrent")
        t0 = time.time()
        made = seeder_b.call("seed %s %s %s" % (payload, url_b, torrent_b), "SEEDING", a.ready_timeout)
        print("browser seeder ready in %.1f s: %s, %d bytes" % (time.time() - t0, made["infoHash"], made["length"]), flush=True)
        torrent_a = os.path.join(self.htdocs, "a.torrent")
        with open(torrent_b, "rb") as f, open(torrent_a, "wb") as g:
            g.write(retrack(f.read(), url_a))
        t0 = time.time()
        seedctl, seedctl_pid, metrics = self.seedctl("seedctl", torrent_a, data)
        print("seedctl ready in %.1f s (pid %d)" % (time.time() - t0, seedctl_pid), flush=True)
        browser_pid = seeder_b.chromium_pid()
        getter = Pages(self, "downloader")
        self.pages.append(getter)

        cpu = {"seedctl": lambda: cpu_ticks(seedctl_pid), "browser": lambda: tree_cpu_ticks(browser_pid)}
        urls = {"seedctl": self.site + "/a.torrent", "browser": self.site + "/b.torrent"}
        print("\n%-5s %-8s %8s %8s %10s %10s %12s" % ("round", "seeder", "s", "MB/s", "xfer MB/s", "CPU s", "CPU s/GiB"), flush=True)
        results = open(os.path.join(self.out, "results.jsonl"), "w")
        for i in range(1, a.rounds + 1):
            for s in round_order(i):
                c0 = cpu[s]()
                r = getter.call("get " + urls[s], "RESULT", a.get_timeout)
                c1 = cpu[s]()
                check_download(r, a.size, sha1)
                row = {"round": i, "seeder": s, "seconds": r["ms"] / 1000, "first_wire_s": r["firstWireMs"] / 1000,
                       "mbps": a.size / MB / (r["ms"] / 1000), "cpu_s": (c1 - c0) / TICK,
                       "peers": r["peers"]}
                row["cpu_gib"] = row["cpu_s"] / (a.size / GIB)
                row["xfer_mbps"] = a.size / MB / max(0.001, row["seconds"] - max(0, row["first_wire_s"]))
                self.rows.append(row)
                results.write(json.dumps(row) + "\n")
                results.flush()
                print("%-5d %-8s %8.2f %8.1f %10.1f %10.2f %12.2f" % (i, s, row["seconds"], row["mbps"], row["xfer_mbps"], row["cpu_s"], row["cpu_gib"]), flush=True)
        uploaded = parse_metric(fetch(metrics), 'webswarm_seed_transport_uploaded_bytes_total{transport="webrtc"}') or 0
        up_b = seeder_b.call("uploaded", "UPLOADED", 30)["uploaded"]
        # Each seeder must have sent every round's torrent (re-sent pieces may add a little).
        if uploaded < a.rounds * a.size or up_b < a.rounds * a.size:
            raise Failed("uploaded over WebRTC: seedctl %d, browser %d bytes; want >= %d each" % (uploaded, up_b, a.rounds * a.size))

        prof = None
        if a.profile:
            prof = self.profile(getter, urls["seedctl"], sha1)
        seedctl.stop()
        seeder_b.stop()
        self.pages.remove(seeder_b)

        peers = None
        if a.peers > 0:
            peers = self.peers_mode(getter, url_a)
        self.report(peers, prof, results)
        results.close()

    def profile(self, getter, url, sha1):
        """One more seedctl -> browser download, not counted, with seedctl's CPU profiled."""
        secs = max(1, int(statistics.median(r["seconds"] for r in self.rows if r["seeder"] == "seedctl")))
        path = os.path.join(self.out, "seedctl.cpu.pprof")
        done = {}

        def grab():
            try:
                done["data"] = urllib.request.urlopen(
                    "http://%s/debug/pprof/profile?seconds=%d" % (self.a.profile, secs), timeout=secs + 60).read()
            except OSError as e:
                done["err"] = e
        t = threading.Thread(target=grab)
        t.start()
        r = getter.call("get " + url, "RESULT", self.a.get_timeout)
        t.join(secs + 90)
        check_download(r, self.a.size, sha1)
        if "data" not in done:
            raise Failed("the CPU profile: %s" % done.get("err"))
        with open(path, "wb") as f:
            f.write(done["data"])
        print("\nprofiled %d s of a %.1f s download: %s" % (secs, r["ms"] / 1000, path), flush=True)
        return path

    def peers_mode(self, getter, url):
        """A fresh seedctl serving PEERS browser contexts at once: its peak RSS."""
        a = self.a
        data = os.path.join(self.work, "peers-data")
        os.makedirs(data)
        payload = os.path.join(data, "webrtc-peers.bin")
        sha1 = write_random(payload, a.peers_size)
        torrent = os.path.join(self.htdocs, "peers.torrent")
        subprocess.run([a.seedctl, "make", payload, "--tracker", url, "-o", torrent, "--quiet"],
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
        p, pid, metrics = self.seedctl("seedctl-peers", torrent, data, ["--max-uploads", str(a.peers)])
        most = {"peers": 0, "rss_kb": 0}
        stop = threading.Event()

        def sample():
            while not stop.wait(0.2):
                try:
                    n = parse_metric(fetch(metrics), 'webswarm_seed_transport_peers{transport="webrtc"}')
                except OSError:
                    continue
                most["peers"] = max(most["peers"], int(n or 0))
                most["rss_kb"] = max(most["rss_kb"], vm_kb(pid, "VmRSS") or 0)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        print("\npeers mode: %d browser contexts download %d MiB from a fresh seedctl at once" % (a.peers, a.peers_size >> 20), flush=True)
        t0 = time.time()
        try:
            rs = getter.call("swarm %d %s" % (a.peers, self.site + "/peers.torrent"), "RESULT", a.peers_timeout)
        finally:
            stop.set()
            th.join(5)
        for r in rs:
            check_download(r, a.peers_size, sha1)
        hwm = vm_kb(pid, "VmHWM")
        up = parse_metric(fetch(metrics), 'webswarm_seed_transport_uploaded_bytes_total{transport="webrtc"}') or 0
        p.stop()
        res = {"pages": len(rs), "seconds": time.time() - t0, "most_webrtc_peers": most["peers"],
               "hwm_mb": hwm * 1024 / MB, "rss_sampled_mb": most["rss_kb"] * 1024 / MB,
               "uploaded_mb": up / MB, "size_mb": a.peers_size / MB}
        print(json.dumps(res), flush=True)
        return res

    def report(self, peers, prof, results):
        s = summarize(self.rows)
        a, b = s["seedctl"], s["browser"]
        load = open("/proc/loadavg").read().split()[:3]
        lines = [
            "## WebRTC seeding: seedctl -> Chromium against Chromium -> Chromium (%s, %d rounds, %d MiB, load %s)"
            % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), self.a.rounds, self.a.size >> 20, " ".join(load)),
            "",
            "| seeder | MB/s (median) | after the first wire | seeder CPU s/GiB (median) |",
            "|---|---:|---:|---:|",
            "| seedctl seed | %s | %s | %s |" % (fmt(a["mbps"], ".1f"), fmt(a["xfer_mbps"], ".1f"), fmt(a["cpu_gib"])),
            "| Chromium + webtorrent (all its processes) | %s | %s | %s |" % (fmt(b["mbps"], ".1f"), fmt(b["xfer_mbps"], ".1f"), fmt(b["cpu_gib"])),
            "",
            "- speed seedctl / browser: **%sx** (goal >= %.1fx: %s)" % (fmt(s["speed_ratio"]), SPEED_GOAL, verdict(s["speed_ratio"], SPEED_GOAL, True)),
            "- seeder CPU a GiB seedctl / browser: **%sx** (goal <= %.1fx: %s)" % (fmt(s["cpu_ratio"]), CPU_GOAL, verdict(s["cpu_ratio"], CPU_GOAL, False)),
        ]
        if peers:
            lines.append("- seedctl peak RSS (VmHWM) serving %d pages at once (at most %d WebRTC peers seen together): **%.1f MB** (goal <= %.0f MB with %d: %s)"
                         % (peers["pages"], peers["most_webrtc_peers"], peers["hwm_mb"], RSS_GOAL_MB, PEERS_GOAL,
                            verdict(peers["hwm_mb"], RSS_GOAL_MB, False) if peers["pages"] >= PEERS_GOAL else "fewer than %d pages" % PEERS_GOAL))
        if prof:
            lines.append("- seedctl CPU profile of one more download: %s" % prof)
        text = "\n".join(lines) + "\n"
        print("\n" + text, flush=True)
        with open(os.path.join(self.out, "summary.md"), "w") as f:
            f.write(text)
        results.write(json.dumps({"summary": s, "peers": peers, "load": load}) + "\n")

    def close(self):
        for p in getattr(self, "pages", []):
            p.stop()
        for p in reversed(self.procs):
            p.stop()
        if hasattr(self, "http"):
            self.http.shutdown()


def check_download(r, size, sha1):
    if r["length"] != size or r["sha1"] != sha1:
        raise Failed("the page got %d bytes with SHA-1 %s; the payload is %d bytes, %s" % (r["length"], r["sha1"], size, sha1))
    if r["fromWebSeed"] or r["fromPeers"] < size:
        raise Failed("the page got %d bytes from peers and %d from a web seed" % (r["fromPeers"], r["fromWebSeed"]))


def write_random(path, size):
    """size random bytes at path; returns their SHA-1 (hex)."""
    h = hashlib.sha1()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 1 << 20))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def wait_for(cond, timeout, what):
    """Polls cond (true, or no exception) every 0.1 s for up to timeout seconds."""
    end = time.time() + timeout
    err = None
    while time.time() < end:
        try:
            if cond():
                return
        except Exception as e:  # noqa: BLE001 -- any failure means "not yet"
            err = e
        time.sleep(0.1)
    raise Failed("no %s within %d s (%s)" % (what, timeout, err))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tracker", required=True)
    p.add_argument("--seedctl", required=True)
    p.add_argument("--modules", required=True, help="node_modules with puppeteer-core and webtorrent")
    p.add_argument("--chromium", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--peers", type=int, default=PEERS_GOAL)
    p.add_argument("--peers-size", type=int, default=32 << 20)
    p.add_argument("--get-timeout", type=int, default=600)
    p.add_argument("--peers-timeout", type=int, default=900)
    p.add_argument("--ready-timeout", type=int, default=300)
    p.add_argument("--budget", type=int, default=3600, help="bound of every program started, seconds")
    p.add_argument("--profile", default="", help="seedctl's pprof address (a -tags pprof build)")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(a)
    try:
        b.run()
    except Failed as e:
        print("webrtcbench: FAILED: %s" % e, file=sys.stderr, flush=True)
        if b.rows:
            print("the downloads that completed before:", flush=True)
            with open(os.path.join(a.out, "results.jsonl"), "a") as results:
                b.report(None, None, results)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
