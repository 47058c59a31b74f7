#!/usr/bin/python3
"""libtorrent's side of scripts/bench-agent.sh: one session seeds every .torrent in a directory
in seed mode (payload trusted, nothing hashed), the counterpart of seedctl agent starting from
clean resume records.

Run with the system python (/usr/bin/python3): python3-libtorrent is a Debian package.

usage:
  lt_seedmode.py DIR [--port P] [--tracker URL] [--seconds N] [--hold N] [--async]

One session, loopback only, no DHT/LSD/UPnP/NAT-PMP (the settings of
e2e/testdata/clients/lt.py), every torrent active (no queueing: active_* limits off, so every
torrent really seeds and announces, as the agent's do). Each DIR/*.torrent is added with the
seed_mode flag and its payload beside it (save_path DIR: the publish layout); --async uses
async_add_torrent instead of one add_torrent call per torrent.

The clock starts before the first .torrent is read (after `import libtorrent`, which costs
the same whatever the number of torrents) and stops when every torrent has reached state
seeding, counted from state_changed_alert and then confirmed from the session's status of
every torrent. Prints JSON lines on stdout:

  {"event": "base", ...}     RSS before the session exists
  {"event": "seeding", ...}  every torrent seeding: seconds, RSS now, peak and growth
  {"event": "hold", ...}     the same figures --hold seconds later
then waits for SIGTERM (at most --seconds in all). Exit status 0 when every torrent seeded,
1 when some never did, 2 on bad usage.
"""
import argparse
import glob
import json
import os
import signal
import sys
import time

import libtorrent as lt


def vm_kib(field):
    """A memory figure of this process (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def emit(event, **kw):
    kw["event"] = event
    print(json.dumps(kw), flush=True)


def settings(port, n):
    return {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "ssrf_mitigation": True,
        # Every torrent seeds at once: libtorrent's queue would otherwise keep all but
        # active_seeds (5) paused, which is not what the agent is measured doing.
        "active_limit": -1,
        "active_seeds": -1,
        "active_downloads": -1,
        "active_checking": -1,
        "active_tracker_limit": -1,
        "dont_count_slow_torrents": False,
        # Room for every torrent's alerts (added, state changes, tracker replies).
        "alert_queue_size": 8 * n + 1000,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification,
        "stop_tracker_timeout": 1,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=6881)
    ap.add_argument("--tracker", default="-", help="announce URL replacing the torrents' own ('-': keep)")
    ap.add_argument("--seconds", type=float, default=600, help="bound on the whole run")
    ap.add_argument("--hold", type=float, default=10, help="seconds after all seeding to measure RSS again")
    ap.add_argument("--async", dest="use_async", action="store_true", help="async_add_torrent")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    deadline = time.monotonic() + a.seconds

    paths = sorted(glob.glob(os.path.join(glob.escape(a.dir), "*.torrent")))
    n = len(paths)
    if n == 0:
        print("lt_seedmode.py: no .torrent in %s" % a.dir, file=sys.stderr)
        return 2
    base_rss = vm_kib("VmRSS")
    emit("base", torrents=n, rss_kib=base_rss, hwm_kib=vm_kib("VmHWM"), version=lt.__version__)

    t0 = time.monotonic()
    ses = lt.session(settings(a.port, n))
    for p in paths:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(p)
        atp.save_path = a.dir
        atp.flags |= lt.torrent_flags.seed_mode
        if a.tracker != "-":
            atp.trackers = [a.tracker]
            atp.flags |= lt.torrent_flags.override_trackers
        if a.use_async:
            ses.async_add_torrent(atp)
        else:
            ses.add_torrent(atp)
    added = time.monotonic() - t0

    # Count torrents by their state changes; a torrent may pass through seeding more than
    # once (it should not), so count distinct info-hashes.
    seeding = set()
    errors = []
    done = None
    while not stop and time.monotonic() < deadline:
        ses.wait_for_alert(50)
        for al in ses.pop_alerts():
            if isinstance(al, lt.state_changed_alert):
                key = str(al.handle.info_hash())
                if al.state == lt.torrent_status.seeding:
                    seeding.add(key)
                else:
                    seeding.discard(key)
            elif isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)) and len(errors) < 20:
                errors.append(al.message())
        if len(seeding) >= n:
            done = time.monotonic() - t0
            break
    # Confirm from the session itself (not timed): the alerts could have been counted wrong.
    states = {}
    for st in ses.get_torrent_status(lambda s: True, 0):
        states[str(st.state)] = states.get(str(st.state), 0) + 1
    if done is None or states.get("seeding", 0) != n:
        emit("failed", torrents=n, seeding_alerts=len(seeding), states=states, errors=errors,
             seconds=time.monotonic() - t0)
        return 1
    rss = vm_kib("VmRSS")
    emit("seeding", torrents=n, seconds=round(done, 4), add_seconds=round(added, 4),
         rss_kib=rss, hwm_kib=vm_kib("VmHWM"), growth_kib=rss - base_rss, states=states)

    hold_end = time.monotonic() + a.hold
    while not stop and time.monotonic() < min(hold_end, deadline):
        ses.wait_for_alert(200)
        ses.pop_alerts()
    if not stop and time.monotonic() >= hold_end:
        rss = vm_kib("VmRSS")
        emit("hold", seconds=a.hold, rss_kib=rss, hwm_kib=vm_kib("VmHWM"), growth_kib=rss - base_rss)
    while not stop and time.monotonic() < deadline:
        ses.wait_for_alert(200)
        ses.pop_alerts()
    ses.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
