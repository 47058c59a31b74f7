#!/usr/bin/env bash
# Installs npm bittorrent-tracker (the version pinned in package.json and package-lock.json)
# into bench/wsbench/btserver/node_modules (ignored by git), with --ignore-scripts: its
# dependency node-datachannel's install script downloads a prebuilt binary, which server.mjs
# does not need. Does nothing when the pinned version is already there. Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")"
want=$(sed -n 's/.*"bittorrent-tracker": "\(.*\)".*/\1/p' package.json)
have=$(sed -n 's/^  "version": "\(.*\)".*/\1/p' node_modules/bittorrent-tracker/package.json 2>/dev/null || true)
if [[ $have == "$want" ]]; then
  exit 0
fi
timeout 600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
