#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the programs the tests start (Debian packages),
# then go vet and go test ./... including the e2e tests in e2e/.
#
#   scripts/test.sh                 # a missing program makes its e2e test skip (with the reason)
#   E2E_REQUIRE=1 scripts/test.sh   # as .ci/run: a skip for a missing program is a failure
#
# Extra arguments go to `go test` (e.g. scripts/test.sh -run Tracker -v).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start, by the command that proves each is present.
declare -A need=(
  [apache2]=/usr/sbin/apache2
  [nginx]=/usr/sbin/nginx
  [aria2]=/usr/bin/aria2c
  [python3-libtorrent]=/usr/lib/python3/dist-packages/libtorrent.cpython-311-x86_64-linux-gnu.so
  [ctorrent]=/usr/bin/ctorrent
  [mktorrent]=/usr/bin/mktorrent
  [transmission-cli]=/usr/bin/transmission-show
  [transmission-daemon]=/usr/bin/transmission-daemon
  [prometheus]=/usr/bin/prometheus
  [buildah]=/usr/bin/buildah
  # e2e/browser_swarm_test.go: WebRTC in a private network namespace (unshare -n, a veth pair).
  [iproute2]=/usr/sbin/ip
  [util-linux]=/usr/bin/unshare
  [chromium]=/usr/bin/chromium
  [nodejs]=/usr/bin/node
  [npm]=/usr/bin/npm
  [redis-server]=/usr/bin/redis-server
  [redis-tools]=/usr/bin/redis-cli
  # e2e/package_test.go: scripts/package.sh's tools, and man for systemd-analyze's check of
  # the units' Documentation= pages.
  [help2man]=/usr/bin/help2man
  [lintian]=/usr/bin/lintian
  [man-db]=/usr/bin/man
)
missing=()
for pkg in "${!need[@]}"; do
  if [[ ! -e ${need[$pkg]} ]] && ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$pkg")
  fi
done
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh # the scripts run from the repository root (cd above)
apt_install test.sh "${missing[@]}"
# npm bittorrent-tracker (pinned, --ignore-scripts) for wsload's test against it.
bench/wsbench/btserver/install.sh

# npm packages the browser tests use (e2e/browser_page_test.go), pinned, into the git-ignored
# .cache/e2e-node: puppeteer-core drives the Debian chromium above (it downloads no browser);
# webtorrent's dist/webtorrent.min.js is the bundle the download page loads. --ignore-scripts:
# a webtorrent dependency's install script runs `npx only-allow pnpm` and fails, and none is needed.
npm_dir=.cache/e2e-node
npm_pkgs="puppeteer-core@24.43.1 webtorrent@3.0.21"
if [[ $(cat "$npm_dir/installed" 2>/dev/null) != "$npm_pkgs" ]]; then
  echo "test.sh: npm install $npm_pkgs"
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  echo '{"private": true}' >"$npm_dir/package.json"
  # shellcheck disable=SC2086 # one word a package
  (cd "$npm_dir" && timeout 600 npm install --ignore-scripts --no-audit --no-fund --loglevel=error $npm_pkgs)
  echo "$npm_pkgs" >"$npm_dir/installed"
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
  echo "test.sh: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# The benchmark drivers' own tests (stdlib Python): a broken driver would report wrong ratios.
for d in bench/seed bench/agent bench/wsbench bench/webrtc; do
  python3 -m unittest discover -s "$d" -q
done
# The e2e package runs a few hundred real programs one after another (about 10 minutes on an
# idle 2-core machine); the bound is generous so that a busy machine is slow, not red.
go test -count=1 -timeout 45m "$@" ./...
