"""Tests of summarize.py, the table scripts/bench-ws.sh prints (stdlib unittest)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize  # noqa: E402


def lines(name, rss_per_peer, rounds, peers=50000, paced=()):
    out = [f"WSLOAD name={name} ready peers={peers} connected={peers} connect_failed=0 rss_kb=1000 rss_per_peer_b={rss_per_peer}"]
    for i, (ann, p99, trk_cpu, load_cpu) in enumerate(rounds, 1):
        out.append(f"WSLOAD name={name} round={i} peers={peers} wall_s=10.00 announces={ann * 10} announces_per_s={ann} "
                   f"offers_relayed_per_s={ann * 5} answers_matched={ann * 50} failures=0 timeouts=0 write_errors=0 closed=0 "
                   f"p50_ms=1.000 p99_ms={p99} answer_p99_ms=2.000 tracker_cpu_s={trk_cpu} load_cpu_s={load_cpu}")
    for i, (rate, p99, missed) in enumerate(paced, len(rounds) + 1):
        out.append(f"WSLOAD name={name} round={i} rate={rate} wall_s=10.00 announces={rate * 10} announces_per_s={rate} "
                   f"p50_ms=0.500 p99_ms={p99} missed={missed} tracker_cpu_s=2 load_cpu_s=2")
    return "\n".join(out) + "\n"


class SummarizeTest(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_medians_ratios_and_goals(self):
        base = self.write(lines("bittorrent-tracker", 12800, [(1000, 50, 10, 3), (3000, 40, 10, 3), (2000, 45, 10, 3)]))
        ours = self.write(lines("webswarm", 3000, [(11000, 5, 10, 8), (10000, 9, 10, 8), (12000, 20, 10, 8)]))
        sums = [summarize.summary(base), summarize.summary(ours)]
        self.assertEqual(sums[0]["ann"], 2000)  # median, not mean or last
        self.assertEqual(sums[1]["p99"], 9)
        out = summarize.table(sums, 50000)
        self.assertIn("announces/s with offers relayed: 5.50× (goal ≥ 5×: met)", out)
        self.assertIn("goal ≤ 10 ms: met", out)
        self.assertIn("RSS per connected peer 3,000 B (goal ≤ 4096 B: met)", out)
        self.assertNotIn("load-bound", out)
        self.assertNotIn("starved", out)

    def test_load_bound_and_fewer_peers(self):
        base = self.write(lines("bittorrent-tracker", 12000, [(1000, 50, 10, 3)], peers=17000))
        ours = self.write(lines("webswarm", 24000, [(3000, 30, 5, 9.8)], peers=17000))
        out = summarize.table([summarize.summary(base), summarize.summary(ours)], 50000)
        self.assertIn("(load-bound)", out)
        self.assertIn("not measurable here (load-bound)", out)
        self.assertIn("per tracker CPU-second the ratio is 6.00×", out)
        self.assertIn("NOT met, measured at 17,000 peers, not 50,000", out)
        self.assertIn("50,000 peers were asked for", out)

    def test_paced_rounds_give_the_latency(self):
        base = self.write(lines("bittorrent-tracker", 12000, [(1000, 50, 10, 3)], paced=[(500, 20, 0)]))
        ours = self.write(lines("webswarm", 3000, [(6000, 30, 10, 8)], paced=[(500, 3, 0), (500, 4, 0), (500, 50, 7)]))
        sums = [summarize.summary(base), summarize.summary(ours)]
        self.assertEqual(sums[1]["ann"], 6000)  # paced rounds are not throughput
        self.assertEqual(sums[1]["rate_p99"], 4)
        out = summarize.table(sums, 0)
        self.assertIn("p99 announce→reply 4.00 ms at 500 announces/s, 7 paced starts missed", out)
        self.assertIn("goal ≤ 10 ms: met); bittorrent-tracker 20.00 ms", out)

    def test_starved(self):
        base = self.write(lines("bittorrent-tracker", 12000, [(1000, 50, 7, 3)]))
        ours = self.write(lines("webswarm", 3000, [(2000, 30, 5, 4)]))
        out = summarize.table([summarize.summary(base), summarize.summary(ours)], 0)
        self.assertIn("2,000 (starved)", out)
        self.assertIn("other programs on the machine took the time", out)

    def test_settled_rss_is_the_figure(self):
        text = lines("webswarm", 20000, [(1000, 5, 10, 3)]).replace(
            "rss_per_peer_b=20000", "rss_per_peer_b=20000 rss_settled_per_peer_b=3500")
        s = summarize.summary(self.write(text))
        self.assertEqual((s["rss_per_peer"], s["rss_per_peer_now"]), (3500, 20000))

    def test_no_ready_line(self):
        empty = self.write("wsload: dial failed\n")
        self.assertIsNone(summarize.summary(empty))


if __name__ == "__main__":
    unittest.main()
