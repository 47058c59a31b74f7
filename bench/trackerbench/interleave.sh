#!/usr/bin/env bash
# trackerbench, interleaved: start every named target (targets.sh) at once, warm each, then run
# every scenario round by round, alternating the targets inside each round (the order flips
# every round). Other load on the machine then hits all targets alike, which suite.sh (one
# target after the other) cannot promise. All trackers stay pinned to TRACKER_CPU during the
# measurements (an idle tracker costs nothing); warm-ups run unpinned.
#
#   ./interleave.sh opentracker webswarm         # all run.sh variables pass through
#
# Results: $SUITE_OUT/<name>/ (as run.sh writes them) and $SUITE_OUT/compare.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export TB_HERE=$HERE
TL=${TRACKERLOAD:-$HERE/trackerload/trackerload}
export TRACKERLOAD=$TL
[[ -x $TL ]] || (cd "$HERE/trackerload" && go build -o trackerload .)
[[ $# -ge 1 ]] || { echo "usage: interleave.sh TARGET..." >&2; exit 2; }
SUITE_OUT=${SUITE_OUT:-$HERE/results/suite-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$SUITE_OUT"
TB_WORK=$(mktemp -d /tmp/trackerbench.XXXXXX)
chmod 755 "$TB_WORK"
export TB_WORK
# shellcheck source=targets.sh
source "${TARGETS:-$HERE/targets.sh}"
# shellcheck source=run.sh
TB_RUN_LIB=1 source "$HERE/run.sh"

declare -A T_PID T_STORE T_HTTP T_UDP
ALL_PIDS=""
cleanup() {
  local p
  for p in $ALL_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $ALL_PIDS; do
    for _ in $(seq 50); do [[ -d /proc/$p ]] || break; sleep 0.1; done
    [[ -d /proc/$p ]] && kill -KILL "$p" 2>/dev/null || true
  done
  # the work dir holds the trackers' state files and logs; KEEP_WORK=1 keeps it
  [[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$TB_WORK"
}
trap cleanup EXIT

use() { # make target $1 the current one for run.sh's functions
  NAME=$1 PID=${T_PID[$1]} STORE_PID=${T_STORE[$1]} HTTP_URL=${T_HTTP[$1]} UDP_ADDR=${T_UDP[$1]}
  OUT=$SUITE_OUT/$1 RES=$SUITE_OUT/$1/results.txt RSSF=$SUITE_OUT/$1/rss.txt
  if [[ -n $WARM_VIA_SET ]]; then WARM_VIA=$WARM_VIA_SET
  elif [[ $UDP_ADDR != - ]]; then WARM_VIA=udp
  else WARM_VIA=http; fi
}
pin_all() { local n; for n in "${names[@]}"; do use "$n"; pin; done; PINNED=1; }
unpin_all() { local n; for n in "${names[@]}"; do use "$n"; unpin; done; PINNED=0; }

names=()
for name in "$@"; do
  TARGET_PID="" STORE_PID="" TARGET_HTTP=- TARGET_UDP=- RUN_ENV=()
  "start_$name"
  ALL_PIDS+=" $TARGET_PID $STORE_PID"
  wait_listening "$TARGET_HTTP" "$TARGET_UDP"
  T_PID[$name]=$TARGET_PID T_STORE[$name]=$STORE_PID T_HTTP[$name]=$TARGET_HTTP T_UDP[$name]=$TARGET_UDP
  names+=("$name")
  echo "=== $name: pid(s) $TARGET_PID http=$TARGET_HTTP udp=$TARGET_UDP"
done
sleep 0.5

for n in "${names[@]}"; do
  use "$n"
  run_init
  unpin
  sanity_check
  record_rss start 0
done
PINNED=0
for n in "${names[@]}"; do
  use "$n"
  warm 0 "$PEERS"
  record_rss warm_now "$PEERS"
done
sleep "$RSS_SETTLE"
for n in "${names[@]}"; do
  use "$n"
  record_rss warm_settled "$PEERS"
  verify_replies
done

# order NAMES... ROUND: the targets in round order (reversed on even rounds)
order() {
  local r=$1
  shift
  if ((r % 2 == 1)); then
    echo "$@"
  else
    local out=() i
    for ((i = $#; i >= 1; i--)); do out+=("${!i}"); done
    echo "${out[@]}"
  fi
}
interleaved_phase() { # phase pop scenarios...
  local phase=$1 pop=$2 round sc n
  shift 2
  pin_all
  for round in $(seq 1 "$RUNS"); do
    for sc in "$@"; do
      for n in $(order "$round" "${names[@]}"); do
        use "$n"
        PINNED=1
        measure "$phase" "$pop" "$sc" "$round"
      done
    done
  done
}

# shellcheck disable=SC2086
interleaved_phase main "$PEERS" $SCENARIOS
for n in "${names[@]}"; do use "$n"; record_rss after_main "$PEERS"; done

if [[ $PEERS_BIG -gt $PEERS ]]; then
  unpin_all
  for n in "${names[@]}"; do
    use "$n"
    warm "$PEERS" "$PEERS_BIG"
    record_rss warm_now "$PEERS_BIG"
  done
  sleep "$RSS_SETTLE"
  for n in "${names[@]}"; do use "$n"; record_rss warm_settled "$PEERS_BIG"; done
  # shellcheck disable=SC2086
  interleaved_phase big "$PEERS_BIG" $BIG_SCENARIOS
  for n in "${names[@]}"; do use "$n"; record_rss after_big "$PEERS_BIG"; done
fi
unpin_all

dirs=()
for n in "${names[@]}"; do
  use "$n"
  python3 "$HERE/summarize.py" "$OUT" >"$OUT/summary.md"
  dirs+=("$OUT")
done
python3 "$HERE/summarize.py" "${dirs[@]}" --base "${names[0]}" | tee "$SUITE_OUT/compare.md"
echo "interleave results: $SUITE_OUT"
