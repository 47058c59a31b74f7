"""Unit tests of the WebRTC benchmark's own logic (no browser needed, bounded).

    python3 -m unittest discover -s bench/webrtc
"""
import hashlib
import os
import subprocess
import tempfile
import time
import unittest

import webrtcbench as wb


def row(seeder, mbps, cpu_gib, xfer=None):
    return {"seeder": seeder, "mbps": mbps, "cpu_gib": cpu_gib, "xfer_mbps": xfer or mbps}


class SummarizeTest(unittest.TestCase):
    def test_medians_and_ratios(self):
        rows = [row("seedctl", 30, 2), row("browser", 20, 10), row("seedctl", 10, 4),
                row("browser", 25, 8), row("seedctl", 40, 3), row("browser", 5, 30)]
        s = wb.summarize(rows)
        self.assertEqual(s["seedctl"], {"n": 3, "mbps": 30, "cpu_gib": 3, "xfer_mbps": 30})
        self.assertEqual(s["browser"]["mbps"], 20)
        self.assertEqual(s["browser"]["cpu_gib"], 10)
        self.assertAlmostEqual(s["speed_ratio"], 1.5)
        self.assertAlmostEqual(s["cpu_ratio"], 0.3)

    def test_even_count_takes_the_middle_mean(self):
        s = wb.summarize([row("seedctl", 10, 1), row("seedctl", 20, 3), row("browser", 5, 2)])
        self.assertEqual(s["seedctl"]["mbps"], 15)
        self.assertEqual(s["seedctl"]["cpu_gib"], 2)
        self.assertAlmostEqual(s["speed_ratio"], 3.0)

    def test_a_side_without_rows_has_no_ratio(self):
        s = wb.summarize([row("seedctl", 10, 1)])
        self.assertIsNone(s["browser"]["mbps"])
        self.assertIsNone(s["speed_ratio"])
        self.assertIsNone(s["cpu_ratio"])

    def test_verdict(self):
        self.assertEqual(wb.verdict(1.2, 1.2, True), "met")
        self.assertEqual(wb.verdict(1.19, 1.2, True), "NOT met")
        self.assertEqual(wb.verdict(0.6, 0.5, False), "NOT met")
        self.assertEqual(wb.verdict(None, 0.5, False), "n/a")

    def test_rounds_alternate(self):
        self.assertEqual(wb.round_order(1), ("seedctl", "browser"))
        self.assertEqual(wb.round_order(2), ("browser", "seedctl"))
        self.assertEqual(wb.round_order(3), ("seedctl", "browser"))


class ProcTest(unittest.TestCase):
    def test_parse_stat_with_parens_in_the_name(self):
        line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 1 0 0 0 250 31 7 9 20 0 1 0 5 0 0"
        self.assertEqual(wb.parse_stat(line), (17, 281))

    def test_descendants(self):
        parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
        self.assertEqual(sorted(wb.descendants(10, parents)), [10, 11, 12, 13])
        self.assertEqual(wb.descendants(13, parents), [13])

    def test_tree_cpu_counts_every_process_below_the_root(self):
        with tempfile.TemporaryDirectory() as d:
            def proc(pid, ppid, utime, stime):
                os.makedirs(os.path.join(d, str(pid)))
                with open(os.path.join(d, str(pid), "stat"), "w") as f:
                    f.write("%d (x y) S %d 1 1 0 -1 0 0 0 0 0 %d %d 0 0 20 0 1 0 1 0 0\n" % (pid, ppid, utime, stime))
            proc(100, 1, 5, 5)  # the browser
            proc(101, 100, 20, 2)  # zygote
            proc(102, 101, 300, 40)  # renderer
            proc(200, 1, 1000, 1000)  # someone else's
            os.makedirs(os.path.join(d, "self"))
            self.assertEqual(wb.tree_cpu_ticks(100, proc=d), 372)
            self.assertEqual(wb.tree_cpu_ticks(102, proc=d), 340)
            self.assertIsNone(wb.tree_cpu_ticks(300, proc=d))

    def test_tree_cpu_of_a_real_process_tree(self):
        # A shell whose child burns CPU: the tree's ticks grow past the shell's own.
        p = subprocess.Popen(["sh", "-c", "timeout 5 sh -c 'while :; do :; done' ; true"])
        try:
            end = time.time() + 5
            while time.time() < end:
                t = wb.tree_cpu_ticks(p.pid)
                if t and t >= 10:
                    break
                time.sleep(0.05)
            self.assertGreaterEqual(wb.tree_cpu_ticks(p.pid), 10)
            self.assertLess(wb.cpu_ticks(p.pid), 10)
        finally:
            p.kill()
            p.wait()

    def test_parse_metric(self):
        text = ('# HELP webswarm_seed_transport_peers Peers\n'
                'webswarm_seed_transport_peers{transport="tcp"} 3\n'
                'webswarm_seed_transport_peers{transport="webrtc"} 17\n')
        self.assertEqual(wb.parse_metric(text, 'webswarm_seed_transport_peers{transport="webrtc"}'), 17)
        self.assertIsNone(wb.parse_metric(text, 'webswarm_seed_transport_peers{transport="udp"}'))


class CheckTest(unittest.TestCase):
    def test_check_download(self):
        good = {"length": 10, "sha1": "ab", "fromPeers": 10, "fromWebSeed": 0}
        wb.check_download(good, 10, "ab")
        for bad in ({"sha1": "cd"}, {"length": 9}, {"fromWebSeed": 1}, {"fromPeers": 9}):
            with self.assertRaises(wb.Failed):
                wb.check_download(dict(good, **bad), 10, "ab")

    def test_write_random(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "f")
            h = wb.write_random(path, (1 << 20) + 5)
            self.assertEqual(os.path.getsize(path), (1 << 20) + 5)
            with open(path, "rb") as f:
                self.assertEqual(hashlib.sha1(f.read()).hexdigest(), h)


if __name__ == "__main__":
    unittest.main()
