"""Unit tests of the benchmark's own logic (no clients needed, loopback only, bounded).

    python3 -m unittest discover -s bench/seed
"""
import hashlib
import os
import shutil
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import seedbench
from minitracker import Tracker, parse_query
from opentracker import OpenTracker
from torrentfile import BencodeError, bdecode, bencode, info_hash, retrack, single_file

INFO = {b"name": b"f.bin", b"length": 5, b"piece length": 16384, b"pieces": b"\x01" * 20}


def torrent(**extra):
    top = {b"announce": b"http://old/announce", b"info": INFO}
    top.update(extra)
    return bencode(top)


class TorrentFileTest(unittest.TestCase):
    def test_retrack_keeps_info_hash(self):
        data = torrent(**{"announce-list": [[b"http://a/announce"], [b"http://b/announce"]]})
        want = hashlib.sha1(bencode(INFO)).hexdigest()
        self.assertEqual(info_hash(data), want)
        out = retrack(data, "http://127.0.0.1:9/announce")
        self.assertEqual(info_hash(out), want)
        top, end = bdecode(out)
        self.assertEqual(end, len(out))
        self.assertEqual(top[b"announce"], b"http://127.0.0.1:9/announce")
        self.assertNotIn(b"announce-list", top)

    def test_retrack_keeps_unusual_info_bytes(self):
        # Unsorted keys in info: re-encoding would change the hash, retrack must not.
        raw_info = b"d6:lengthi5e4:name5:f.bin12:piece lengthi16384e6:pieces20:" + b"\x01" * 20 + b"e"
        raw_info = raw_info.replace(b"6:lengthi5e4:name5:f.bin", b"4:name5:f.bin6:lengthi5e")
        data = b"d8:announce3:old4:info" + raw_info + b"e"
        out = retrack(data, "http://x/announce")
        self.assertIn(raw_info, out)
        self.assertEqual(info_hash(out), hashlib.sha1(raw_info).hexdigest())

    def test_single_file(self):
        self.assertEqual(single_file(torrent()), ("f.bin", 5))
        multi = bencode({b"info": {b"name": b"d", b"files": [{b"length": 1, b"path": [b"a"]}],
                                   b"piece length": 16384, b"pieces": b"\x01" * 20}})
        with self.assertRaises(ValueError):
            single_file(multi)

    def test_malformed(self):
        good = torrent()
        cases = {
            "empty": b"",
            "not a dict": b"li1ee",
            "truncated": good[:-3],
            "trailing bytes": good + b"x",
            "string past end": b"d4:info5:abce",
            "bad length": b"d4:info-1:xe",
            "unterminated int": b"d1:ai12",
            "bad int": b"d1:aixe1:b1:ce",
            "no info": bencode({b"announce": b"x"}),
            "info not a dict": bencode({b"info": b"x"}),
            "int key": b"di1ei2ee",
            "key without value": b"d4:infoe",
        }
        for name, data in cases.items():
            with self.subTest(name):
                with self.assertRaises(BencodeError):
                    info_hash(data)

    def test_bencode_rejects_bool_and_objects(self):
        for v in (True, 1.5, None, object()):
            with self.assertRaises(TypeError):
                bencode(v)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def announce_url(tr, ih, port, left, **kw):
    q = {"info_hash": ih, "peer_id": b"-XX0001-" + b"\xff" * 12, "port": port, "left": left}
    q.update(kw)
    return tr.url + "?" + urllib.parse.urlencode(q)


class TrackerTest(unittest.TestCase):
    def setUp(self):
        self.log = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False).name
        self.tr = Tracker(interval=30, log_path=self.log).start()
        self.addCleanup(self.tr.close)
        self.addCleanup(os.unlink, self.log)
        self.ih = b"\x00\x01%&+ " + b"\xfe" * 14  # bytes a text decoder would mangle

    def reply(self, url):
        status, body = get(url)
        self.assertEqual(status, 200)
        d, _ = bdecode(body)
        return d

    def test_seed_ready_and_peers(self):
        leecher = self.reply(announce_url(self.tr, self.ih, 7001, 100, event="started"))
        self.assertEqual(leecher[b"peers"], b"")
        self.assertIsNone(self.tr.wait_seed(7002, 0.1))
        seed = self.reply(announce_url(self.tr, self.ih, 7002, 0, event="started"))
        self.assertEqual(seed[b"peers"], bytes([127, 0, 0, 1]) + (7001).to_bytes(2, "big"))
        self.assertEqual((seed[b"complete"], seed[b"incomplete"]), (1, 1))
        self.assertIsNotNone(self.tr.wait_seed(7002, 5))
        self.assertIsNone(self.tr.wait_seed(7001, 0.1), "a leecher is never ready")
        # The leecher re-announces and now learns the seeder, not itself.
        again = self.reply(announce_url(self.tr, self.ih, 7001, 100))
        self.assertEqual(again[b"peers"], bytes([127, 0, 0, 1]) + (7002).to_bytes(2, "big"))
        # A stopped seeder is no longer handed out.
        self.reply(announce_url(self.tr, self.ih, 7002, 0, event="stopped"))
        self.assertEqual(self.reply(announce_url(self.tr, self.ih, 7001, 100))[b"peers"], b"")
        with open(self.log) as f:
            self.assertEqual(len(f.readlines()), 5)

    def test_other_torrent_is_another_swarm(self):
        self.reply(announce_url(self.tr, self.ih, 7002, 0))
        other = self.reply(announce_url(self.tr, b"\x07" * 20, 7001, 100))
        self.assertEqual(other[b"peers"], b"")

    def test_stopped_with_left_zero_is_not_ready(self):
        self.reply(announce_url(self.tr, self.ih, 7003, 0, event="stopped"))
        self.assertIsNone(self.tr.wait_seed(7003, 0.1))

    def test_wait_seed_gives_up_when_the_seeder_dies(self):
        t0 = time.time()
        self.assertIsNone(self.tr.wait_seed(7004, 30, alive=lambda: False))
        self.assertLess(time.time() - t0, 5)

    def test_hostile_announces(self):
        base = {"info_hash": self.ih, "port": 7001, "left": 0}
        cases = {
            "short info_hash": dict(base, info_hash=b"\x01" * 19),
            "no info_hash": {k: v for k, v in base.items() if k != "info_hash"},
            "no port": {k: v for k, v in base.items() if k != "port"},
            "port zero": dict(base, port=0),
            "port too big": dict(base, port=70000),
            "port text": dict(base, port="x"),
            "no left": {k: v for k, v in base.items() if k != "left"},
            "negative left": dict(base, left=-5),
            "numwant text": dict(base, numwant="lots"),
        }
        for name, q in cases.items():
            with self.subTest(name):
                d = self.reply(self.tr.url + "?" + urllib.parse.urlencode(q))
                self.assertIn(b"failure reason", d)
        self.assertIsNone(self.tr.wait_seed(7001, 0.1), "a refused announce must not count")

    def test_unknown_path(self):
        with self.assertRaises(urllib.error.HTTPError) as cm:
            get(self.tr.url.replace("/announce", "/scrape"))
        self.assertEqual(cm.exception.code, 404)

    def test_parse_query_keeps_bytes(self):
        q = parse_query("info_hash=%00%FF+%2B&a=1&a=2&&novalue")
        self.assertEqual(q["info_hash"], [b"\x00\xff++"])
        self.assertEqual(q["a"], [b"1", b"2"])
        self.assertEqual(q["novalue"], [b""])


def result(seeder, getter, mbps, ok=True, xfer=None, hwm=20.0, cpu=1.0, rnd=1):
    return {"seeder": seeder, "getter": getter, "round": rnd, "ok": ok, "seed_rss_mb": hwm - 5,
            "mbps_wall": mbps if ok else 0.0,
            "mbps_xfer": xfer or (mbps * 1.1 if ok else None), "ttfb_s": 0.3,
            "seed_cpu_s_per_gib": cpu, "seed_hwm_mb": hwm, "get_cpu_s_per_gib": 2.0,
            "get_rss_mb": 30.0}


def by(summary, kind, name):
    return next(r for r in summary if r["kind"] == kind and r.get("name") == name)


class SummaryTest(unittest.TestCase):
    SEEDERS = ["aria2", "lt", "seedctl"]
    GETTERS = ["lt", "seedctl"]

    def runs(self, seedctl_mbps, seedctl_ok=True, seedctl_hwm=20.0, get_mbps=(200, 210, 190)):
        rs = []
        for i, (a, l, s) in enumerate(zip((310, 320, 300), (250, 260, 240), seedctl_mbps)):
            rs += [result("aria2", "lt", a, rnd=i + 1), result("lt", "lt", l, rnd=i + 1),
                   result("seedctl", "lt", s, ok=seedctl_ok or i, hwm=seedctl_hwm, rnd=i + 1),
                   result("aria2", "seedctl", get_mbps[i], rnd=i + 1)]
        return rs

    def test_seed_ratio_against_the_faster_peer(self):
        s = seedbench.summarize(self.runs((350, 360, 340)), self.SEEDERS, self.GETTERS)
        ratio = by(s, "ratio", "seed")
        self.assertEqual(ratio["versus"], "aria2")
        self.assertAlmostEqual(ratio["value"], 350 / 310, places=3)
        self.assertTrue(ratio["pass"])
        self.assertEqual(ratio["rounds"], [round(350 / 310, 3), round(360 / 320, 3), round(340 / 300, 3)])
        self.assertEqual(by(s, "ratio", "get")["value"], round(200 / 310, 3))
        self.assertFalse(by(s, "ratio", "get")["pass"])
        self.assertTrue(by(s, "limit", "seed_rss_mb")["pass"])
        text = seedbench.render(s, {"when": "now", "size": 1 << 30, "piece_log2": 20, "rounds": 3,
                                    "versions": "v"})
        self.assertIn("ratio seed: seedctl / max(aria2, lt) = 1.129 wall "
                      "(1.129 xfer; per round 1.13 1.12 1.13), faster peer aria2; target >= 1.10: PASS", text)
        self.assertIn("ratio get: seedctl / lt (from aria2) = 0.645 wall", text)
        self.assertIn("target >= 1.00: FAIL", text)
        self.assertIn("| seedctl | 3/3 | 350.0 | 385.0 |", text)

    def test_ab_ratio_of_two_builds(self):
        rs = self.runs((350, 360, 340))
        rs += [result("seedctl-base", "lt", m, rnd=i + 1) for i, m in enumerate((300, 400, 340))]
        s = seedbench.summarize(rs, self.SEEDERS + ["seedctl-base"], self.GETTERS)
        ab = by(s, "ratio", "ab")
        self.assertEqual(ab["versus"], "seedctl-base")
        self.assertAlmostEqual(ab["value"], 350 / 340, places=3)
        self.assertEqual(ab["rounds"], [round(350 / 300, 3), round(360 / 400, 3), 1.0])
        self.assertIsNone(ab["pass"], "an A/B has no target")
        self.assertEqual(by(s, "ratio", "seed")["versus"], "aria2", "the base build is not a peer")
        text = seedbench.render(s, {"when": "now", "size": 1 << 30, "piece_log2": 20, "rounds": 3,
                                    "versions": "v"})
        self.assertIn("ratio A/B: seedctl / seedctl-base = 1.029 wall", text)

    def test_seed_ratio_below_target(self):
        s = seedbench.summarize(self.runs((330, 330, 330)), self.SEEDERS, self.GETTERS)
        self.assertFalse(by(s, "ratio", "seed")["pass"])

    def test_failed_seedctl_run_fails_the_target(self):
        s = seedbench.summarize(self.runs((900, 900, 900), seedctl_ok=False), self.SEEDERS, self.GETTERS)
        row = next(r for r in s if r["kind"] == "seed" and r["seeder"] == "seedctl")
        self.assertEqual((row["ok"], row["runs"]), (2, 3))
        self.assertEqual(row["mbps_wall"], 900)  # median of the verified runs only
        self.assertEqual(len(by(s, "ratio", "seed")["rounds"]), 2, "no ratio for the failed round")
        self.assertFalse(by(s, "ratio", "seed")["pass"])

    def test_rss_limit(self):
        s = seedbench.summarize(self.runs((350, 360, 340), seedctl_hwm=31.2), self.SEEDERS, self.GETTERS)
        lim = by(s, "limit", "seed_rss_mb")
        self.assertEqual(lim["value"], 31.2)
        self.assertEqual(lim["rss_after_mb"], 26.2)
        self.assertFalse(lim["pass"])

    def test_no_seedctl_no_ratios(self):
        rs = [r for r in self.runs((1, 1, 1)) if "seedctl" not in (r["seeder"], r["getter"])]
        s = seedbench.summarize(rs, ["aria2", "lt"], ["lt"])
        self.assertEqual({r["kind"] for r in s}, {"seed", "get"})
        text = seedbench.render(s, {"when": "now", "size": 1 << 30, "piece_log2": 20, "rounds": 3,
                                    "versions": "v"})
        self.assertIn("| aria2 | 3/3 | 310.0 |", text)
        self.assertNotIn("ratio", text)

    def test_seeder_that_never_started(self):
        rs = [r for r in self.runs((1, 1, 1)) if r["seeder"] != "seedctl"]
        s = seedbench.summarize(rs, self.SEEDERS, self.GETTERS)
        self.assertFalse(by(s, "ratio", "seed")["pass"], "no seedctl figure is a miss, not a pass")
        self.assertIsNone(by(s, "limit", "seed_rss_mb")["pass"])
        text = seedbench.render(s, {"when": "now", "size": 1 << 30, "piece_log2": 20, "rounds": 3,
                                    "versions": "v", "errors": {"seedctl": "exited with status 1"}})
        self.assertIn("| seedctl | 0/0 | – |", text)
        self.assertIn("seeder seedctl: exited with status 1", text)

    def test_peer_that_never_completed(self):
        rs = self.runs((350, 350, 350))
        rs = [dict(r, ok=False, mbps_wall=0.0) if r["seeder"] in ("aria2", "lt") and r["getter"] == "lt"
              else r for r in rs]
        ratio = by(seedbench.summarize(rs, self.SEEDERS, self.GETTERS), "ratio", "seed")
        self.assertIsNone(ratio["value"])
        self.assertIsNone(ratio["pass"])
        text = seedbench.render(seedbench.summarize(rs, self.SEEDERS, self.GETTERS),
                                {"when": "now", "size": 64 << 20, "piece_log2": 16, "rounds": 3,
                                 "versions": "v"})
        self.assertIn("target >= 1.10: n/a", text)


class HelpersTest(unittest.TestCase):
    def test_auto_piece_log2_matches_seedctl_make(self):
        # seedctl/metafile.AutoPieceLength: at most 2,000 pieces, 16 KiB to 16 MiB; but
        # mktorrent makes no piece under 32 KiB.
        for size, want in [(1, 15), (2000 << 14, 15), (2000 << 15, 15), ((2000 << 15) + 1, 16),
                           (64 << 20, 16), (256 << 20, 18), (1 << 30, 20), (1 << 40, 24)]:
            with self.subTest(size=size):
                self.assertEqual(seedbench.auto_piece_log2(size), want)

    def test_transfer_plan_shares_aria2_to_lt(self):
        plan = seedbench.transfer_plan(["aria2", "lt", "seedctl"], ["lt", "seedctl"])
        self.assertEqual(plan, [("aria2", "lt"), ("lt", "lt"), ("seedctl", "lt"), ("aria2", "seedctl")])
        self.assertEqual(seedbench.transfer_plan([], ["lt"]), [("aria2", "lt")])

    def test_parse_time_v(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write('\tCommand being timed: "x"\n\tUser time (seconds): 1.25\n'
                    "\tSystem time (seconds): 0.50\n\tMaximum resident set size (kbytes): 40960\n"
                    "\tExit status: 2\n\tElapsed (wall clock) time (h:mm:ss or m:ss): 0:01.00\n")
        self.addCleanup(os.unlink, f.name)
        self.assertEqual(seedbench.parse_time_v(f.name),
                         {"user": 1.25, "sys": 0.5, "rss_kb": 40960, "exit": 2})
        self.assertEqual(seedbench.parse_time_v(f.name + ".missing"), {})

    def test_disk_blocks(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(seedbench.disk_blocks(d), 0)
            with open(os.path.join(d, "sparse"), "wb") as f:
                f.truncate(1 << 20)
            self.assertEqual(seedbench.disk_blocks(d), 0, "a sparse file has no data yet")
            os.makedirs(os.path.join(d, "sub"))
            with open(os.path.join(d, "sub", "x"), "wb") as f:
                f.write(b"x" * 8192)
                f.flush()
                os.fsync(f.fileno())
            self.assertGreater(seedbench.disk_blocks(d), 0)


@unittest.skipUnless(shutil.which("opentracker"), "opentracker is not installed (apt-get install opentracker)")
class OpenTrackerTest(unittest.TestCase):
    """The TRACKER=opentracker adapter against the real opentracker: a seeder is ready once
    its left=0 announce shows in a scrape."""

    def test_wait_seed_after_left_zero(self):
        ih = hashlib.sha1(b"opentracker adapter test").digest()
        with tempfile.TemporaryDirectory() as d:
            tr = OpenTracker(ih, os.path.join(d, "ot"), os.path.join(d, "ot.log"), bound=60).start()
            try:
                self.assertEqual(tr.scrape(), (0, 0))
                self.assertIsNone(tr.wait_seed(1, timeout=0.3))
                q = urllib.parse.urlencode({"info_hash": ih, "peer_id": b"-XX0000-abcdefghijkl",
                                            "port": 6881, "uploaded": 0, "downloaded": 0,
                                            "left": 0, "event": "started", "compact": 1})
                with urllib.request.urlopen(tr.url + "?" + q, timeout=5) as r:
                    reply, _ = bdecode(r.read())
                self.assertNotIn(b"failure reason", reply)
                self.assertIsNotNone(tr.wait_seed(6881, timeout=10))
                self.assertEqual(tr.scrape(), (1, 0))
            finally:
                tr.close()
            self.assertIsNone(tr.p)


if __name__ == "__main__":
    unittest.main()
