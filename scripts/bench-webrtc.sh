#!/usr/bin/env bash
# WebRTC seeding benchmark: a headless Chromium page downloads the same torrent over WebRTC from
# (a) `seedctl seed` and (b) another Chromium page seeding it with webtorrent, in interleaved
# rounds, each seeder with a webswarm `tracker` (WebSocket) of its own. Prints per round and
# the medians: MB/s of each, the seeder's CPU seconds per GiB (seedctl's process; for the
# browser seeder all of its Chromium's processes), and the ratios against the goals:
#   seedctl -> browser >= 1.2 x browser -> browser (MB/s)
#   seedctl's CPU per GiB <= 0.5 x the browser seeder's
#   seedctl's peak RSS (VmHWM) <= 60 MB serving 20 browser peers at once (the peers mode: a
#   fresh seedctl, 20 browser contexts downloading a second torrent together)
# The driver is bench/webrtc/webrtcbench.py (see its header for what each figure measures).
#
#   scripts/bench-webrtc.sh                     # 256 MiB, 5 rounds, then 20 peers
#   ROUNDS=3 PEERS=0 scripts/bench-webrtc.sh    # 3 rounds, no peers mode
#   QUICK=1 scripts/bench-webrtc.sh             # smoke test: 32 MiB, 1 round, 4 peers
#   PROFILE=1 scripts/bench-webrtc.sh           # also a CPU profile of seedctl during one more download
#
# Environment (defaults in brackets):
#   SIZE [256M]       payload of the rounds (numfmt --from=iec); QUICK=1: 32M
#   ROUNDS [5]        interleaved rounds; QUICK=1: 1
#   PEERS [20]        browser contexts of the peers mode (0: skip it); QUICK=1: 4
#   PEERS_SIZE [32M]  payload of the peers mode
#   PROFILE [0]       1: seedctl built with -tags pprof; one more seedctl download, not counted,
#                     is profiled into OUT/seedctl.cpu.pprof; its top and its time by component
#                     (bench/webrtc/pprofgroup.py) are printed
#   OUT               results directory [bench/results/webrtc-YYYYmmdd-HHMMSS]
#   NICE [-10]        priority of the whole benchmark on a shared machine, as bench-seed.sh (root only)
#
# Loopback only: the whole run is inside a private network namespace (unshare -n; -rn when not
# root) holding lo and a veth pair whose address, 10.77.0.1, exists only there (Chromium
# gathers no ICE candidate on lo), as the e2e WebRTC tests run. Every program runs under
# timeout(1) and is stopped by its PID (Chromium by its process group, which it leads); the
# payloads, profiles and builds live in a temporary directory removed on exit. Needs what
# scripts/test.sh installs: chromium, nodejs, and npm puppeteer-core and webtorrent in
# .cache/e2e-node. Exit status: 0 when every download completed with the payload's SHA-1;
# goals missed are reported, not an error.
set -euo pipefail
NICE=${NICE:--10}
if [[ $NICE != 0 && -z ${BENCH_SESSION:-} && $(id -u) == 0 ]]; then
  BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "bench-webrtc.sh: could not set the autogroup nice" >&2
fi
cd "$(dirname "$0")/.."
REPO=$(pwd)
MODULES=$REPO/.cache/e2e-node/node_modules

declare -A need=([chromium]=chromium [nodejs]=node [util-linux]=unshare [iproute2]=ip
  [coreutils]=numfmt [python3]=python3)
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
mapfile -t missing < <(apt_missing)
apt_install bench-webrtc.sh "${missing[@]}"
export PATH=$PATH:/usr/sbin:/sbin
for m in puppeteer-core webtorrent/dist/webtorrent.min.js; do
  if [[ ! -e $MODULES/$m ]]; then
    echo "bench-webrtc.sh: $MODULES/$m missing: run scripts/test.sh once (it installs the browser tests' npm packages)" >&2
    exit 2
  fi
done

if [[ ${QUICK:-0} == 1 ]]; then
  : "${SIZE:=32M}" "${ROUNDS:=1}" "${PEERS:=4}"
fi
SIZE=${SIZE:-256M} ROUNDS=${ROUNDS:-5} PEERS=${PEERS:-20} PEERS_SIZE=${PEERS_SIZE:-32M} PROFILE=${PROFILE:-0}
for v in SIZE PEERS_SIZE; do
  if ! bytes=$(numfmt --from=iec "${!v}" 2>/dev/null) || [[ $bytes -lt 1 ]]; then
    echo "bench-webrtc.sh: $v=${!v}: want a size such as 32M or 256M" >&2
    exit 2
  fi
  printf -v "${v}_BYTES" %s "$bytes"
done
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ && $PEERS =~ ^[0-9]+$ ]]; then
  echo "bench-webrtc.sh: ROUNDS=$ROUNDS PEERS=$PEERS: want a positive and a non-negative integer" >&2
  exit 2
fi
OUT=${OUT:-$REPO/bench/results/webrtc-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/webrtcbench.XXXXXX")
run=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $run ]] && kill -0 "$run" 2>/dev/null; then
    kill -TERM "$run" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$run" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$run" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tags=()
[[ $PROFILE == 1 ]] && tags=(-tags pprof)
timeout 900 go build "${tags[@]}" -o "$WORK/seedctl" ./seedctl
timeout 900 go build -o "$WORK/tracker" ./tracker
version=$(git describe --always --dirty 2>/dev/null || echo unknown)

# Bounds: seeding starts (the browser hashes the payload, seedctl checks it), every download
# at no less than 0.25 MB/s (a 2-core machine under a load of 40 gave 0.8 MB/s), the peers mode
# at 0.2 MB/s a page.
get_timeout=$((120 + SIZE_BYTES / 250000))
peers_timeout=$((300 + PEERS * PEERS_SIZE_BYTES / 200000))
ready_timeout=$((120 + SIZE_BYTES / 2000000))
budget=$((600 + 2 * ready_timeout + (2 * ROUNDS + 1) * get_timeout + peers_timeout))
prof_addr=""
[[ $PROFILE == 1 ]] && prof_addr=127.0.0.1:6061

unshare=(unshare -n)
[[ $(id -u) == 0 ]] || unshare=(unshare -rn)
# The namespace's network: lo, and a veth pair carrying WebRTC (as e2e/browser_swarm_test.go).
netns_setup='set -e
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.77.0.1/24 dev v0
ip link set v0 up
ip link set v1 up
ip route add default dev v0
exec "$@"'

echo "bench-webrtc.sh: SIZE=$SIZE ROUNDS=$ROUNDS PEERS=$PEERS PEERS_SIZE=$PEERS_SIZE PROFILE=$PROFILE"
echo "  seedctl $version, $(chromium --version 2>/dev/null | head -1), node $(node --version), webtorrent $(sed -n 's/^  "version": "\(.*\)".*/\1/p' "$MODULES/webtorrent/package.json")"
echo "  nice $NICE | bound ${budget} s | load $(cut -d' ' -f1-3 /proc/loadavg) | results: $OUT"
rc=0
timeout -k 30 "$budget" "${unshare[@]}" -- sh -c "$netns_setup" sh \
  python3 "$REPO/bench/webrtc/webrtcbench.py" --work "$WORK" --out "$OUT" \
  --tracker "$WORK/tracker" --seedctl "$WORK/seedctl" --modules "$MODULES" --chromium "$(command -v chromium)" \
  --size "$SIZE_BYTES" --rounds "$ROUNDS" --peers "$PEERS" --peers-size "$PEERS_SIZE_BYTES" \
  --get-timeout "$get_timeout" --peers-timeout "$peers_timeout" --ready-timeout "$ready_timeout" \
  --budget "$budget" ${prof_addr:+--profile "$prof_addr"} &
run=$!
wait "$run" || rc=$?
run=""
if [[ $PROFILE == 1 && -s $OUT/seedctl.cpu.pprof ]]; then
  cp "$WORK/seedctl" "$OUT/seedctl.pprof-build"
  echo
  echo "## seedctl CPU during one download (go tool pprof -top)"
  go tool pprof -top -nodecount=100000 -nodefraction=0 -edgefraction=0 "$OUT/seedctl.pprof-build" "$OUT/seedctl.cpu.pprof" 2>/dev/null >"$OUT/profile-top.txt"
  head -36 "$OUT/profile-top.txt"
  echo
  echo "## by component (flat time)"
  python3 bench/webrtc/pprofgroup.py <"$OUT/profile-top.txt" | tee "$OUT/profile-components.md"
fi
echo "results: $OUT (results.jsonl: every download; summary.md; *.log: each program's output)"
exit "$rc"
