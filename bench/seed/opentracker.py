"""opentracker as the seeding benchmark's tracker (TRACKER=opentracker in bench-seed.sh).

The deployment the issue measured: the downloader at another loopback address (127.0.0.2)
announcing to a real tracker, so that the time from the downloader's start includes what a
user waits for -- the announce, the first contact with the seeder, the unchoke -- as served
by the tracker most public swarms use. One opentracker per seeder (each seeder in a swarm of
its own, as with minitracker.Tracker), with the same interface as minitracker.Tracker.

Debian's opentracker is built with WANT_ACCESSLIST_WHITE: it serves only the info-hashes in
its whitelist. Run as root it chroots into its directory and drops to `nobody`, so the
directory and the whitelist are world-readable. It is started under timeout(1) and stopped by
its PID; its ports are free high ports on 127.0.0.1 (TCP and UDP, both named so it binds no
default address).
"""
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request

from torrentfile import bdecode

LOOPBACK = "127.0.0.1"


def _free_port():
    """A port free for both TCP and UDP on LOOPBACK (opentracker listens on both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind((LOOPBACK, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise OSError("no port free for both TCP and UDP on %s" % LOOPBACK)


class OpenTracker:
    """One opentracker for one info-hash; start() once and close() once."""

    def __init__(self, info_hash, workdir, log_path, bound, pgid_file=None):
        self.info_hash = info_hash
        self.dir = workdir
        self.log_path = log_path
        self.bound = bound
        self.pgid_file = pgid_file
        self.port = _free_port()
        self.p = None

    @property
    def url(self):
        return "http://%s:%d/announce" % (LOOPBACK, self.port)

    def start(self, timeout=10):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        wl = os.path.join(self.dir, "whitelist.txt")
        with open(wl, "w") as f:
            f.write(self.info_hash.hex() + "\n")
        os.chmod(wl, 0o644)
        conf = os.path.join(self.dir, "opentracker.conf")
        with open(conf, "w") as f:
            f.write("access.whitelist whitelist.txt\n")
            f.write("listen.tcp %s:%d\n" % (LOOPBACK, self.port))
            f.write("listen.udp %s:%d\n" % (LOOPBACK, self.port))
        cmd = ["timeout", "-k", "5", "%d" % self.bound, "opentracker", "-f", conf, "-d", self.dir]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self._log = open(self.log_path, "w")
        self.p = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        if self.pgid_file:
            with open(self.pgid_file, "a") as f:
                f.write("%d\n" % self.p.pid)
        end = time.time() + timeout
        while time.time() < end:
            if self.p.poll() is not None:
                raise OSError("opentracker exited with status %s (see %s)" % (
                    self.p.returncode, self.log_path))
            if self.scrape() is not None:
                return self
            time.sleep(0.05)
        self.close()
        raise OSError("opentracker did not answer a scrape within %d s" % timeout)

    def scrape(self):
        """The swarm's (complete, incomplete), or None if the tracker does not answer."""
        u = "http://%s:%d/scrape?info_hash=%s" % (
            LOOPBACK, self.port, urllib.parse.quote_from_bytes(self.info_hash))
        try:
            with urllib.request.urlopen(u, timeout=2) as r:
                d, _ = bdecode(r.read())
        except (OSError, ValueError):
            return None
        f = d.get(b"files", {}).get(self.info_hash, {}) if isinstance(d, dict) else {}
        return f.get(b"complete", 0), f.get(b"incomplete", 0)

    def wait_seed(self, port, timeout, alive=lambda: True):
        """Time the seeder shows as complete in a scrape (its left=0 announce), or None on
        timeout or when alive() turns false. port is unused: one seeder per tracker."""
        end = time.time() + timeout
        while time.time() < end and alive():
            s = self.scrape()
            if s is not None and s[0] >= 1:
                return time.time()
            time.sleep(0.05)
        return None

    def close(self):
        if self.p is None:
            return
        if self.p.poll() is None:
            self.p.terminate()  # timeout(1) passes it on
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, 9)
                self.p.wait()
        self._log.close()
        self.p = None
