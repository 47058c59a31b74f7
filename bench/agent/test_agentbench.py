"""Unit tests of the agent benchmark's own logic (no seedctl or libtorrent needed: fakes stand in
for both; loopback only, every wait bounded).

    python3 -m unittest discover -s bench/agent
"""
import argparse
import http.server
import json
import os
import shutil
import stat
import sys
import tempfile
import textwrap
import threading
import unittest

import agentbench

METRICS = """# HELP webswarm_seed_torrents Torrents by state.
# TYPE webswarm_seed_torrents gauge
webswarm_seed_torrents{state="checking"} 3
webswarm_seed_torrents{state="seeding"} 997
webswarm_seed_torrents_tracker_problem{class="unreachable"} 5
webswarm_seed_torrents_without_series 500
"""


class ParseStatesTest(unittest.TestCase):
    def test_states(self):
        self.assertEqual(agentbench.parse_states(METRICS), {"checking": 3, "seeding": 997})

    def test_other_families_are_not_states(self):
        # Same prefix, other names: never read as a state count.
        text = 'webswarm_seed_torrents_tracker_problem{state="seeding"} 9\n'
        self.assertEqual(agentbench.parse_states(text), {})

    def test_labels_in_any_order_and_timestamps(self):
        text = 'webswarm_seed_torrents{x="1",state="seeding"} 12 1700000000000\n'
        self.assertEqual(agentbench.parse_states(text), {"seeding": 12})

    def test_hostile_values_are_skipped(self):
        for v in ("NaN", "+Inf", "-1", "1.5", "abc", "", "1e400"):
            with self.subTest(v=v):
                text = 'webswarm_seed_torrents{state="seeding"} %s\n' % v
                self.assertEqual(agentbench.parse_states(text), {})

    def test_no_state_label(self):
        self.assertEqual(agentbench.parse_states('webswarm_seed_torrents{kind="x"} 4\n'), {})

    def test_empty_and_garbage(self):
        self.assertEqual(agentbench.parse_states(""), {})
        self.assertEqual(agentbench.parse_states("\x00\xff{{}}\nseeding 5\n"), {})


TRACKER = """webswarm_tracker_announces_total{event="started",outcome="ok"} 10
webswarm_tracker_announces_total{event="started",outcome="failed"} 7
webswarm_tracker_announces_total{outcome="ok",event="stopped"} 4
webswarm_tracker_announces_total{event="none",outcome="ok"} 100
webswarm_tracker_announces_total_extra{event="started",outcome="ok"} 1000
webswarm_tracker_announces_total{event="started",outcome="ok"} NaN
"""


class AnnouncesTest(unittest.TestCase):
    def test_counts_only_ok_of_the_event(self):
        self.assertEqual(agentbench.announces(TRACKER, "started"), 10)
        self.assertEqual(agentbench.announces(TRACKER, "stopped"), 4)
        self.assertEqual(agentbench.announces(TRACKER, "completed"), 0)
        self.assertEqual(agentbench.announces("", "started"), 0)


class RotateTest(unittest.TestCase):
    def test_rotate(self):
        xs = ["a", "b", "c"]
        self.assertEqual(agentbench.rotate(xs, 0), ["a", "b", "c"])
        self.assertEqual(agentbench.rotate(xs, 1), ["b", "c", "a"])
        self.assertEqual(agentbench.rotate(xs, 4), ["b", "c", "a"])
        self.assertEqual(agentbench.rotate([], 2), [])


def run(who, n, rnd, seconds, ok=True, hwm=30.0, rss=25.0, growth=None, exec_s=None):
    r = {"who": who, "n": n, "round": rnd, "ok": ok}
    if ok:
        r.update(seconds=seconds, rss_mb=rss, hold_rss_mb=rss, hold_hwm_mb=hwm)
        if who != "seedctl":
            r.update(exec_seconds=exec_s or seconds + 0.2, hold_growth_mb=growth)
    return r


class SummarizeTest(unittest.TestCase):
    CONT = ["seedctl", "lt-sync", "lt-async"]

    def by(self, summary, kind, n):
        return [r for r in summary if r["kind"] == kind and r["n"] == n]

    def test_ratio_against_faster_libtorrent_mode(self):
        results = [run("seedctl", 100, k, 1.0) for k in (1, 2, 3)]
        results += [run("lt-sync", 100, k, 4.0, growth=50) for k in (1, 2, 3)]
        results += [run("lt-async", 100, k, 2.0, growth=40) for k in (1, 2, 3)]
        s = agentbench.summarize(results, [100], self.CONT)
        ratio, = self.by(s, "ratio", 100)
        self.assertEqual(ratio["versus"], "lt-async")
        self.assertEqual(ratio["value"], 0.5)
        self.assertEqual(ratio["rounds"], [0.5, 0.5, 0.5])
        self.assertTrue(ratio["pass"])
        limit, = self.by(s, "limit", 100)
        self.assertEqual(limit["lt_growth_mb"], 40)
        self.assertTrue(limit["pass"])

    def test_median_not_mean(self):
        results = [run("seedctl", 10, 1, 1.0), run("seedctl", 10, 2, 1.2), run("seedctl", 10, 3, 50.0)]
        results += [run("lt-sync", 10, k, 1.0) for k in (1, 2, 3)]
        s = agentbench.summarize(results, [10], ["seedctl", "lt-sync"])
        row = [r for r in self.by(s, "row", 10) if r["who"] == "seedctl"][0]
        self.assertEqual(row["seconds"], 1.2)
        ratio, = self.by(s, "ratio", 10)
        self.assertFalse(ratio["pass"])  # 1.2 > 1.0

    def test_failed_agent_run_fails_targets(self):
        results = [run("seedctl", 10, 1, 0.1), run("seedctl", 10, 2, None, ok=False)]
        results += [run("lt-sync", 10, k, 1.0) for k in (1, 2)]
        s = agentbench.summarize(results, [10], ["seedctl", "lt-sync"])
        ratio, = self.by(s, "ratio", 10)
        self.assertEqual(ratio["value"], 0.1)
        self.assertFalse(ratio["pass"])
        limit, = self.by(s, "limit", 10)
        self.assertFalse(limit["pass"])

    def test_rss_over_limit_fails_with_peak(self):
        results = [run("seedctl", 10, 1, 0.1, hwm=70), run("seedctl", 10, 2, 0.1, hwm=81)]
        results += [run("lt-sync", 10, k, 1.0) for k in (1, 2)]
        limit, = self.by(agentbench.summarize(results, [10], ["seedctl", "lt-sync"]), "limit", 10)
        self.assertEqual(limit["value"], 81)
        self.assertFalse(limit["pass"])

    def test_no_libtorrent_result(self):
        results = [run("seedctl", 10, 1, 0.1), run("lt-sync", 10, 1, None, ok=False)]
        s = agentbench.summarize(results, [10], ["seedctl", "lt-sync"])
        ratio, = self.by(s, "ratio", 10)
        self.assertIsNone(ratio["value"])
        self.assertIsNone(ratio["pass"])
        text = agentbench.render(s, {"when": "now", "rounds": 1, "hold": 10, "payload": "",
                                     "versions": "", "failures": [results[1]]})
        self.assertIn("n/a", text)
        self.assertIn("FAILED lt-sync N=10 round 1", text)


class ArgsTest(unittest.TestCase):
    def test_sizes(self):
        self.assertEqual(agentbench._sizes("1000,10000,1000"), [1000, 10000])
        for bad in ("", "0", "-5", "1e3", "a,b", ","):
            with self.subTest(bad=bad), self.assertRaises(argparse.ArgumentTypeError):
                agentbench._sizes(bad)

    def test_contenders(self):
        self.assertEqual(agentbench._contenders("lt-async,seedctl"), ["lt-async", "seedctl"])
        for bad in ("", "aria2", "seedctl,lt"):
            with self.subTest(bad=bad), self.assertRaises(argparse.ArgumentTypeError):
                agentbench._contenders(bad)


# A stand-in for `seedctl agent`: serves /metrics on --metrics with seeding rising to the number
# of .torrent files in --dir (or stopping short with FAKE_MISSING), or dies (FAKE_DIE).
FAKE_AGENT = """\
import http.server, os, sys, time
a = sys.argv[1:]
opt = {a[i]: a[i + 1] for i in range(1, len(a) - 1, 2)}
n = len([f for f in os.listdir(opt["--dir"]) if f.endswith(".torrent")])
n -= int(os.environ.get("FAKE_MISSING", "0"))
assert os.listdir(opt["--state"]), "state copy missing"
if os.environ.get("FAKE_DIE"):
    print("fake agent: dying", flush=True)
    sys.exit(3)
t0 = time.monotonic()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        seeding = min(n, int((time.monotonic() - t0) * 400))
        body = ('webswarm_seed_torrents{state="seeding"} %d\\n' % seeding).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
host, port = opt["--metrics"].rsplit(":", 1)
http.server.HTTPServer((host, int(port)), H).serve_forever()
"""

# A stand-in for lt_seedmode.py: prints its events as the real one does, or a failure.
FAKE_LT = """\
import json, sys, time
def emit(**kw):
    print(json.dumps(kw), flush=True)
emit(event="base", torrents=3, rss_kib=1000, hwm_kib=1000)
if "--async" in sys.argv:
    emit(event="failed", torrents=3, seeding_alerts=1, states={"seeding": 1}, errors=[])
    sys.exit(1)
emit(event="seeding", torrents=3, seconds=0.25, add_seconds=0.2, rss_kib=3048, hwm_kib=3048,
     growth_kib=2048, states={"seeding": 3})
time.sleep(float(sys.argv[sys.argv.index("--hold") + 1]))
emit(event="hold", seconds=0, rss_kib=4072, hwm_kib=4072, growth_kib=3072)
time.sleep(60)
"""


class ProcessTest(unittest.TestCase):
    """The driver against fake contenders: readiness, figures, failures, clean-up."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="agentbench-test.")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        for sub in ("torrents", "state"):
            os.makedirs(os.path.join(self.dir, "work", "n3", sub))
        for i in range(3):
            open(os.path.join(self.dir, "work", "n3", "torrents", "t%d.bin.torrent" % i), "w").close()
        open(os.path.join(self.dir, "work", "n3", "state", "x.resume"), "w").close()
        self.agent = self.script("fake-agent", FAKE_AGENT)
        self.lt = self.script("fake-lt.py", FAKE_LT)
        self.a = argparse.Namespace(
            work=os.path.join(self.dir, "work"), out=os.path.join(self.dir, "out"),
            seedctl=self.agent, lt_py=self.lt, python=sys.executable, hold=0.3, poll=0.02,
            ready_timeout=5, bound=30, tracker_metrics="")
        self.b = agentbench.Bench(self.a)
        self.addCleanup(self.b.close)

    def script(self, name, body):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write("#!%s\n%s" % (sys.executable, textwrap.dedent(body)))
        os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
        return p

    def test_seedctl_ready(self):
        r = self.b.run(1, 3, "seedctl")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["states"], {"seeding": 3})
        self.assertGreater(r["seconds"], 0)
        self.assertLess(r["seconds"], 5)
        self.assertGreater(r["hold_rss_mb"], 1)  # the fake's own RSS, read from /proc
        self.assertGreaterEqual(r["hold_hwm_mb"], r["hold_rss_mb"])
        self.assertFalse(os.path.exists(os.path.join(self.a.work, "run-state")))
        self.assertTrue(os.listdir(os.path.join(self.a.work, "n3", "state")))  # clean copy kept

    def test_seedctl_never_all_seeding(self):
        os.environ["FAKE_MISSING"] = "1"
        self.addCleanup(os.environ.pop, "FAKE_MISSING")
        self.a.ready_timeout = 3  # long enough for the fake to start on a loaded machine
        r = self.b.run(1, 3, "seedctl")
        self.assertFalse(r["ok"])
        self.assertEqual(r["states"], {"seeding": 2})
        self.assertIn("not all seeding", r["why"])
        self.assertIn("still running", r["why"])

    def test_seedctl_dies(self):
        os.environ["FAKE_DIE"] = "1"
        self.addCleanup(os.environ.pop, "FAKE_DIE")
        r = self.b.run(1, 3, "seedctl")
        self.assertFalse(r["ok"])
        self.assertIn("exited", r["why"])
        self.assertIn("fake agent: dying", r["log_tail"])

    def test_lt_ready(self):
        r = self.b.run(2, 3, "lt-sync")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["seconds"], 0.25)
        self.assertGreaterEqual(r["exec_seconds"], 0)
        self.assertEqual(r["growth_mb"], agentbench._mb(2048))
        self.assertEqual(r["hold_growth_mb"], agentbench._mb(3072))
        self.assertEqual(r["base_rss_mb"], agentbench._mb(1000))
        # Stopped by the driver (it would have slept a minute): SIGTERM through timeout(1).
        self.assertNotEqual(r["exit"], 0)

    def test_tracker_counts_around_the_run(self):
        # A tracker whose counters go up by one at every scrape: before the run, just before
        # the stop and after it are three scrapes, so one started and one stopped in between.
        hits = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(1)
                body = ('webswarm_tracker_announces_total{event="started",outcome="ok"} %d\n'
                        'webswarm_tracker_announces_total{event="stopped",outcome="ok"} %d\n'
                        % (len(hits), len(hits))).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        th = threading.Thread(target=srv.serve_forever)
        th.start()
        self.addCleanup(th.join, 5)
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        self.a.tracker_metrics = "http://127.0.0.1:%d/metrics" % srv.server_address[1]
        r = self.b.run(1, 3, "lt-sync")
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["announced_started"], r["announced_stopped"]), (1, 1))
        self.assertEqual(len(hits), 3)

    def test_tracker_unreachable_leaves_counts_out(self):
        self.a.tracker_metrics = "http://127.0.0.1:%d/metrics" % agentbench.free_port()
        r = self.b.run(1, 3, "lt-sync")
        self.assertTrue(r["ok"], r)
        self.assertNotIn("announced_started", r)

    def test_lt_failure_reported(self):
        r = self.b.run(1, 3, "lt-async")
        self.assertFalse(r["ok"])
        self.assertEqual(json.loads(r["why"])["seeding_alerts"], 1)


if __name__ == "__main__":
    unittest.main()
