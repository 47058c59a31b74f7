#!/usr/bin/env bash
# Side-by-side seeding benchmark (issue #6): seedctl, aria2 and libtorrent seed the same torrent to
# the same libtorrent downloader, and libtorrent and seedctl download it from the same aria2
# seeder, in one run of interleaved rounds (so load from elsewhere on the machine hits every
# client alike). Prints a table per direction and the ratios against the issue's targets:
#   seedctl seeding   >= 1.1 x the faster of aria2 and libtorrent seeding   (MB/s, median)
#   seedctl getting   >= 1.0 x libtorrent getting, both from aria2
#   seedctl seeder peak RSS (VmHWM) <= 30 MB
# with the seeders' CPU seconds per GiB uploaded next to their rates. The driver is
# bench/seed/seedbench.py (see its header for what each column measures).
#
#   scripts/bench-seed.sh                     # 1 GiB payload, 3 rounds
#   QUICK=1 scripts/bench-seed.sh             # smoke test: 256 MiB, 1 round
#   QUICK=1 SIZE=64M SEEDERS="aria2 lt" GETTERS=lt scripts/bench-seed.sh   # peers only
#   TRACKER=opentracker GETTER_IP=127.0.0.2 GETTERS="" scripts/bench-seed.sh  # the deployed setup
#
# Environment (defaults in brackets):
#   SIZE [1G]        payload size (numfmt --from=iec: 64M, 256M, 1G); QUICK=1: 256M
#   ROUNDS [3]       interleaved rounds; QUICK=1: 1
#   SEEDERS ["aria2 lt seedctl"]  seeders of the seed direction (downloader: libtorrent)
#   GETTERS ["lt seedctl"]        downloaders of the get direction (seeder: aria2); "" = none
#   PIECE [auto]     piece length as log2 (18 = 256 KiB); auto = seedctl make's rule (1 GiB: 1 MiB)
#   TRACKER [mini]   each seeder's tracker: mini (bench/seed/minitracker.py, in the driver) or
#                    opentracker (Debian's, one per seeder on a free port; installed when missing)
#   GETTER_IP [127.0.0.1]  the libtorrent downloader's loopback address; 127.0.0.2 puts it on
#                    "another host" (its own address at the tracker and on the seeder's socket)
#   OUT              results directory [bench/results/seed-YYYYmmdd-HHMMSS]
#   SEEDCTL_BIN      a prebuilt seedctl instead of `go build ./seedctl` (GOFLAGS passes through)
#   SEEDCTL_BASE     another seedctl build that seeds beside the others as seeder "seedctl-base",
#                    for an A/B of two builds in one run of interleaved rounds (ratio A/B)
#   GET_TIMEOUT      seconds per download [60 + SIZE / 5 MB/s]
#   NICE [-10]       priority of the whole benchmark on a shared machine (0: leave it alone):
#                    as in bench-tracker.sh, its own session (setsid) and autogroup nice. Root only.
#
# Loopback only (127.0.0.1, free high ports, one small tracker per seeder inside the driver).
# Every client runs under timeout(1) and is stopped by its process group id; the payload,
# downloads and the seedctl build live in a temporary directory removed on exit. A seedctl that
# does not build, or has no `seed --data` / `get --exit-on-complete`, is left out with a
# warning (its ratios read n/a). Installs what it needs (aria2, python3-libtorrent, mktorrent,
# time) with apt when missing. Exit status: 0 when every seeder started and every transfer
# completed byte-identical; targets missed are reported, not an error.
set -euo pipefail
NICE=${NICE:--10}
if [[ $NICE != 0 && -z ${BENCH_SESSION:-} && $(id -u) == 0 ]]; then
  BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "bench-seed.sh: could not set the autogroup nice" >&2
fi
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=/usr/bin/python3 # the system Python: python3-libtorrent is a Debian package
LT_PY=$REPO/e2e/testdata/clients/lt.py

# Debian packages this benchmark runs, by the command that proves each is present.
TRACKER=${TRACKER:-mini}
GETTER_IP=${GETTER_IP:-127.0.0.1}
if [[ $TRACKER != mini && $TRACKER != opentracker ]]; then
  echo "bench-seed.sh: TRACKER=$TRACKER: want mini or opentracker" >&2
  exit 2
fi
if ! [[ $GETTER_IP =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "bench-seed.sh: GETTER_IP=$GETTER_IP: want a loopback address such as 127.0.0.2" >&2
  exit 2
fi
declare -A need=([aria2]=aria2c [mktorrent]=mktorrent [time]=/usr/bin/time [diffutils]=cmp
  [coreutils]=numfmt [python3]=$PY)
[[ $TRACKER == opentracker ]] && need[opentracker]=opentracker
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
mapfile -t missing < <(apt_missing; apt_missing_libtorrent "$PY")
apt_install bench-seed.sh "${missing[@]}"

if [[ ${QUICK:-0} == 1 ]]; then
  : "${SIZE:=256M}" "${ROUNDS:=1}"
fi
SIZE=${SIZE:-1G}
ROUNDS=${ROUNDS:-3}
PIECE=${PIECE:-auto}
SEEDERS=${SEEDERS-aria2 lt seedctl}
GETTERS=${GETTERS-lt seedctl}
SEEDERS=${SEEDERS//,/ } GETTERS=${GETTERS//,/ }
if ! bytes=$(numfmt --from=iec "$SIZE" 2>/dev/null) || [[ $bytes -lt 1 ]]; then
  echo "bench-seed.sh: SIZE=$SIZE: want a size such as 64M, 256M or 1G" >&2
  exit 2
fi
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
  echo "bench-seed.sh: ROUNDS=$ROUNDS: want a positive integer" >&2
  exit 2
fi
OUT=${OUT:-$REPO/bench/results/seed-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/seedbench.XXXXXX")
driver=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $driver ]] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$driver" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$driver" 2>/dev/null || true
  fi
  # Process groups the driver started (each led by timeout(1)) that outlived it.
  if [[ -f $WORK/pgids ]]; then
    while read -r pg; do
      if [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pg/cmdline") == timeout* ]]; then
        kill -KILL -- "-$pg" 2>/dev/null || true
      fi
    done <"$WORK/pgids"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Room for the payload and one download at a time (plus seedctl's build and state).
avail=$(($(df -Pk "$WORK" | awk 'NR==2 {print $4}') * 1024))
if [[ $avail -lt $((2 * bytes + (256 << 20))) ]]; then
  echo "bench-seed.sh: $WORK has $((avail >> 20)) MiB free, needs $(((2 * bytes >> 20) + 256)) MiB" >&2
  exit 2
fi

# seedctl: built first, so a compile error costs no benchmark time; left out if it cannot seed.
want_seedctl=0
[[ " $SEEDERS $GETTERS " == *" seedctl "* ]] && want_seedctl=1
seedctl=""
seedctl_version="not run"
if [[ $want_seedctl == 1 ]]; then
  if [[ -n ${SEEDCTL_BIN:-} ]]; then
    seedctl=$SEEDCTL_BIN
  elif timeout 900 go build -o "$WORK/seedctl" ./seedctl; then
    seedctl=$WORK/seedctl
  else
    echo "bench-seed.sh: WARNING: seedctl does not build: left out" >&2
  fi
  if [[ -n $seedctl ]]; then
    seed_help=$("$seedctl" seed --help 2>&1 || true)
    get_help=$("$seedctl" get --help 2>&1 || true)
    if [[ $seed_help != *--data* || $get_help != *--exit-on-complete* ]]; then
      echo "bench-seed.sh: WARNING: $seedctl has no 'seed --data' / 'get --exit-on-complete' yet: left out" >&2
      seedctl=""
    fi
  fi
  if [[ -n $seedctl ]]; then
    seedctl_version=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
  else
    seedctl_version="left out"
    SEEDERS=$(tr ' ' '\n' <<<"$SEEDERS" | grep -vx seedctl | xargs || true)
    GETTERS=$(tr ' ' '\n' <<<"$GETTERS" | grep -vx seedctl | xargs || true)
  fi
fi

if [[ -n ${SEEDCTL_BASE:-} ]]; then
  if [[ ! -x $SEEDCTL_BASE ]]; then
    echo "bench-seed.sh: SEEDCTL_BASE=$SEEDCTL_BASE: not an executable" >&2
    exit 2
  fi
  SEEDERS="$SEEDERS seedctl-base"
fi
csv() { xargs <<<"$1" | tr ' ' ','; }
seeders=$(csv "$SEEDERS")
getters=$(csv "$GETTERS")
if [[ -z $seeders && -z $getters ]]; then
  echo "bench-seed.sh: nothing to run (SEEDERS and GETTERS empty)" >&2
  exit 2
fi
versions="aria2 $(aria2c --version | awk 'NR==1 {print $3}'), libtorrent $($PY -c 'import libtorrent; print(libtorrent.__version__)'), seedctl $seedctl_version"

# Bounds: every seeder's check, then every transfer of every round, each with room to spare.
get_timeout=${GET_TIMEOUT:-$((60 + bytes / 5000000))}
ready_timeout=$((60 + bytes / 20000000))
ntransfers=$(($(wc -w <<<"${seeders//,/ }") + $(wc -w <<<"${getters//,/ }")))
budget=$((600 + 4 * ready_timeout + ROUNDS * ntransfers * (get_timeout + 60)))

echo "bench-seed.sh: SIZE=$SIZE ($bytes bytes) ROUNDS=$ROUNDS PIECE=$PIECE seeders=$seeders getters=$getters"
echo "  tracker $TRACKER, libtorrent downloader at $GETTER_IP"
echo "  $versions | nice $NICE | bound ${budget} s | results: $OUT"
rc=0
timeout -k 30 "$budget" "$PY" "$REPO/bench/seed/seedbench.py" --work "$WORK" --out "$OUT" \
  ${SEEDCTL_BASE:+--seedctl-base "$SEEDCTL_BASE"} \
  --size "$bytes" --rounds "$ROUNDS" --seeders "$seeders" --getters "$getters" \
  --piece "$PIECE" --lt-py "$LT_PY" --tracker "$TRACKER" --getter-ip "$GETTER_IP" ${seedctl:+--seedctl "$seedctl"} \
  --get-timeout "$get_timeout" --ready-timeout "$ready_timeout" --budget "$budget" \
  --versions "$versions" &
driver=$!
wait "$driver" || rc=$?
driver=""
echo "results: $OUT (results.jsonl: every transfer; summary.md, summary.jsonl; logs/)"
exit "$rc"
