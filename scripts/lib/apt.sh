# shellcheck shell=bash
# Sourced by the scripts in scripts/: installs the Debian packages a script found missing.

# apt_install WHO PKG...: apt-get install the packages (none: nothing to do), as root or with
# sudo, bounded in time; WHO names the script in the message.
apt_install() {
  local who=$1
  shift
  [[ $# -gt 0 ]] || return 0
  echo "$who: installing $*"
  local sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  timeout 600 $sudo apt-get update -qq
  # Debian starts apache2/nginx on install where an init system runs; tests and benchmarks
  # start their own instances on 127.0.0.1 high ports and never touch the system ones.
  DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# apt_missing: prints, a line each, the Debian packages of the caller's associative array
# `need` (package → a command that proves it is installed) whose command is found neither on
# PATH nor in /usr/sbin or /sbin.
apt_missing() {
  local pkg cmd
  for pkg in "${!need[@]}"; do
    cmd=${need[$pkg]}
    command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd || -x /sbin/$cmd ]] || echo "$pkg"
  done
}

# apt_missing_libtorrent PY: prints python3-libtorrent when the Python at PY cannot import
# libtorrent (the benchmarks' libtorrent peer runs on the system Python).
apt_missing_libtorrent() {
  [[ -x $1 ]] && "$1" -c 'import libtorrent' 2>/dev/null || echo python3-libtorrent
}
