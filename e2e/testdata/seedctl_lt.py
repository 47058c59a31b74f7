#!/usr/bin/python3
"""python3-libtorrent (2.0.x) helper for the seedctl e2e tests. Run with /usr/bin/python3.

  seedctl_lt.py info TORRENT                       -> JSON: v1, v2 info hashes (hex, "" if none),
                                                      name, pieces, piece_length, files
  seedctl_lt.py create PATH OUT MODE PIECE_LENGTH  -> make a torrent with libtorrent
                                                      (MODE v1 | v2 | hybrid)
  seedctl_lt.py check TORRENT SAVE_PATH SECONDS    -> hash-check existing data; JSON
                                                      {"pieces": N, "have": M}
  seedctl_lt.py get TORRENT SAVE_PATH SECONDS      -> download (web seeds only: no DHT, LSD,
                                                      tracker replies are not needed); exit 0
                                                      when complete, 2 on timeout

Everything binds 127.0.0.1 on an ephemeral port; every wait is bounded.
"""
import json
import os
import sys
import time

import libtorrent as lt


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })


def info(path):
    ti = lt.torrent_info(path)
    ih = ti.info_hashes()
    v1 = str(ih.v1) if ih.has_v1() else ""
    v2 = str(ih.v2) if ih.has_v2() else ""
    fs = ti.files()
    files = [{"path": fs.file_path(i), "size": fs.file_size(i)}
             for i in range(fs.num_files()) if not (fs.file_flags(i) & lt.file_storage.flag_pad_file)]
    print(json.dumps({"v1": v1, "v2": v2, "name": ti.name(), "pieces": ti.num_pieces(),
                      "piece_length": ti.piece_length(), "files": files,
                      "web_seeds": [w["url"] for w in ti.web_seeds()],
                      "trackers": [t.url for t in ti.trackers()], "private": ti.priv()}))


def create(path, out, mode, plen):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[mode]
    ct = lt.create_torrent(fs, int(plen), flags=flags)
    ct.add_tracker("http://127.0.0.1:1/announce")
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


def add(ses, torrent, save_path):
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    return ses.add_torrent(atp), atp.ti


def check(torrent, save_path, seconds):
    ses = session()
    h, ti = add(ses, torrent, save_path)
    deadline = time.time() + float(seconds)
    checked = False
    while time.time() < deadline and not checked:
        checked = any(isinstance(a, lt.torrent_checked_alert) for a in ses.pop_alerts())
        time.sleep(0.02)
    s = h.status()
    print(json.dumps({"pieces": ti.num_pieces(), "have": s.num_pieces, "checked": checked}))


def get(torrent, save_path, seconds):
    ses = session()
    os.makedirs(save_path, exist_ok=True)
    h, ti = add(ses, torrent, save_path)
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.url_seed_alert)):
                print("alert", type(a).__name__, a.message(), flush=True)
        s = h.status()
        if s.is_seeding:
            print("RESULT complete", flush=True)
            sys.exit(0)
        time.sleep(0.05)
    print("RESULT timeout progress=%.3f" % h.status().progress, flush=True)
    sys.exit(2)


def main():
    cmd = sys.argv[1]
    if cmd == "info":
        info(sys.argv[2])
    elif cmd == "create":
        create(*sys.argv[2:6])
    elif cmd == "check":
        check(*sys.argv[2:5])
    elif cmd == "get":
        get(*sys.argv[2:5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
