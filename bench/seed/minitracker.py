"""A small in-process HTTP BitTorrent tracker for the seeding benchmark (stdlib only).

BEP 3 announce with compact peer lists (BEP 23). The benchmark runs one Tracker per seeder so
each seeder sits in a swarm of its own: the downloader of a transfer learns only the seeder
under test (and every seeder only its own downloaders, never the other seeders).

Tracker.wait_seed(port) is how the benchmark knows a seeder is ready: a client announces
left=0 from its listen port once it has checked its payload. Every announce is also logged as
one JSON line (time, client, decoded parameters) for reading after a run.

Adapted from the project's lab tool logtracker.py: no scrape, no UDP logger, state per
instance instead of module globals, and a condition to wait on instead of polling the log.
"""
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from torrentfile import bencode


class AnnounceError(ValueError):
    """An announce this tracker refuses; its text becomes the failure reason."""


def parse_query(raw):
    """Decode a raw query string into {key: [bytes, ...]}, keeping binary values intact.

    urllib.parse.parse_qs would decode info_hash/peer_id as text (and '+' as space).
    """
    out = {}
    for part in raw.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out.setdefault(urllib.parse.unquote(k), []).append(urllib.parse.unquote_to_bytes(v))
    return out


def _int(q, key, default=None, lo=None, hi=None):
    vals = q.get(key)
    if not vals:
        if default is None:
            raise AnnounceError("missing %s" % key)
        return default
    try:
        n = int(vals[0])
    except ValueError:
        raise AnnounceError("%s is not an integer" % key) from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise AnnounceError("%s out of range" % key)
    return n


def parse_announce(q):
    """Validate an announce's parameters; returns (info_hash, port, left, event, numwant)."""
    ih = q.get("info_hash", [b""])[0]
    if len(ih) != 20:
        raise AnnounceError("info_hash must be 20 bytes")
    port = _int(q, "port", lo=1, hi=65535)
    left = _int(q, "left", default=-1, lo=0)
    if left < 0:
        raise AnnounceError("missing left")
    numwant = _int(q, "numwant", default=50, lo=0)
    event = q.get("event", [b""])[0].decode("latin-1")
    return ih, port, left, event, min(numwant, 200)


def _show(b):
    try:
        s = b.decode("ascii")
        if s.isprintable():
            return s
    except UnicodeDecodeError:
        pass
    return "hex:" + b.hex()


class _Handler(BaseHTTPRequestHandler):
    server_version = "webswarm-benchtracker/1"
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # the JSON log replaces http.server's stderr lines
        pass

    def do_GET(self):
        path, _, raw = self.path.partition("?")
        tr = self.server.tracker
        if not path.endswith("/announce"):
            return self._reply(404, b"not found")
        q = parse_query(raw)
        try:
            body = tr.announce(self.client_address[0], q)
        except AnnounceError as e:
            body = bencode({"failure reason": str(e)})
        self._reply(200, body)

    def _reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Tracker:
    """One HTTP tracker on 127.0.0.1 (port 0 = any free port), serving from a thread.

    Use start() once and close() once; close stops the thread and the socket.
    """

    def __init__(self, bind="127.0.0.1", port=0, interval=30, log_path=None):
        self.interval = interval
        self._log_path = log_path
        self._cond = threading.Condition()
        self._peers = {}  # info_hash -> {(ip, port): (left, last seen)}
        self._seeded = {}  # port -> time of the first announce with left=0
        self._srv = ThreadingHTTPServer((bind, port), _Handler)
        self._srv.daemon_threads = True
        self._srv.tracker = self
        self._thread = threading.Thread(target=self._srv.serve_forever, name="tracker", daemon=True)

    @property
    def url(self):
        host, port = self._srv.server_address[:2]
        return "http://%s:%d/announce" % (host, port)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)

    def announce(self, ip, q):
        """Register an announce from ip and return the bencoded reply."""
        ih, port, left, event, numwant = parse_announce(q)
        now = time.time()
        with self._cond:
            swarm = self._peers.setdefault(ih, {})
            me = (ip, port)
            if event == "stopped":
                swarm.pop(me, None)
            else:
                swarm[me] = (left, now)
            for k in [k for k, (_, seen) in swarm.items() if now - seen > 3 * self.interval]:
                del swarm[k]
            others = [k for k in swarm if k != me][:numwant]
            complete = sum(1 for left_, _ in swarm.values() if left_ == 0)
            if left == 0 and event != "stopped" and port not in self._seeded:
                self._seeded[port] = now
                self._cond.notify_all()
            if self._log_path:
                rec = {"t": round(now, 3), "client": "%s" % ip,
                       "params": {k: [_show(v) for v in vs] for k, vs in q.items()}}
                with open(self._log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        peers = b"".join(socket.inet_aton(h) + p.to_bytes(2, "big") for h, p in others
                         if "." in h)
        return bencode({"interval": self.interval, "min interval": max(1, self.interval // 2),
                        "complete": complete, "incomplete": len(swarm) - complete,
                        "peers": peers})

    def wait_seed(self, port, timeout, alive=lambda: True):
        """Time of the first left=0 announce from port, waiting at most timeout seconds.

        Returns None on timeout or as soon as alive() turns false (the seeder died).
        """
        end = time.time() + timeout
        with self._cond:
            while port not in self._seeded:
                left = end - time.time()
                if left <= 0 or not alive():
                    return None
                self._cond.wait(min(left, 0.5))
            return self._seeded[port]
