#!/usr/bin/env bash
# Side-by-side WebSocket (WebTorrent) tracker benchmark: npm bittorrent-tracker's WebSocket
# server (node) and webswarm's `tracker` (WebSocket on /announce) in one run, driven by the same
# load generator (bench/wsbench/wsload: PEERS WebSocket peers from many 127.0.0.x addresses,
# announcing with offers and answering every relayed offer). Each tracker is pinned to one core
# during the rounds and the load generators to the other, as scripts/bench-tracker.sh pins;
# the rounds alternate between the trackers (order flipped every round), so load from
# elsewhere on the machine hits both alike; medians over the rounds; prints a table with the
# ratios against bittorrent-tracker and the issue's goals (≥ 5× its announces/s with offers
# relayed, p99 ≤ 10 ms, ≤ 4 KB tracker RSS per connected WebSocket peer at 50,000 peers).
# Each round has two scenarios: "max", a closed loop of CONC announces in flight (throughput:
# the tracker's core saturated, where latency is only the queue), and "rate", RATE announces a
# second (the latency at a load both trackers can serve).
#
#   scripts/bench-ws.sh                          # bittorrent-tracker and webswarm (≈ 5 min)
#   QUICK=1 scripts/bench-ws.sh                  # smoke test: PEERS=2000 DUR=3 RUNS=1
#   TRACKER_BIN=/tmp/tracker scripts/bench-ws.sh # a prebuilt tracker instead of go build ./tracker
#   scripts/bench-ws.sh bittorrent-tracker       # one target alone (names: bittorrent-tracker webswarm)
#
# Environment (defaults in brackets):
#   PEERS [50000]   WebSocket peers connected to each tracker for the whole run; more than the
#                   file descriptor limit allows is lowered to fit, with a warning
#   SWARMS [PEERS/100]  torrents the peers are spread over;  SOURCES [250] source addresses
#   OFFERS [5]      offers per announce (what the webtorrent client sends); SDP_BYTES [500]
#   CONC [64]       announces in flight (closed loop);  DUR [10] seconds per scenario;  RUNS [5]
#   SETTLE [5]      seconds the peers stay idle before the tracker's RSS is read again
#   RATE [500]      announces a second of the "rate" scenario, about a third of what
#                   bittorrent-tracker serves on one core here (0 skips it)
#   TRACKER_BIN     webswarm's tracker binary [go build ./tracker]; TRACKER_ARGS extra flags
#   NICE [-10]      priority of the whole benchmark on a shared machine, as bench-tracker.sh
#   OUT             results directory [bench/wsbench/results/ws-YYYYmmdd-HHMMSS]
#
# Loopback only (127.0.0.1 and 127.0.0.x sources, free high ports); every step is bounded (the
# connect phase by wsload's -connect-max, each round by DUR and wsload's -timeout); trackers and
# load generators are stopped by PID. Installs what it needs (nodejs, npm with apt; npm
# bittorrent-tracker 11.2.3 with --ignore-scripts into bench/wsbench/btserver/node_modules).
set -euo pipefail
NICE=${NICE:--10}
if [[ $NICE != 0 && -z ${BENCH_SESSION:-} && $(id -u) == 0 ]]; then
  BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "bench-ws.sh: could not set the autogroup nice" >&2
fi
cd "$(dirname "$0")/.."
REPO=$(pwd)
WB=$REPO/bench/wsbench

declare -A need=([nodejs]=node [npm]=npm [iproute2]=ss [util-linux]=taskset [python3]=python3)
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
mapfile -t missing < <(apt_missing)
apt_install bench-ws.sh "${missing[@]}"
export PATH=$PATH:/usr/sbin:/sbin
if [[ $(nproc) -lt 2 ]]; then
  echo "bench-ws.sh: needs 2 CPUs (trackers pinned to one, load generators to the other)" >&2
  exit 2
fi
"$WB/btserver/install.sh"

if [[ ${QUICK:-0} == 1 ]]; then
  : "${PEERS:=2000}" "${DUR:=3}" "${RUNS:=1}"
fi
PEERS=${PEERS:-50000} DUR=${DUR:-10} RUNS=${RUNS:-5} CONC=${CONC:-64} OFFERS=${OFFERS:-5}
SOURCES=${SOURCES:-250} SDP_BYTES=${SDP_BYTES:-500} RATE=${RATE:-500} SETTLE=${SETTLE:-5}
scenarios=(0)
[[ $RATE -gt 0 ]] && scenarios+=("$RATE")
TRACKER_CPU=1 LOAD_CPU=0

# Every peer is a socket in its tracker and in its load generator: both need PEERS file
# descriptors and some headroom (webswarm's tracker keeps an eighth of its limit free).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
fit=$((nofile - nofile / 8 - 200))
PEERS_ASKED=$PEERS
if [[ $nofile != unlimited && $PEERS -gt $fit ]]; then
  echo "bench-ws.sh: WARNING: the file descriptor limit ($nofile, hard limit; raising it needs root outside a container's limits) leaves room for $fit WebSocket peers, not $PEERS: measuring at $fit" >&2
  PEERS=$fit
fi
SWARMS=${SWARMS:-$((PEERS / 100 > 0 ? PEERS / 100 : 1))}

OUT=${OUT:-$WB/results/ws-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
go build -o "$OUT/wsload" ./bench/wsbench/wsload

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(bittorrent-tracker webswarm)
if [[ " ${targets[*]} " == *" webswarm "* && -z ${TRACKER_BIN:-} ]]; then
  TRACKER_BIN=$OUT/tracker
  go build -o "$TRACKER_BIN" ./tracker
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_listening() { # port pid: up to 20 s
  for _ in $(seq 200); do
    ss -lnt "sport = :$1" | grep -q LISTEN && return 0
    [[ -d /proc/$2 ]] || return 1
    sleep 0.1
  done
  return 1
}

declare -A T_PID T_URL L_PID L_FD
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do [[ -d /proc/$p ]] || break; sleep 0.1; done
    [[ -d /proc/$p ]] && kill -KILL "$p" 2>/dev/null || true
  done
  rm -f "$OUT"/*.ctl # the control FIFOs
}
trap cleanup EXIT

start_bittorrent-tracker() { # bittorrent-tracker's WebSocket server alone (bench/wsbench/btserver)
  local port
  port=$(free_port)
  (cd "$WB/btserver" && exec node server.mjs "$port") >"$OUT/bittorrent-tracker.log" 2>&1 &
  T_PID[bittorrent-tracker]=$! T_URL[bittorrent-tracker]=ws://127.0.0.1:$port/announce
  echo "bittorrent-tracker: node $(node --version), npm bittorrent-tracker $(sed -n 's/^  "version": "\(.*\)".*/\1/p' "$WB/btserver/node_modules/bittorrent-tracker/package.json")" >"$OUT/bittorrent-tracker.cmdline"
  wait_listening "$port" "${T_PID[bittorrent-tracker]}"
}

# webswarm's tracker as bench-tracker.sh runs it (no NAT check, no peer limits, no access log),
# with the WebSocket connection caps off: the benchmark's peers come from SOURCES addresses.
start_webswarm() {
  local port args
  port=$(free_port)
  args=(--port "$port" --bind 127.0.0.1 --dfile "$OUT/webswarm-state.bencode" --logfile "" --nat_check 0
    --max_announce_rate 0 --max_peers_per_ip 0 --max_total_peers 0 --max_torrents 0 --max_peers 0
    --ws_max_connections 0 --ws_max_connections_per_ip 0)
  # shellcheck disable=SC2206
  [[ -n ${TRACKER_ARGS:-} ]] && args+=($TRACKER_ARGS)
  echo "$TRACKER_BIN ${args[*]}" >"$OUT/webswarm.cmdline"
  "$TRACKER_BIN" "${args[@]}" >"$OUT/webswarm.log" 2>&1 &
  T_PID[webswarm]=$! T_URL[webswarm]=ws://127.0.0.1:$port/announce
  wait_listening "$port" "${T_PID[webswarm]}"
}

# The trackers start one at a time and each gets its peers connected (unpinned, as
# bench-tracker.sh warms up) before the next starts. A wsload process per tracker keeps its
# peers for the whole run and runs one round per "go" line on its control FIFO.
names=()
for t in "${targets[@]}"; do
  if ! "start_$t"; then
    echo "bench-ws.sh: $t did not start listening; its log:" >&2
    tail -20 "$OUT/$t.log" >&2 || true
    continue
  fi
  PIDS+=("${T_PID[$t]}")
  mkfifo "$OUT/$t.ctl"
  exec {fd}<>"$OUT/$t.ctl"
  L_FD[$t]=$fd
  taskset -c "$LOAD_CPU" "$OUT/wsload" -name "$t" -url "${T_URL[$t]}" -pid "${T_PID[$t]}" -control \
    -peers "$PEERS" -swarms "$SWARMS" -sources "$SOURCES" -offers "$OFFERS" -sdp-bytes "$SDP_BYTES" \
    -conc "$CONC" -dur "${DUR}s" -settle "${SETTLE}s" -rounds $((RUNS * ${#scenarios[@]})) -connect-max 10m \
    <"$OUT/$t.ctl" >"$OUT/$t.txt" 2>"$OUT/$t.wsload.log" &
  L_PID[$t]=$!
  PIDS+=("${L_PID[$t]}")
  echo "=== $t: pid ${T_PID[$t]} ${T_URL[$t]}: connecting $PEERS peers"
  while ! grep -q ' ready ' "$OUT/$t.txt" 2>/dev/null; do
    if [[ ! -d /proc/${L_PID[$t]} ]]; then
      echo "bench-ws.sh: $t: wsload ended before its peers were connected:" >&2
      tail -5 "$OUT/$t.wsload.log" >&2 || true
      continue 2
    fi
    sleep 0.5 # bounded by wsload's -connect-max
  done
  grep ' ready ' "$OUT/$t.txt"
  names+=("$t")
done
[[ ${#names[@]} -gt 0 ]] || { echo "bench-ws.sh: no tracker to measure" >&2; exit 1; }

for t in "${names[@]}"; do taskset -a -p -c "$TRACKER_CPU" "${T_PID[$t]}" >/dev/null; done
declare -A done_rounds
for round in $(seq 1 "$RUNS"); do
  order=("${names[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do order+=("${names[i]}"); done
  fi
  for rate in "${scenarios[@]}"; do
    for t in "${order[@]}"; do
      n=$((${done_rounds[$t]:-0} + 1))
      done_rounds[$t]=$n
      echo "go $rate" >&"${L_FD[$t]}"
      # A scenario lasts DUR, then up to wsload's -timeout (5 s) for the last replies and answers.
      for _ in $(seq $((10 * (DUR + 30)))); do
        grep -q " round=$n " "$OUT/$t.txt" && break
        [[ -d /proc/${L_PID[$t]} ]] || break
        sleep 0.1
      done
      grep " round=$n " "$OUT/$t.txt" || echo "bench-ws.sh: $t: no result for round $round (rate $rate)" >&2
    done
  done
done
for t in "${names[@]}"; do echo quit >&"${L_FD[$t]}"; done
for t in "${names[@]}"; do
  for _ in $(seq 300); do [[ -d /proc/${L_PID[$t]} ]] || break; sleep 0.1; done
done

echo
echo "## WebSocket tracker benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, PEERS=$PEERS SWARMS=$SWARMS OFFERS=$OFFERS CONC=$CONC RATE=$RATE DUR=$DUR RUNS=$RUNS)"
echo
files=()
for t in "${names[@]}"; do files+=("$OUT/$t.txt"); done
python3 "$WB/summarize.py" --peers-asked "$PEERS_ASKED" "${files[@]}" | tee "$OUT/summary.md"
echo
echo "results: $OUT (<target>.txt: wsload's lines; <target>.log: the tracker's output)"
