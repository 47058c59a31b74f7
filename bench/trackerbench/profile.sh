#!/usr/bin/env bash
# Where webswarm's tracker spends its time and memory under the trackerbench load: starts
# `tracker` (targets.sh start_webswarm), warms PEERS peers, pins it to TRACKER_CPU and, for each
# scenario, runs the load for DUR seconds on LOAD_CPU while `perf record` samples the tracker
# (Go binaries keep frame pointers and symbols, so perf needs no help from the program).
# Then it warms PEERS_BIG peers and writes a memory breakdown (RSS, smaps, Go memstats from
# /metrics, a heap profile if the tracker serves /debug/pprof/heap).
#
#   bench/trackerbench/profile.sh                 # DUR=10 PEERS=100000 PEERS_BIG=1000000
#   PROFILE_SCENARIOS="ka scrape" PEERS_BIG=0 bench/trackerbench/profile.sh
#
# Scenarios: ka (HTTP announce keep-alive), close (Connection: close), scrape (1 hash), udp.
# Output: $PROF_OUT (default results/profile-YYYYmmdd-HHMMSS)/perf-SC.txt (self and
# cumulative top), mem.txt. Needs perf (Debian linux-perf) and wrk. Loopback only, bounded,
# the tracker is stopped by PID.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DUR=${DUR:-10}
TORRENTS=${TORRENTS:-1000}
PEERS=${PEERS:-100000}
PEERS_BIG=${PEERS_BIG:-1000000}
NUMWANT=${NUMWANT:-50}
CONNS=${CONNS:-64}
TRACKER_CPU=${TRACKER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
PROFILE_SCENARIOS=${PROFILE_SCENARIOS:-ka close scrape udp}
PROF_OUT=${PROF_OUT:-$HERE/results/profile-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$PROF_OUT"
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "profile.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }

TL=${TRACKERLOAD:-$PROF_OUT/trackerload}
[[ -x $TL ]] || (cd "$REPO" && go build -o "$TL" ./bench/trackerbench/trackerload)
TB_WORK=$(mktemp -d /tmp/trackerprof.XXXXXX)
export TB_WORK TB_HERE=$HERE
# shellcheck source=targets.sh
source "$HERE/targets.sh"
TARGET_PID=""
cleanup() {
  [[ -n $TARGET_PID ]] && kill -TERM "$TARGET_PID" 2>/dev/null || true
  for _ in $(seq 50); do [[ -n $TARGET_PID && -d /proc/$TARGET_PID ]] || break; sleep 0.1; done
  [[ -n $TARGET_PID && -d /proc/$TARGET_PID ]] && kill -KILL "$TARGET_PID" 2>/dev/null || true
  # the work dir holds the trackers' state files and logs; KEEP_WORK=1 keeps it
  [[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$TB_WORK"
}
trap cleanup EXIT

start_webswarm
BASE=${TARGET_HTTP%/announce}
for _ in $(seq 100); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "tracker pid $TARGET_PID at $BASE; results $PROF_OUT"

warm() { "$TL" warm -udp "$TARGET_UDP" -from "$1" -to "$2" -peers "$2" -torrents "$TORRENTS" -c 16 -max 10m; }
warm 0 "$PEERS"
taskset -a -p -c "$TRACKER_CPU" "$TARGET_PID" >/dev/null
sleep 2 # the Go runtime notices the new affinity (GOMAXPROCS follows it)

LUA=$HERE/wrk/announce.lua
for sc in $PROFILE_SCENARIOS; do
  luaargs=(-s "$LUA" "$TARGET_HTTP" -- torrents="$TORRENTS" peers="$PEERS" numwant="$NUMWANT" label="$sc")
  case $sc in
    ka) load=(wrk -t1 -c "$CONNS" -d "${DUR}s" --latency "${luaargs[@]}") ;;
    close) load=(wrk -t1 -c "$CONNS" -d "${DUR}s" --latency -H "Connection: close" "${luaargs[@]}") ;;
    scrape) load=(wrk -t1 -c "$CONNS" -d "${DUR}s" --latency "${luaargs[@]}" scrape=100) ;;
    udp) load=("$TL" udp -addr "$TARGET_UDP" -c 16 -d "${DUR}s" -torrents "$TORRENTS" -peers "$PEERS" -numwant "$NUMWANT") ;;
    *) echo "unknown scenario $sc" >&2; exit 2 ;;
  esac
  echo "== $sc"
  timeout $((DUR + 30)) taskset -c "$LOAD_CPU" "${load[@]}" >"$PROF_OUT/load-$sc.log" 2>&1 &
  lp=$!
  sleep 1 # profile the steady state, not the connection set-up
  timeout $((DUR + 30)) perf record -q -F 999 -g -p "$TARGET_PID" -o "$PROF_OUT/perf-$sc.data" -- sleep $((DUR - 2)) 2>/dev/null || true
  wait "$lp" || true
  grep -E '^TB_(WRK|UDP)' "$PROF_OUT/load-$sc.log" | head -1
  { # (head closes the pipe early: no pipefail here)
    set +o pipefail
    echo "# $sc: self time by function (top)"
    perf report -i "$PROF_OUT/perf-$sc.data" --stdio --no-children --percent-limit 0.7 -g none 2>/dev/null | grep -vE '^#|^$' | head -60
    echo
    echo "# $sc: cumulative (children) by function (top)"
    perf report -i "$PROF_OUT/perf-$sc.data" --stdio --children --percent-limit 3 -g none 2>/dev/null | grep -vE '^#|^$' | head -80
    set -o pipefail
  } >"$PROF_OUT/perf-$sc.txt"
  sed -n 1,25p "$PROF_OUT/perf-$sc.txt"
  sleep 1
done

mem() { # label peers
  {
    echo "## $1 ($2 peers)"
    grep -E '^(VmRSS|VmHWM|RssAnon|RssFile)' "/proc/$TARGET_PID/status"
    grep -E '^(Rss|Anonymous|Private_Dirty)' "/proc/$TARGET_PID/smaps_rollup" 2>/dev/null || true
    curl -fsS "$BASE/metrics" 2>/dev/null | grep -E '^go_(memstats_(heap_(alloc|inuse|idle|released|sys)|sys|stack_inuse|mspan_inuse|gc_sys|other_sys)_bytes|gc_duration_seconds_count|goroutines)|^go_memstats_heap_objects' || true
    echo
  } | tee -a "$PROF_OUT/mem.txt"
}
mem warm "$PEERS"
if [[ $PEERS_BIG -gt $PEERS ]]; then
  taskset -a -p -c "0-$(($(nproc) - 1))" "$TARGET_PID" >/dev/null
  warm "$PEERS" "$PEERS_BIG"
  sleep 5
  mem warm "$PEERS_BIG"
fi
if curl -fsS -o "$PROF_OUT/heap.pprof" "$BASE/debug/pprof/heap" 2>/dev/null; then
  go tool pprof -top -sample_index=inuse_space "$PROF_OUT/heap.pprof" 2>/dev/null | sed -n 1,30p | tee -a "$PROF_OUT/mem.txt"
else
  echo "(no /debug/pprof/heap on the tracker: memory from /proc and /metrics only)" | tee -a "$PROF_OUT/mem.txt"
fi
echo "profile results: $PROF_OUT"
