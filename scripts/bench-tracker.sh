#!/usr/bin/env bash
# Side-by-side tracker benchmark: Debian's opentracker and webswarm's `tracker` in one run, with
# bench/trackerbench (wrk + Lua for HTTP, trackerload for UDP and warm-up), each tracker pinned to
# one core and the load generator on the other; prints a table of ratios against opentracker.
# Both trackers run at once and every scenario alternates between them round by round
# (bench/trackerbench/interleave.sh), so load from elsewhere on the machine hits both alike;
# SEQUENTIAL=1 uses suite.sh instead (one tracker after the other).
#
#   scripts/bench-tracker.sh                     # opentracker webswarm, full (≈ 10 min per tracker)
#   QUICK=1 scripts/bench-tracker.sh             # smoke test: DUR=3 RUNS=1 PEERS_BIG=0 (≈ 1 min each)
#   scripts/bench-tracker.sh opentracker         # any targets of bench/trackerbench/targets.sh;
#                                                # ratios are against the first one
#   scripts/bench-tracker.sh opentracker webswarm-redis webswarm-redis-cluster chihaya-redis
#                                  # shared stores: a redis-server (or a 3-master cluster) per
#                                  # target, pinned to the other core than its tracker, its CPU
#                                  # per request reported apart ("store CPU µs/req")
#
# Environment (defaults in brackets; every bench/trackerbench/run.sh variable passes through):
#   QUICK=1        DUR=3 RUNS=1 PEERS_BIG=0 unless those are set
#   DUR [10] RUNS [3]  seconds per measurement, interleaved rounds
#   TORRENTS [1000] PEERS [100000] PEERS_BIG [1000000] NUMWANT [50]
#   SCENARIOS      [http-ka-pin http-close-pin http-scrape-pin udp-pin]
#   BIG_SCENARIOS  [http-ka-pin udp-pin]   (repeated at PEERS_BIG)
#   SUITE_OUT      results directory [bench/trackerbench/results/suite-YYYYmmdd-HHMMSS]
#   NICE [-10]     priority of the whole benchmark on a shared machine (0: leave it alone): the
#                  script runs in its own session (setsid) and sets its autogroup's nice, since
#                  with autogroups (Linux default) a plain nice only counts inside one session
#                  and other sessions' builds would still take half the CPU; the trackers' and
#                  load generator's own nice is set too (run.sh NICE). Root only.
#   WEBSWARM_ARGS  extra flags for tracker; WEBSWARM_BIN a prebuilt tracker instead of go build
#   CHIHAYA_BIN    a chihaya binary, for the chihaya-redis target (skipped, saying so, without it)
#   PROFILE=1      afterwards, profile webswarm's tracker under the same load with perf
#                  (bench/trackerbench/profile.sh: CPU by function per scenario, memory at PEERS_BIG)
#
# Loopback only (127.0.0.1, free high ports); every step is bounded by DUR or a slot count; the
# trackers are stopped by PID. Installs what it needs (wrk, opentracker, bc, iproute2) with apt
# when missing.
set -euo pipefail
NICE=${NICE:--10}
if [[ $NICE != 0 && -z ${BENCH_SESSION:-} && $(id -u) == 0 ]]; then
  BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "bench-tracker.sh: could not set the autogroup nice" >&2
fi
cd "$(dirname "$0")/.."
REPO=$(pwd)
TB=$REPO/bench/trackerbench

# Debian packages this benchmark runs, by the command that proves each is present.
declare -A need=([wrk]=wrk [opentracker]=opentracker [bc]=bc [iproute2]=ss [util-linux]=taskset [curl]=curl [redis-server]=redis-server [redis-tools]=redis-cli)
[[ ${PROFILE:-0} == 1 ]] && need[linux-perf]=perf
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
mapfile -t missing < <(apt_missing)
apt_install bench-tracker.sh "${missing[@]}"
export PATH=$PATH:/usr/sbin:/sbin
if [[ $(nproc) -lt 2 ]]; then
  echo "bench-tracker.sh: needs 2 CPUs (tracker pinned to one, load generator to the other)" >&2
  exit 2
fi

if [[ ${QUICK:-0} == 1 ]]; then
  : "${DUR:=3}" "${RUNS:=1}" "${PEERS_BIG:=0}"
fi
export DUR=${DUR:-10} RUNS=${RUNS:-3} TORRENTS=${TORRENTS:-1000} PEERS=${PEERS:-100000}
export PEERS_BIG=${PEERS_BIG:-1000000} NUMWANT=${NUMWANT:-50}
export SCENARIOS=${SCENARIOS:-http-ka-pin http-close-pin http-scrape-pin udp-pin}
export BIG_SCENARIOS=${BIG_SCENARIOS:-http-ka-pin udp-pin}
export NICE
export SUITE_OUT=${SUITE_OUT:-$TB/results/suite-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$SUITE_OUT"

# The load generator, built once into the results directory (not into the source tree).
export TRACKERLOAD=$SUITE_OUT/trackerload
go build -o "$TRACKERLOAD" ./bench/trackerbench/trackerload

[[ $# -gt 0 ]] || set -- opentracker webswarm
targets=()
for t in "$@"; do
  # chihaya is not packaged: its target needs CHIHAYA_BIN (a chihaya binary) and is skipped
  # without it, saying so.
  if [[ $t == chihaya* && ! -x ${CHIHAYA_BIN:-} ]]; then
    echo "bench-tracker.sh: skipping $t: CHIHAYA_BIN is not set to a chihaya binary" >&2
    continue
  fi
  targets+=("$t")
done
if [[ " ${targets[*]} " == *" webswarm"* && -z ${WEBSWARM_BIN:-} ]]; then
  # Build before any measurement: a compile error should not cost a whole opentracker run.
  export WEBSWARM_BIN=$SUITE_OUT/tracker
  go build -o "$WEBSWARM_BIN" ./tracker
fi

echo "bench-tracker.sh: ${targets[*]}: DUR=$DUR RUNS=$RUNS TORRENTS=$TORRENTS PEERS=$PEERS PEERS_BIG=$PEERS_BIG NUMWANT=$NUMWANT"
echo "  scenarios: $SCENARIOS | big: $BIG_SCENARIOS | nice $NICE | results: $SUITE_OUT"
driver=$TB/interleave.sh
[[ ${SEQUENTIAL:-0} == 1 ]] && driver=$TB/suite.sh
timeout -k 10 $((3600 + 20 * DUR * RUNS)) "$driver" "${targets[@]}" ||
  echo "bench-tracker.sh: $(basename "$driver") failed (rc $?): the table below has what finished" >&2

dirs=()
for t in "${targets[@]}"; do
  [[ -f $SUITE_OUT/$t/results.txt ]] && dirs+=("$SUITE_OUT/$t")
done
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "bench-tracker.sh: no results" >&2
  exit 1
fi
echo
echo "## Ratios (one run, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, DUR=$DUR RUNS=$RUNS)"
echo
python3 "$TB/ratios.py" "${dirs[@]}" | tee "$SUITE_OUT/ratios.md"
echo
echo "results: $SUITE_OUT (compare.md: every scenario; <target>/summary.md: latency, CPU per request)"
if [[ ${PROFILE:-0} == 1 ]]; then
  echo
  echo "## Profile of webswarm (perf, DUR=$DUR)"
  PROF_OUT=$SUITE_OUT/profile timeout -k 10 $((1800 + 10 * DUR)) "$TB/profile.sh"
fi
