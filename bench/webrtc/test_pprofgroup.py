"""Unit tests of pprofgroup.py (python3 -m unittest discover -s bench/webrtc)."""
import unittest

import pprofgroup as pg

TOP = """File: seedctl
Type: cpu
Duration: 12s, Total samples = 2s (16.67%)
Showing nodes accounting for 2s, 100% of 2s total
      flat  flat%   sum%        cum   cum%
     0.50s 25.00% 25.00%      0.50s 25.00%  internal/runtime/syscall/linux.Syscall6
     500ms 25.00% 50.00%      0.60s 30.00%  github.com/pion/sctp.(*Association).writeLoop
     0.40s 20.00% 70.00%      0.40s 20.00%  hash/crc32.ieeeCLMUL
     0.30s 15.00% 85.00%      0.30s 15.00%  runtime.(*waitq).dequeue (inline)
     0.20s 10.00% 95.00%      0.20s 10.00%  crypto/internal/fips140/aes/gcm.gcmAesEnc
     100ms  5.00%   100%      1.90s 95.00%  github.com/webswarm/webswarm/seedctl/rtc.(*conn).Write
         0     0%   100%      1.90s 95.00%  mystery.func1
"""


class GroupTest(unittest.TestCase):
    def test_parse_and_group(self):
        total, rows = pg.parse_top(TOP)
        self.assertEqual(total, 2.0)
        self.assertEqual(len(rows), 7)
        self.assertEqual(rows[3], (0.3, "runtime.(*waitq).dequeue (inline)"))
        got = {c: (round(s, 3), round(p, 1)) for c, s, p in pg.group(total, rows)}
        self.assertEqual(got["system calls"], (0.5, 25.0))
        self.assertEqual(got["pion SCTP (association, chunks, timers)"], (0.5, 25.0))
        self.assertEqual(got["SCTP checksum (CRC32c)"], (0.4, 20.0))
        self.assertEqual(got["webswarm (wire, session, storage, rtc)"], (0.1, 5.0))
        self.assertEqual(got[pg.OTHER], (0.0, 0.0))
        self.assertAlmostEqual(sum(s for _, s, _ in pg.group(total, rows)), total)

    def test_dropped_nodes_are_shown(self):
        total, rows = pg.parse_top(TOP)
        got = {c: round(sec, 3) for c, sec, _ in pg.group(total + 1, rows)}
        self.assertEqual(got[pg.NOT_LISTED], 1.0)
        self.assertNotIn(pg.NOT_LISTED, {c for c, _, _ in pg.group(total, rows)})

    def test_seconds(self):
        self.assertEqual(pg.seconds("1.5s"), 1.5)
        self.assertAlmostEqual(pg.seconds("120ms"), 0.12)
        self.assertAlmostEqual(pg.seconds("30us"), 30e-6)
        self.assertEqual(pg.seconds("2mins"), 120)
        self.assertEqual(pg.seconds("0"), 0)
        with self.assertRaises(ValueError):
            pg.seconds("12 parsecs")

    def test_not_pprof_output(self):
        with self.assertRaises(ValueError):
            pg.parse_top("hello\n")


if __name__ == "__main__":
    unittest.main()
