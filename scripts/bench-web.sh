#!/usr/bin/env bash
# bench-web.sh: announce throughput through each way a site reaches the tracker — Apache HTTP
# proxy, Apache FastCGI (unix socket), nginx HTTP proxy, nginx FastCGI (unix socket) — side by
# side in one run with the same front end, same snippets, proxying a trivial fixed-reply backend
# (bench/web/ceiling, replying with as many bytes as the tracker does: the front end's own
# ceiling on this machine). Goal: the tracker path
# reaches >= 85 % of the ceiling on every path.
#
#   scripts/bench-web.sh                   # DUR=10 RUNS=3: about 6 minutes
#   DUR=5 RUNS=1 scripts/bench-web.sh      # a quick look
#
# The front ends run the e2e tests' main configs (e2e/testdata/web-apache.conf,
# web-nginx.conf.tmpl) with the shipped httpd-conf/ and nginx-conf/ snippets included
# unchanged. Everything listens on 127.0.0.1 high ports; every process it starts is stopped by
# PID on exit; every wait is bounded. Needs: go, wrk, apache2, nginx (scripts/test.sh installs
# the servers; apt-get install wrk).
#
# Environment (defaults in brackets):
#   DUR        seconds per measurement                                     [10]
#   RUNS       rounds; each round measures every target once (interleaved)  [3]
#   CONNS      wrk connections                                             [32]
#   TORRENTS   info_hashes in the synthetic population                     [1000]
#   PEERS      peers in the population (warmed into the tracker first)     [20000]
#   NUMWANT    numwant of every announce                                   [50]
#   NGINX_WORKERS  nginx worker_processes                                  [auto]
#   PATHS      the paths to measure        [apache-http apache-fcgi nginx-http nginx-fcgi]
#   TRACKER_BIN  a tracker binary to use instead of building ./tracker
#   TRACKER_ARGS extra tracker flags (word-split)
#   NICE       run every process of the bench under `nice -n NICE` (e.g. -10 as root, on a
#              machine shared with other work; the ratios are what count, not absolute rates)
#   OUT        results directory                                           [a new /tmp dir]
#   KEEP=1     keep OUT (logs, configs) after the run
# Output: one TB_WRK line per measurement in $OUT/results.txt, then the table (median rps).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DUR=${DUR:-10}
RUNS=${RUNS:-3}
CONNS=${CONNS:-32}
TORRENTS=${TORRENTS:-1000}
PEERS=${PEERS:-20000}
NUMWANT=${NUMWANT:-50}
NGINX_WORKERS=${NGINX_WORKERS:-auto}

for prog in go wrk apache2 nginx curl; do
  if ! command -v "$prog" >/dev/null && [[ ! -x /usr/sbin/$prog ]]; then
    echo "bench-web: $prog not found" >&2
    exit 1
  fi
done
export PATH=$PATH:/usr/sbin

RUN=()
[[ -n ${NICE:-} ]] && RUN=(nice -n "$NICE")
OUT=${OUT:-$(mktemp -d /tmp/webswarm-bench-web-XXXXXX)}
mkdir -p "$OUT/bin"
# The front ends' workers run as www-data when this runs as root: they must reach the sockets.
chmod 755 "$OUT"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$OUT"; else echo "bench-web: kept $OUT"; fi
}
trap cleanup EXIT

# freeport: a TCP port free on 127.0.0.1 and on ::1 (the test configs listen on both).
freeport() {
  python3 -c '
import socket
for _ in range(50):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    try:
        s6 = socket.socket(socket.AF_INET6); s6.bind(("::1", p)); s6.close(); print(p); break
    except OSError:
        pass
    finally:
        s.close()
'
}

# waitfor WHAT CMD...: run CMD every 0.1 s until it succeeds, at most 10 s.
waitfor() {
  local what=$1
  shift
  for _ in $(seq 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "bench-web: timed out waiting for $what" >&2
  exit 1
}

# cputicks PID: CPU time (user + system, clock ticks) used so far by PID and its children
# (the front ends' workers), so a run's CPU cost per request can be told apart from whatever
# else the machine is doing.
cputicks() {
  local p total=0 kids
  for p in "$1" $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
  done
  echo "$total"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

echo "bench-web: building tracker and ceiling" >&2
if [[ -n ${TRACKER_BIN:-} ]]; then cp "$TRACKER_BIN" "$OUT/bin/tracker"; else go build -o "$OUT/bin/tracker" ./tracker; fi
(cd bench/web/ceiling && go build -o "$OUT/bin/ceiling" .)

if [[ $(id -u) == 0 ]]; then WUSER=www-data WGROUP=www-data; else WUSER=$(id -un) WGROUP=$(id -gn); fi

# The backends: the tracker (HTTP + FastCGI unix socket) and the ceiling (the same).
TPORT=$(freeport)
# No NAT check (the synthetic peers listen nowhere) and no access log of its own (the front
# end logs every request already, as it would in a deployment).
"${RUN[@]}" "$OUT/bin/tracker" --port "$TPORT" --bind 127.0.0.1 --dfile "$OUT/tracker-state.bencode" \
  --nat_check 0 --logfile "" --fcgi "unix:$OUT/tracker.sock" ${TRACKER_ARGS:-} >"$OUT/tracker.log" 2>&1 &
PIDS+=($!)
declare -A PID
PID[tracker]=$!
waitfor tracker curl -sf "http://127.0.0.1:$TPORT/healthz"
waitfor "tracker socket" test -S "$OUT/tracker.sock"

declare -A URL
URL[direct/tracker]=http://127.0.0.1:$TPORT/announce
LUA=$ROOT/bench/trackerbench/wrk/announce.lua # the tracker bench's load script, shared
POP=(torrents="$TORRENTS" peers="$PEERS" numwant="$NUMWANT")

# Warm the tracker with the population (every slot announces at least once on average), so
# replies carry full peer lists from the first measurement on.
echo "bench-web: warming the tracker with $PEERS peers" >&2
"${RUN[@]}" wrk -t1 -c16 -d"$((PEERS / 4000 + 2))"s -s "$LUA" "${URL[direct/tracker]}" -- "${POP[@]}" started=100 >"$OUT/warm.log"

# The ceiling answers with a body as large as the tracker's average reply, so that the front
# end moves the same bytes for both: what differs is the tracker's own work.
line=$("${RUN[@]}" wrk -t1 -c4 -d2s -s "$LUA" "${URL[direct/tracker]}" -- "${POP[@]}" | grep '^TB_WRK')
size=$(sed -E 's/.* bytes_per_resp=([0-9]+).*/\1/' <<<"$line")
hdr=$(curl -s -o /dev/null -w '%{size_header}' "http://127.0.0.1:$TPORT/announce")
BODY=$((size - hdr))
((BODY >= 60)) || BODY=60
CPORT=$(freeport)
"${RUN[@]}" "$OUT/bin/ceiling" -http "127.0.0.1:$CPORT" -fcgi "unix:$OUT/ceiling.sock" -body "$BODY" >"$OUT/ceiling.log" 2>&1 &
PIDS+=($!)
PID[ceiling]=$!
waitfor ceiling curl -sf "http://127.0.0.1:$CPORT/"
waitfor "ceiling socket" test -S "$OUT/ceiling.sock"
URL[direct/ceiling]=http://127.0.0.1:$CPORT/announce
echo "bench-web: tracker replies average $BODY body bytes; the ceiling sends as many" >&2

# start_front SERVER MODE BACKEND: one front end with the shipped snippet for MODE (http|fcgi),
# pointing at BACKEND (tracker|ceiling).
start_front() {
  local server=$1 mode=$2 backend=$3 port dir snippet httpaddr sock
  port=$(freeport)
  dir=$OUT/$server-$mode-$backend
  mkdir -p "$dir/htdocs" "$dir/tmp"
  chmod 755 "$dir" "$dir/htdocs"
  if [[ $backend == tracker ]]; then
    httpaddr=127.0.0.1:$TPORT sock=$OUT/tracker.sock
  else
    httpaddr=127.0.0.1:$CPORT sock=$OUT/ceiling.sock
  fi
  if [[ $mode == http ]]; then snippet=webswarm-proxy.conf; else snippet=webswarm-fcgi.conf; fi
  case $server in
    apache)
      WS_DIR=$dir WS_PORT=$port WS_CONF=$ROOT/httpd-conf WS_SNIPPET=$snippet WS_USER=$WUSER WS_GROUP=$WGROUP \
        WEBSWARM_TRACKER=$httpaddr WEBSWARM_FCGI_SOCKET=$sock WEBSWARM_FCGI=127.0.0.1:9 \
        "${RUN[@]}" apache2 -f "$ROOT/e2e/testdata/web-apache.conf" -DFOREGROUND >"$dir/stdout.log" 2>&1 &
      PIDS+=($!)
      ;;
    nginx)
      sed -e "s|{{.Dir}}|$dir|g" -e "s|{{.Port}}|$port|g" -e "s|{{.Conf}}|$ROOT/nginx-conf|g" \
        -e "s|{{.Snippet}}|$snippet|g" -e "s|{{.Workers}}|$NGINX_WORKERS|g" \
        -e "s|{{.User}}|$WUSER|g" -e "s|{{.Group}}|$WGROUP|g" \
        "$ROOT/e2e/testdata/web-nginx.conf.tmpl" >"$dir/nginx.conf"
      # The one file an admin edits, with this run's addresses; keepalive as shipped.
      printf 'upstream webswarm_http {\n    server %s;\n    keepalive 32;\n}\nupstream webswarm_fcgi {\n    server unix:%s;\n    keepalive 32;\n}\n' \
        "$httpaddr" "$sock" >"$dir/webswarm-upstreams.conf"
      "${RUN[@]}" nginx -p "$dir/" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
      PIDS+=($!)
      ;;
  esac
  URL[$server-$mode/$backend]=http://127.0.0.1:$port/announce
  PID[$server-$mode/$backend]=$!
  waitfor "$server $mode $backend" curl -s -o /dev/null "http://127.0.0.1:$port/"
}

read -r -a PATHS <<<"${PATHS:-apache-http apache-fcgi nginx-http nginx-fcgi}"
for path in "${PATHS[@]}"; do
  for backend in tracker ceiling; do
    start_front "${path%-*}" "${path#*-}" "$backend"
  done
done

# Every path must answer real announces (200, no failure reason) before it is measured.
for path in direct "${PATHS[@]}"; do
  line=$("${RUN[@]}" wrk -t1 -c4 -d2s -s "$LUA" "${URL[$path/tracker]}" -- "${POP[@]}" verify=1 label="$path" | grep '^TB_WRK')
  if ! grep -q 'err_status=0 .*verify_non200=0 verify_failure=0' <<<"$line" || grep -q 'requests=0 ' <<<"$line"; then
    echo "bench-web: $path does not answer announces properly: $line" >&2
    exit 1
  fi
done

echo "bench-web: $RUNS round(s) of $DUR s per target, wrk -t1 -c$CONNS, numwant $NUMWANT" >&2
for round in $(seq "$RUNS"); do
  # Alternate which of the pair goes first, so a drift in machine load favours neither.
  if ((round % 2)); then pair=(tracker ceiling); else pair=(ceiling tracker); fi
  for path in "${PATHS[@]}" direct; do
    for backend in "${pair[@]}"; do
      fe0=0 be0=$(cputicks "${PID[$backend]}")
      [[ $path == direct ]] || fe0=$(cputicks "${PID[$path/$backend]}")
      "${RUN[@]}" wrk -t1 -c"$CONNS" -d"$DUR"s --latency -s "$LUA" "${URL[$path/$backend]}" -- "${POP[@]}" \
        label="$path/$backend@$round" >"$OUT/wrk-$round-$path-$backend.log"
      fe1=0 be1=$(cputicks "${PID[$backend]}")
      [[ $path == direct ]] || fe1=$(cputicks "${PID[$path/$backend]}")
      # CPU microseconds per request of the front end and of the backend during this run.
      grep '^TB_WRK' "$OUT/wrk-$round-$path-$backend.log" | awk -v fe=$(((fe1 - fe0) * TICK_US)) -v be=$(((be1 - be0) * TICK_US)) \
        '{ match($0, /requests=[0-9]+/); n = substr($0, RSTART + 9, RLENGTH - 9); if (n < 1) n = 1
           printf "%s fe_us=%.1f be_us=%.1f\n", $0, fe / n, be / n }' | tee -a "$OUT/results.txt" >&2
    done
  done
done

# Per path: median rps of each backend; the ratio is the median (and range) of each round's
# tracker/ceiling, the two measured back to back, so a drift in machine load between rounds
# cancels out. The CPU columns are medians of CPU microseconds per request (front end,
# backend); "CPU ratio" is (front end + ceiling) / (front end + tracker): the throughput ratio
# a CPU-bound machine would show, unaffected by other load on it.
awk '
  function median(arr, k,    i, j, t, a) {
    for (i = 1; i <= k; i++) a[i] = arr[i] + 0
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    lo = a[1]; hi = a[k]
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    split(f["label"], lr, "@"); rps[lr[1], lr[2]] = f["rps"]; rounds[lr[2]] = 1
    feus[lr[1], lr[2]] = f["fe_us"]; beus[lr[1], lr[2]] = f["be_us"]
    err[lr[1]] += f["err_status"] + f["err_connect"] + f["err_timeout"] }
  END {
    k = split(paths " direct", order, " ")
    printf "| path | tracker req/s | ceiling req/s | tracker / ceiling (range) | CPU µs/req: front end, tracker | front end, ceiling | CPU ratio |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= k; i++) {
      p = order[i]; n = 0
      delete tv; delete cv; delete rv; delete ft; delete bt; delete fc; delete bc
      for (r in rounds) {
        if (((p "/tracker", r) in rps) && ((p "/ceiling", r) in rps)) {
          n++; tv[n] = rps[p "/tracker", r]; cv[n] = rps[p "/ceiling", r]; rv[n] = 100 * tv[n] / cv[n]
          ft[n] = feus[p "/tracker", r]; bt[n] = beus[p "/tracker", r]
          fc[n] = feus[p "/ceiling", r]; bc[n] = beus[p "/ceiling", r]
        }
      }
      if (n == 0) continue
      t = median(tv, n); c = median(cv, n); q = median(rv, n); qlo = lo; qhi = hi
      a = median(ft, n); b = median(bt, n); x = median(fc, n); y = median(bc, n)
      printf "| %s | %.0f | %.0f | %.0f %% (%.0f–%.0f)%s | %.0f + %.0f | %.0f + %.0f | %.0f %% |\n",
        p, t, c, q, qlo, qhi, (err[p "/tracker"] ? " errors!" : ""), a, b, x, y, 100 * (x + y) / (a + b)
    }
  }' paths="${PATHS[*]}" "$OUT/results.txt"
echo "(median of $RUNS x ${DUR}s; wrk -t1 -c$CONNS keep-alive; numwant $NUMWANT, $BODY-byte replies from both backends; $(nproc) CPUs shared by wrk, front end and backend)"
