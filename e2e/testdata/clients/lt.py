#!/usr/bin/python3
"""python3-libtorrent (libtorrent-rasterbar 2.0.x) headless seeder / downloader, loopback only.
(Copied from the project's lab driver shared/clients/lt.py; the e2e tests run it via clients_test.go.)

Run with the *system* python (/usr/bin/python3), not pyenv: python3-libtorrent is a
Debian package and only importable there.

usage:
  lt.py seed TORRENT DATADIR TRACKER_URL [--port P] [--seconds N] [--skip-check]
  lt.py check TORRENT DATADIR -   (hash-check existing data only; prints RESULT check SECONDS)
  lt.py get  TORRENT DATADIR TRACKER_URL [--port P] [--seconds N] [--seed-after N]
            [--peer HOST:PORT ...] [--utp]

TRACKER_URL replaces the torrent's own trackers ('-' keeps the torrent's).
seed: checks the existing data in DATADIR (unless --skip-check => seed_mode),
      then seeds for N seconds (default 60) and exits 0 (1 if data incomplete).
get:  downloads into DATADIR; exits 0 as soon as the torrent is complete
      (finished + all pieces hash-verified by libtorrent), 2 on timeout.
Prints one line per second: state progress rates peers, and a final
'RESULT ...' line. Every --peer is also connected directly (no tracker needed).
"""
import argparse
import os
import signal
import sys
import time

import libtorrent as lt


def settings(port, utp, ip="127.0.0.1", one_per_ip=False):
    return {
        "listen_interfaces": "%s:%d" % (ip, port),
        "outgoing_interfaces": ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # every peer on loopback has the same IP: without this only ONE peer
        # connection per torrent is allowed
        "allow_multiple_connections_per_ip": not one_per_ip,
        # default 300 s floor on re-announce, whatever the tracker says
        "min_announce_interval": 5,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "enable_incoming_utp": utp,
        "enable_outgoing_utp": utp,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        # tracker on localhost: allowed, but ssrf_mitigation requires path /announce
        "ssrf_mitigation": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification,
        "stop_tracker_timeout": 2,
        # loopback == local network: no rate limits anyway
        "ignore_limits_on_local_network": True,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "get", "check"])
    ap.add_argument("torrent")
    ap.add_argument("datadir")
    ap.add_argument("tracker")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--seed-after", type=float, default=0)
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--utp", action="store_true")
    ap.add_argument("--ip", default=os.environ.get("LT_IP", "127.0.0.1"),
                    help="loopback address to listen on and connect from (env LT_IP)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--one-conn-per-ip", action="store_true",
                    help="libtorrent's default (qBittorrent's, Deluge's): one connection per peer IP")
    a = ap.parse_args()
    if a.seconds is None:
        a.seconds = 60 if a.mode == "seed" else 300
    port = a.port or (6881 if a.mode == "seed" else 6882)

    ses = lt.session(settings(port, a.utp, a.ip, a.one_conn_per_ip))
    ti = lt.torrent_info(a.torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = a.datadir
    if a.mode == "check":
        atp.trackers = []
        atp.flags |= lt.torrent_flags.override_trackers
    elif a.tracker != "-":
        atp.trackers = [a.tracker]
        atp.flags |= lt.torrent_flags.override_trackers
    if a.mode == "seed" and a.skip_check:
        atp.flags |= lt.torrent_flags.seed_mode
    os.makedirs(a.datadir, exist_ok=True)
    t0 = time.time()
    h = ses.add_torrent(atp)
    for p in a.peer:
        host, _, pp = p.rpartition(":")
        h.connect_peer((host, int(pp)))

    finished_at = None
    deadline = t0 + a.seconds
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    last = 0
    rc = 2 if a.mode == "get" else 0
    while time.time() < deadline and not stop:
        for al in ses.pop_alerts():
            if a.mode == "check" and isinstance(al, lt.torrent_checked_alert):
                st = h.status()
                print("RESULT check %.3f s progress=%.4f pieces=%d/%d" % (
                    time.time() - t0, st.progress, st.num_pieces, ti.num_pieces()), flush=True)
                rc = 0 if st.num_pieces == ti.num_pieces() else 1
                deadline = 0
            if isinstance(al, (lt.tracker_error_alert, lt.tracker_warning_alert,
                               lt.torrent_error_alert, lt.file_error_alert)) or not a.quiet:
                if not isinstance(al, (lt.state_update_alert,)):
                    print("alert %.2f %s: %s" % (time.time() - t0, type(al).__name__, al.message()), flush=True)
        s = h.status()
        now = time.time()
        if now - last >= 1:
            last = now
            print("%.1f %s %.4f down=%.1fMB/s up=%.1fMB/s peers=%d seeds=%d" % (
                now - t0, s.state, s.progress, s.download_rate / 1e6, s.upload_rate / 1e6,
                s.num_peers, s.num_seeds), flush=True)
        if a.mode == "get" and finished_at is None and s.is_seeding and s.state == lt.torrent_status.seeding:
            finished_at = now
            rc = 0
            print("RESULT complete %.3f s total_done=%d" % (now - t0, s.total_wanted_done), flush=True)
            deadline = min(deadline, now + a.seed_after)
        if a.mode == "seed" and s.state in (lt.torrent_status.downloading,) and s.progress < 1 and now - t0 > 5:
            rc = 1
        time.sleep(0.05 if a.mode in ("get", "check") else 0.5)
    s = h.status()
    print("RESULT end mode=%s state=%s progress=%.4f uploaded=%d downloaded=%d elapsed=%.2f" % (
        a.mode, s.state, s.progress, s.total_upload, s.total_download, time.time() - t0), flush=True)
    # graceful stop so that event=stopped is sent
    ses.pause()
    t1 = time.time()
    while time.time() - t1 < 3:
        if any(isinstance(al, lt.tracker_reply_alert) or isinstance(al, lt.tracker_error_alert)
               for al in ses.pop_alerts()):
            break
        time.sleep(0.1)
    if a.mode == "seed" and not s.is_seeding:
        rc = 1
    if a.mode == "check" and deadline != 0:
        rc = 2
    sys.exit(rc)


if __name__ == "__main__":
    main()
