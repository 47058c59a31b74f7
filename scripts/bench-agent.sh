#!/usr/bin/env bash
# Start-up benchmark of `seedctl agent` (issue #7) beside libtorrent's seed mode, in one run:
# for N torrents (the publish layout, clean resume records, made by bench/agent/gen), the time
# from start to "all N seeding" and the RSS, seedctl agent against one python3-libtorrent
# session adding every torrent with seed_mode (add_torrent and async_add_torrent), in
# interleaved rounds (so load from elsewhere on the machine hits every contender alike).
# Prints a table and, per N, the ratios against the issue's targets:
#   seedctl agent time to all seeding <= libtorrent's (the faster of its two add modes)
#   whole agent peak RSS (VmHWM, HOLD s after all seeding) <= 80 MB
# next to libtorrent's session RSS growth. The driver is bench/agent/agentbench.py (see its
# header for what each column measures; bench/agent/README.md for how to read the figures).
#
#   scripts/bench-agent.sh                 # 1,000 and 10,000 torrents, 3 rounds
#   QUICK=1 scripts/bench-agent.sh         # 200 and 1,000 torrents
#   SIZES=5000 ROUNDS=1 CONTENDERS=seedctl,lt-async scripts/bench-agent.sh
#
# Environment (defaults in brackets):
#   SIZES [1000,10000]  torrent counts (comma-separated); QUICK=1: 200,1000
#   ROUNDS [3]          interleaved rounds (contender order rotates each round)
#   CONTENDERS [seedctl,lt-sync,lt-async]
#   HOLD [10]           seconds after all seeding before RSS is read again
#   POLL [0.02]         seconds between readiness polls (the agent's /metrics; lt's own output)
#   PAYLOAD [65536]     bytes per torrent; PIECE [16384] piece length (gen's -size, -piece)
#   READY_TIMEOUT [300] seconds a contender may take to reach all seeding
#   OUT                 results directory [bench/results/agent-YYYYmmdd-HHMMSS]
#   SEEDCTL_BIN         a prebuilt seedctl instead of `go build ./seedctl` (GOFLAGS passes through)
#   NICE [-10]          priority of the whole benchmark on a shared machine (0: leave it alone):
#                       as in bench-tracker.sh, its own session (setsid) and autogroup nice.
#
# Loopback only: our tracker (`go build ./tracker`, --nat_check 0) on 127.0.0.1 and a free
# port, every contender bound to 127.0.0.1. Every process runs under timeout(1) and is stopped
# by its PID (the tracker) or process group (the contenders); the torrents, state copies and
# builds live in a temporary directory removed on exit. Installs python3-libtorrent with apt
# when missing. Exit status: 0 when every run reached all seeding; targets missed are
# reported, not an error.
set -euo pipefail
NICE=${NICE:--10}
if [[ $NICE != 0 && -z ${BENCH_SESSION:-} && $(id -u) == 0 ]]; then
  BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "bench-agent.sh: could not set the autogroup nice" >&2
fi
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=/usr/bin/python3 # the system Python: python3-libtorrent is a Debian package

# Debian packages this benchmark runs, by the command that proves each is present.
declare -A need=([python3]=$PY [coreutils]=timeout [curl]=curl)
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
mapfile -t missing < <(apt_missing; apt_missing_libtorrent "$PY")
apt_install bench-agent.sh "${missing[@]}"

if [[ ${QUICK:-0} == 1 ]]; then
  : "${SIZES:=200,1000}"
fi
SIZES=${SIZES:-1000,10000}
ROUNDS=${ROUNDS:-3}
CONTENDERS=${CONTENDERS:-seedctl,lt-sync,lt-async}
HOLD=${HOLD:-10}
POLL=${POLL:-0.02}
PAYLOAD=${PAYLOAD:-65536}
PIECE=${PIECE:-16384}
READY_TIMEOUT=${READY_TIMEOUT:-300}
SIZES=${SIZES// /,}
if ! [[ $SIZES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
  echo "bench-agent.sh: SIZES=$SIZES: want torrent counts such as 1000,10000" >&2
  exit 2
fi
for v in HOLD POLL; do
  if ! [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "bench-agent.sh: $v=${!v}: want a number of seconds" >&2
    exit 2
  fi
done
for v in ROUNDS PAYLOAD PIECE READY_TIMEOUT; do
  if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
    echo "bench-agent.sh: $v=${!v}: want a positive integer" >&2
    exit 2
  fi
done
OUT=${OUT:-$REPO/bench/results/agent-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agentbench.XXXXXX")
driver="" tracker=""
# Stops a process started here by its PID: SIGTERM, a bounded wait, then SIGKILL.
# shellcheck disable=SC2317 # reached through the EXIT trap
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $driver ]] && stop_pid "$driver"
  # Process groups the driver started (each led by timeout(1)) that outlived it.
  if [[ -f $WORK/pgids ]]; then
    while read -r pg; do
      if [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pg/cmdline") == timeout* ]]; then
        kill -KILL -- "-$pg" 2>/dev/null || true
      fi
    done <"$WORK/pgids"
  fi
  [[ -n $tracker ]] && stop_pid "$tracker"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Room for the largest N's payloads and .torrent files (twice: page-cache slack) and the builds.
IFS=, read -ra sizes <<<"$SIZES"
total=0
for n in "${sizes[@]}"; do total=$((total + n * (PAYLOAD + 4096 + 4096))); done
avail=$(($(df -Pk "$WORK" | awk 'NR==2 {print $4}') * 1024))
if [[ $avail -lt $((total + (512 << 20))) ]]; then
  echo "bench-agent.sh: $WORK has $((avail >> 20)) MiB free, needs $(((total >> 20) + 512)) MiB" >&2
  exit 2
fi

# Builds first, so a compile error costs no benchmark time.
if [[ -n ${SEEDCTL_BIN:-} ]]; then
  seedctl=$SEEDCTL_BIN
else
  seedctl=$WORK/seedctl
  timeout 900 go build -o "$seedctl" ./seedctl
fi
timeout 900 go build -o "$WORK/tracker" ./tracker
timeout 900 go build -o "$WORK/gen" ./bench/agent/gen
if ! "$seedctl" agent --help 2>&1 | grep -q -- --metrics; then
  echo "bench-agent.sh: $seedctl has no 'agent --metrics'" >&2
  exit 2
fi

# Our tracker, on a free loopback port: both contenders announce every torrent to it.
tport=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
announce=http://127.0.0.1:$tport/announce
timeout -k 5 $((7200 + 600 * ROUNDS)) "$WORK/tracker" --bind 127.0.0.1 --port "$tport" --udp_port 0 \
  --nat_check 0 --logfile "" --dfile "$WORK/tracker.dfile" --save_dfile_interval 3600 \
  >"$OUT/tracker.log" 2>&1 &
tracker=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$tport/healthz" 2>/dev/null && break
  kill -0 "$tracker" 2>/dev/null || { echo "bench-agent.sh: tracker exited:" >&2; cat "$OUT/tracker.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$tport/healthz"

# The torrents, once per N; every run of the agent starts from a copy of these clean records.
for n in "${sizes[@]}"; do
  t=$EPOCHREALTIME
  timeout 1800 "$WORK/gen" -n "$n" -size "$PAYLOAD" -piece "$PIECE" -dir "$WORK/n$n/torrents" \
    -state "$WORK/n$n/state" -tracker "$announce"
  echo "bench-agent.sh: made $n torrents in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t }") s"
done

seedctl_version=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
versions="seedctl $seedctl_version, libtorrent $($PY -c 'import libtorrent; print(libtorrent.__version__)'), $(nproc) CPUs"
nruns=$((ROUNDS * ${#sizes[@]} * $(tr ',' '\n' <<<"$CONTENDERS" | grep -c .)))
bound=$((READY_TIMEOUT + ${HOLD%.*} + 60))
budget=$((600 + nruns * (bound + 30)))
echo "bench-agent.sh: SIZES=$SIZES ROUNDS=$ROUNDS CONTENDERS=$CONTENDERS HOLD=$HOLD s"
echo "  $versions | nice $NICE | bound ${budget} s | results: $OUT"
rc=0
timeout -k 30 "$budget" "$PY" "$REPO/bench/agent/agentbench.py" --work "$WORK" --out "$OUT" \
  --sizes "$SIZES" --rounds "$ROUNDS" --contenders "$CONTENDERS" --seedctl "$seedctl" \
  --lt-py "$REPO/bench/agent/lt_seedmode.py" --python "$PY" --hold "$HOLD" --poll "$POLL" \
  --ready-timeout "$READY_TIMEOUT" --bound "$bound" --tracker-metrics "http://127.0.0.1:$tport/metrics" \
  --payload "$PAYLOAD bytes per torrent, piece $PIECE" --versions "$versions" &
driver=$!
wait "$driver" || rc=$?
driver=""
echo "results: $OUT (results.jsonl: every run; summary.md, summary.jsonl; logs/, tracker.log)"
exit "$rc"
