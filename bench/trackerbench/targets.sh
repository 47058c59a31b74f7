# trackerbench targets, sourced by suite.sh. Each target NAME defines start_NAME, which must set
#   TARGET_PID   PID(s) of the server process(es) (space separated; used for RSS, CPU time, pinning)
#   STORE_PID    optional PID(s) of its store (redis-server): pinned to the other core, CPU apart
#   TARGET_HTTP  announce URL or "-"          TARGET_UDP  host:port or "-"
#   RUN_ENV      optional array of VAR=value passed to run.sh (e.g. NO_WARM=1 SCENARIOS=...)
# and may define stop_NAME (default: kill -TERM the PIDs in TARGET_PID and wait).
# Work files go to $TB_WORK/NAME (suite.sh sets TB_WORK to a fresh temp dir).
#
# To benchmark your own tracker add, e.g.:
# (start_webswarm below is the one for this repository's tracker.)
#   start_mytracker() {
#     /path/to/mytracker -http 127.0.0.1:16990 -udp 127.0.0.1:16990 >"$TB_WORK/mytracker.log" 2>&1 &
#     TARGET_PID=$!; TARGET_HTTP=http://127.0.0.1:16990/announce; TARGET_UDP=127.0.0.1:16990
#   }
# then: ./suite.sh opentracker mytracker   (ratios are against the first name)

TB_HERE=${TB_HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
TB_REPO=${TB_REPO:-$(cd "$TB_HERE/../.." && pwd)}

# free_port: a high loopback port free for both TCP and UDP a moment ago (trackers serve both on it).
# wait_listening HTTP_URL UDP_ADDR: poll the target's listening sockets for up to 15 s ("-"
# skips a protocol). Shared by suite.sh and interleave.sh.
wait_listening() {
  local hp=${1#http://} up=$2
  hp=${hp%%/*}
  for _ in $(seq 150); do
    local ok=1
    [[ $1 == - ]] || ss -lnt "sport = :${hp##*:}" | grep -q LISTEN || ok=0
    [[ $up == - ]] || ss -lnu "sport = :${up##*:}" | grep -q UNCONN || ok=0
    [[ $ok == 1 ]] && return 0
    sleep 0.1
  done
  echo "trackerbench: target not listening on $1 / $2" >&2
  return 1
}

free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 60000)
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p))
        t.close(); u.close()
        print(p)
        break
    except OSError:
        pass
else:
    raise SystemExit("no free port")
PY
}

# Debian's opentracker (0.0~git20210823) is built with WANT_ACCESSLIST_WHITE: it only serves
# whitelisted info_hashes, so the bench torrents are written to a whitelist first.
# OT_UDP_WORKERS=N adds "listen.udp.workers N" (UDP served by N threads instead of the main loop).
start_opentracker() {
  local d=$TB_WORK/opentracker
  mkdir -p "$d" && chmod 755 "$d"
  local port
  port=$(free_port)
  "$TL" hashes -torrents "${TORRENTS:-1000}" >"$d/whitelist.txt"
  chmod 644 "$d/whitelist.txt"
  {
    echo "access.whitelist whitelist.txt"
    echo "listen.tcp 127.0.0.1:$port"
    echo "listen.udp 127.0.0.1:$port"
    [[ -n ${OT_UDP_WORKERS:-} ]] && echo "listen.udp.workers $OT_UDP_WORKERS"
  } >"$d/opentracker.conf"
  opentracker -f "$d/opentracker.conf" -d "$d" -u nobody >"$d/stdout.log" 2>&1 &
  TARGET_PID=$!
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=127.0.0.1:$port
}

# webswarm's tracker, built from this checkout (go build ./tracker) into the work dir, on a free
# high port (HTTP and UDP on the same port), with a fresh state file. --nat_check 0: every bench
# peer is on loopback and listens nowhere; --max_announce_rate 0 and the peer limits at 0 (no
# limit): all load comes from one IP, up to PEERS_BIG peers.
# The access log is off (--logfile ""), as opentracker has none; WEBSWARM_ACCESS_LOG=1 writes it
# to a file in the work dir. WEBSWARM_ARGS adds flags (e.g. "--save_dfile_interval 3600").
start_webswarm() {
  local d=$TB_WORK/webswarm port
  mkdir -p "$d"
  if [[ -z ${WEBSWARM_BIN:-} ]]; then
    (cd "$TB_REPO" && go build -o "$d/tracker" ./tracker)
    WEBSWARM_BIN=$d/tracker
  fi
  port=$(free_port)
  local args=(--port "$port" --bind 127.0.0.1 --nat_check 0 --max_announce_rate 0
    --max_peers_per_ip 0 --max_total_peers 0 --max_torrents 0 --max_peers 0)
  # A state file only with the memory store (the tracker refuses --dfile with a shared one).
  [[ " ${WEBSWARM_ARGS:-} " == *" --store "* ]] || args+=(--dfile "$d/state.bencode")
  if [[ ${WEBSWARM_ACCESS_LOG:-0} == 1 ]]; then args+=(--logfile "$d/access.log"); else args+=(--logfile ""); fi
  # shellcheck disable=SC2206
  [[ -n ${WEBSWARM_ARGS:-} ]] && args+=($WEBSWARM_ARGS)
  echo "webswarm: $WEBSWARM_BIN ${args[*]}" >"$d/cmdline.txt"
  "$WEBSWARM_BIN" "${args[@]}" >"$d/stdout.log" 2>&1 &
  TARGET_PID=$!
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=127.0.0.1:$port
  WEBSWARM_PORT=$port
}

# start_redis DIR [ARGS...]: a redis-server (no persistence) on a free port, its work files in
# DIR; sets REDIS_PORT and REDIS_PID once it answers PING (up to 10 s a try, three tries on
# new ports: a cluster node's bus port, its port + 10000, may be taken).
start_redis() {
  local d=$1 try
  shift
  mkdir -p "$d"
  for try in 1 2 3; do
    REDIS_PORT=$(free_port)
    while [[ " $* " == *" --cluster-enabled yes "* && $REDIS_PORT -gt 55535 ]]; do REDIS_PORT=$(free_port); done
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$d" "$@" \
      >"$d/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do
      redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    echo "trackerbench: redis-server on $REDIS_PORT did not answer (try $try):" >&2
    tail -3 "$d/redis.log" >&2
    stop_pids "$REDIS_PID"
  done
  return 1
}

# webswarm-redis: webswarm's tracker on a shared store, Debian's redis-server on another free
# port, started here and stopped by PID with the tracker. STORE_PID holds it: run.sh pins it to
# the other core than the tracker and records its CPU apart (store CPU µs/req).
start_webswarm-redis() {
  start_redis "$TB_WORK/webswarm-redis" || return 1
  STORE_PID=$REDIS_PID
  TB_WORK=$TB_WORK/redis-tracker WEBSWARM_ARGS="--store redis://127.0.0.1:$REDIS_PORT ${WEBSWARM_ARGS:-}" start_webswarm
}

stop_webswarm-redis() {
  [[ -n ${REDIS_PORT:-} ]] && redis-cli -p "$REDIS_PORT" info memory >"$TB_WORK/webswarm-redis/redis-memory.txt" 2>/dev/null
  stop_pids $TARGET_PID $STORE_PID
}

stop_pids() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}

# webswarm-redis-cluster: the same on a Redis Cluster of 3 masters (no replicas), created here
# with redis-cli --cluster create; the tracker is given all three as seed nodes.
start_webswarm-redis-cluster() {
  local d=$TB_WORK/webswarm-redis-cluster seeds=() pids=() i
  for i in 1 2 3; do
    # A node that does not start stops the ones before it: nothing is left running.
    start_redis "$d/$i" --cluster-enabled yes --cluster-config-file "$d/$i/nodes.conf" || { stop_pids "${pids[@]}"; return 1; }
    seeds+=("127.0.0.1:$REDIS_PORT")
    pids+=("$REDIS_PID")
  done
  STORE_PID=${pids[*]}
  redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >"$d/create.log" 2>&1 || { stop_pids "${pids[@]}"; return 1; }
  for _ in $(seq 100); do
    redis-cli -p "${seeds[0]##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  local all
  all=$(IFS=,; echo "${seeds[*]}")
  TB_WORK=$TB_WORK/cluster-tracker WEBSWARM_ARGS="--store redis-cluster://$all ${WEBSWARM_ARGS:-}" start_webswarm
}

stop_webswarm-redis-cluster() { stop_pids $TARGET_PID $STORE_PID; }

# chihaya-redis: chihaya (CHIHAYA_BIN, a binary of github.com/chihaya/chihaya; bench-tracker.sh
# skips this target without it) with its Redis storage on a redis-server of its own, its
# example configuration's values on loopback.
start_chihaya-redis() {
  [[ -x ${CHIHAYA_BIN:-} ]] || { echo "chihaya-redis: set CHIHAYA_BIN to a chihaya binary" >&2; return 1; }
  local d=$TB_WORK/chihaya-redis port mport
  start_redis "$d/redis" || return 1
  STORE_PID=$REDIS_PID
  port=$(free_port)
  mport=$(free_port)
  cat >"$d/chihaya.yaml" <<YAML
chihaya:
  announce_interval: "30m"
  min_announce_interval: "15m"
  metrics_addr: "127.0.0.1:$mport"
  http:
    addr: "127.0.0.1:$port"
    read_timeout: "5s"
    write_timeout: "5s"
    enable_keepalive: true
    idle_timeout: "30s"
    announce_routes: ["/announce"]
    scrape_routes: ["/scrape"]
    max_numwant: 100
    default_numwant: 50
    max_scrape_infohashes: 50
  udp:
    addr: "127.0.0.1:$port"
    max_clock_skew: "10s"
    private_key: "trackerbench-lab-key-0123456789abcdef"
    max_numwant: 100
    default_numwant: 50
    max_scrape_infohashes: 50
  storage:
    name: "redis"
    config:
      gc_interval: "3m"
      peer_lifetime: "31m"
      prometheus_reporting_interval: "1s"
      redis_broker: "redis://127.0.0.1:$REDIS_PORT/0"
      redis_read_timeout: "15s"
      redis_write_timeout: "15s"
      redis_connect_timeout: "15s"
YAML
  "$CHIHAYA_BIN" --config "$d/chihaya.yaml" --nocolors >"$d/stdout.log" 2>&1 &
  TARGET_PID=$!
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=127.0.0.1:$port
}

stop_chihaya-redis() { stop_pids $TARGET_PID $STORE_PID; }

# webswarm-b: a second build of webswarm's tracker beside the first, for A/B runs of a change
# (./interleave.sh webswarm webswarm-b): WEBSWARM_B_BIN is the binary [required], WEBSWARM_B_ARGS
# its extra flags.
start_webswarm-b() {
  [[ -n ${WEBSWARM_B_BIN:-} ]] || { echo "webswarm-b: set WEBSWARM_B_BIN" >&2; return 1; }
  TB_WORK=$TB_WORK/b WEBSWARM_BIN=$WEBSWARM_B_BIN WEBSWARM_ARGS=${WEBSWARM_B_ARGS:-} start_webswarm
}

# Ceiling: trivial Go server (fixed 60-byte HTTP body; stateless BEP 15 UDP responder).
start_ceiling-go() {
  local d=$TB_WORK/ceiling-go
  mkdir -p "$d"
  local port
  port=$(free_port)
  [[ -x $d/ceiling ]] || (cd "$TB_REPO" && go build -o "$d/ceiling" ./bench/trackerbench/ceiling)
  "$d/ceiling" -http "127.0.0.1:$port" -udp "127.0.0.1:$port" >"$d/ceiling.log" 2>&1 &
  TARGET_PID=$!
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=127.0.0.1:$port
  RUN_ENV=(NO_WARM=1 NO_CHECK=1 PEERS_BIG=0
    "SCENARIOS=http-ka-pin http-ka-free1 http-ka-free2 http-close-pin http-close-free1 http-plain-pin http-plain-free1 udp-pin udp-free udp-conn1-pin")
}

# The same without TCP keep-alive probes on accepted connections (Go sets them by default: four
# setsockopt calls per connection), to measure what that costs a Connection: close client.
start_ceiling-go-noka() {
  start_ceiling-go
  kill -TERM "$TARGET_PID" 2>/dev/null || true
  wait "$TARGET_PID" 2>/dev/null || true
  local d=$TB_WORK/ceiling-go port
  port=$(free_port)
  "$d/ceiling" -tcp-keepalive=false -http "127.0.0.1:$port" -udp "127.0.0.1:$port" >"$d/ceiling-noka.log" 2>&1 &
  TARGET_PID=$!
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=127.0.0.1:$port
}

# The ceiling with http.Server timeouts as webswarm's tracker sets them (CEILING_TIMEOUTS=all) or
# all but WriteTimeout (nowrite): what per-request deadlines cost.
start_ceiling-go-timeouts() {
  local d=$TB_WORK/ceiling-go-timeouts port
  mkdir -p "$d"
  port=$(free_port)
  (cd "$TB_REPO" && go build -o "$d/ceiling" ./bench/trackerbench/ceiling)
  "$d/ceiling" -timeouts "${CEILING_TIMEOUTS:-all}" -http "127.0.0.1:$port" -udp "127.0.0.1:$port" >"$d/ceiling.log" 2>&1 &
  TARGET_PID=$!
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=127.0.0.1:$port
}

# Ceiling: nginx "return 200" with the same 60-byte body. NGINX_WORKERS (default 2).
start_nginx() {
  local d=$TB_WORK/nginx port
  port=$(free_port)
  mkdir -p "$d/tmp" && chmod 755 "$d"
  sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|${NGINX_WORKERS:-2}|g" \
    "$TB_HERE/ceiling/nginx-static.conf.tmpl" >"$d/nginx.conf"
  nginx -p "$d/" -c "$d/nginx.conf" -g 'daemon off;' >"$d/stdout.log" 2>&1 &
  local master=$!
  sleep 1
  TARGET_PID="$master $(pgrep -P "$master" | tr '\n' ' ')"
  TARGET_HTTP=http://127.0.0.1:$port/announce
  TARGET_UDP=-
  RUN_ENV=(NO_WARM=1 NO_CHECK=1 PEERS_BIG=0
    "SCENARIOS=http-ka-pin http-ka-free1 http-ka-free2 http-close-pin http-close-free1 http-plain-pin http-plain-free1")
}
stop_nginx() {
  local master=${TARGET_PID%% *}
  kill -QUIT "$master" 2>/dev/null || true
  for _ in $(seq 50); do [[ -d /proc/$master ]] || return 0; sleep 0.1; done
  kill -TERM "$master" 2>/dev/null || true
}

# opentracker with "listen.udp.workers 2" (UDP served by 2 threads); UDP scenarios only.
start_opentracker-udpw2() {
  OT_UDP_WORKERS=2 start_opentracker
  RUN_ENV=(PEERS_BIG=0 "SCENARIOS=udp-pin udp-free udp-conn1-pin")
}
