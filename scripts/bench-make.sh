#!/usr/bin/env bash
# Side-by-side hashing benchmark for seedctl, in one run on this machine (ratios, not absolute
# times, are the result: expect ±20-30 % noise between runs on a shared VM):
#
#   make:   seedctl make   vs  mktorrent -t 2          on the same 2 GiB file, same piece size
#   verify: seedctl verify vs  aria2c --check-integrity on the same 1 GiB file and torrent
#
#   scripts/bench-make.sh              # RUNS=5 interleaved rounds, medians
#   RUNS=3 SIZE_MAKE_MIB=1024 scripts/bench-make.sh
#
# The page cache is warmed before each tool (cat > /dev/null), so this measures hashing, not
# the disk. Files live in a temporary directory, removed at exit. Needs mktorrent and aria2
# (installed with apt when missing) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZE_MAKE_MIB=${SIZE_MAKE_MIB:-2048}
SIZE_VERIFY_MIB=${SIZE_VERIFY_MIB:-1024}

declare -A need=([mktorrent]=mktorrent [aria2]=aria2c [time]=/usr/bin/time)
missing=()
for pkg in "${!need[@]}"; do command -v "${need[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg"); done
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
apt_install bench-make.sh "${missing[@]}"

tmp=$(mktemp -d /tmp/bench-make.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/seedctl" ./seedctl
ann=http://127.0.0.1:6969/announce

# piece size: what seedctl's auto rule picks for the make file, as a power of two for mktorrent
plog() { local n=$1 p=14; while (( (1 << p) < 16 * 1024 * 1024 && (n + (1 << p) - 1) / (1 << p) > 2000 )); do p=$((p + 1)); done; echo $p; }
make_bytes=$((SIZE_MAKE_MIB * 1024 * 1024))
verify_bytes=$((SIZE_VERIFY_MIB * 1024 * 1024))
lg=$(plog $make_bytes)

echo "bench-make.sh: load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $(go version | awk '{print $3}'), $(mktorrent -h 2>&1 | head -1 | awk '{print $1, $2}'), aria2 $(aria2c --version | head -1 | awk '{print $3}')"
echo "writing $SIZE_MAKE_MIB MiB and $SIZE_VERIFY_MIB MiB of random data..."
mkdir -p "$tmp/m" "$tmp/v"
head -c "$make_bytes" /dev/urandom > "$tmp/m/big.bin"
head -c "$verify_bytes" /dev/urandom > "$tmp/v/check.bin"
"$tmp/seedctl" make -q --no-date -t "$ann" -o "$tmp/check.torrent" "$tmp/v/check.bin" >/dev/null

# run NAME CMD...: time CMD (wall seconds, CPU seconds, max RSS), after warming the page cache.
declare -A times cpus rss
run() {
  local name=$1; shift
  cat "$tmp/m/big.bin" "$tmp/v/check.bin" > /dev/null
  /usr/bin/time -f "%e %M %U %S" -o "$tmp/time" "$@" > "$tmp/out" 2>&1 || { echo "$name failed:"; cat "$tmp/out"; exit 1; }
  read -r w m u s < "$tmp/time"
  c=$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}')
  times[$name]+="$w "
  cpus[$name]+="$c "
  rss[$name]=$m
  printf '  %-16s %6.2f s wall  %6.2f s CPU  %7d KiB RSS\n' "$name" "$w" "$c" "$m"
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for r in $(seq "$RUNS"); do
  echo "round $r/$RUNS"
  run mktorrent mktorrent -t 2 -l "$lg" -a "$ann" -o "$tmp/mk.torrent" "$tmp/m/big.bin"
  run seedctl-make "$tmp/seedctl" make -q -f --piece-size $((1 << lg)) -t "$ann" -o "$tmp/sc.torrent" "$tmp/m/big.bin"
  rm -f "$tmp/mk.torrent"
  run aria2-check aria2c --hash-check-only=true --check-integrity=true --dir="$tmp/v" --bt-exclude-tracker='*' \
    --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --console-log-level=warn --summary-interval=0 "$tmp/check.torrent"
  run seedctl-verify "$tmp/seedctl" verify -q "$tmp/check.torrent" "$tmp/v"
done

# Same files, same piece size, same announce URL: same info-hash as mktorrent.
mktorrent -t 2 -l "$lg" -a "$ann" -o "$tmp/mk.torrent" "$tmp/m/big.bin" >/dev/null
h_mk=$("$tmp/seedctl" show --json "$tmp/mk.torrent" | sed -n 's/.*"info_hash": "\([0-9a-f]*\)".*/\1/p')
h_sc=$("$tmp/seedctl" show --json "$tmp/sc.torrent" | sed -n 's/.*"info_hash": "\([0-9a-f]*\)".*/\1/p')
[[ $h_mk == "$h_sc" ]] || { echo "info-hash mismatch: mktorrent $h_mk, seedctl $h_sc"; exit 1; }

mk=$(median "${times[mktorrent]}"); sm=$(median "${times[seedctl-make]}")
a2=$(median "${times[aria2-check]}"); sv=$(median "${times[seedctl-verify]}")
cmk=$(median "${cpus[mktorrent]}"); csm=$(median "${cpus[seedctl-make]}")
ca2=$(median "${cpus[aria2-check]}"); csv=$(median "${cpus[seedctl-verify]}")
echo
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) (with other work running, wall times are noisy: CPU seconds are steadier)"
echo "medians of $RUNS rounds (warm cache, piece size $((1 << lg)) bytes; info-hashes equal: $h_sc)"
awk -v mk="$mk" -v sm="$sm" -v a2="$a2" -v sv="$sv" -v mb="$SIZE_MAKE_MIB" -v vb="$SIZE_VERIFY_MIB" \
    -v rm="${rss[seedctl-make]}" -v rv="${rss[seedctl-verify]}" \
    -v cmk="$cmk" -v csm="$csm" -v ca2="$ca2" -v csv="$csv" 'BEGIN {
  printf "make   %5d MiB: mktorrent -t 2 %.2f s (%.2f GB/s)  seedctl %.2f s (%.2f GB/s, %d MiB RSS)  ratio %.2fx (goal >= 1.0)\n", mb, mk, mb*1.048576/1000/mk, sm, mb*1.048576/1000/sm, rm/1024, mk/sm
  printf "verify %5d MiB: aria2c check   %.2f s (%.2f GB/s)  seedctl %.2f s (%.2f GB/s, %d MiB RSS)  ratio %.2fx (goal >= 2.0)\n", vb, a2, vb*1.048576/1000/a2, sv, vb*1.048576/1000/sv, rv/1024, a2/sv
  printf "CPU seconds: make mktorrent %.2f, seedctl %.2f (%.2fx less); verify aria2c %.2f, seedctl %.2f (%.2fx less)\n", cmk, csm, cmk/csm, ca2, csv, ca2/csv
}'
