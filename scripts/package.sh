#!/usr/bin/env bash
# Builds the Debian package dist/webswarm_VERSION_amd64.deb with Debian's own tools (dpkg-deb,
# help2man, lintian): both programs, their man pages, the Apache and nginx snippets, the
# systemd units, the monitoring files and a machine-readable copyright of every bundled Go
# module. VERSION is internal/version's, what `--version` prints.
#
#   scripts/package.sh              # build, then lintian (fails on a lintian error)
#   OUT=/tmp/x scripts/package.sh   # the .deb into another directory
#
# The build is reproducible for a given commit: SOURCE_DATE_EPOCH (default: the commit's
# date) dates the changelog, the man pages and every file in the archive.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
declare -A need=([dpkg]=dpkg-deb [help2man]=help2man [lintian]=lintian)
mapfile -t missing < <(apt_missing)
apt_install package.sh "${missing[@]}"

version=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' internal/version/version.go)
if [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
  echo "package.sh: no version in internal/version/version.go (got '$version')" >&2
  exit 1
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
out=${OUT:-dist}
deb="$out/webswarm_${version}_amd64.deb"
pkg=packaging/deb

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root/DEBIAN"

echo "package.sh: building webswarm $version"
# Static, no build paths, stripped (lintian: unstripped-binary-or-object), no VCS stamp.
export CGO_ENABLED=0 GOOS=linux GOARCH=amd64
flags=(-trimpath -buildvcs=false -ldflags=-s\ -w)
install -d "$root/usr/bin"
go build "${flags[@]}" -o "$root/usr/bin/webswarm-tracker" ./tracker
go build "${flags[@]}" -o "$root/usr/bin/seedctl" ./seedctl
for p in webswarm-tracker seedctl; do
  got=$("$root/usr/bin/$p" --version)
  if [[ $got != *" $version" ]]; then
    echo "package.sh: $p --version says '$got', the package is $version" >&2
    exit 1
  fi
done

# Man pages from the programs' own help: cobra's generator for seedctl (one page a command),
# help2man for the tracker's flag set (its --help goes to standard error).
man="$root/usr/share/man/man1"
install -d "$man"
"$root/usr/bin/seedctl" man "$man"
help2man --no-info --no-discard-stderr --section 1 --source "webswarm $version" \
  --name "BitTorrent tracker behind Apache httpd or nginx" \
  --version-string "$version" "$root/usr/bin/webswarm-tracker" |
  sed -e 's/^\.TH TRACKER /.TH WEBSWARM-TRACKER /' >"$man/webswarm-tracker.1"
gzip -9n "$man"/*.1

# Configuration (every file under /etc is a conffile: an admin's edit survives upgrades).
install -D -m 0644 httpd-conf/webswarm.conf "$root/etc/apache2/conf-available/webswarm.conf"
install -d "$root/etc/apache2/webswarm" "$root/etc/nginx/snippets" "$root/etc/nginx/webswarm" "$root/etc/default"
install -m 0644 httpd-conf/webswarm-proxy.conf httpd-conf/webswarm-fcgi.conf \
  httpd-conf/webswarm-fcgi-tcp.conf httpd-conf/webswarm-webseed.conf "$root/etc/apache2/webswarm/"
install -m 0644 nginx-conf/webswarm-proxy.conf nginx-conf/webswarm-fcgi.conf \
  nginx-conf/webswarm-webseed.conf "$root/etc/nginx/snippets/"
# The http {} files are NOT put in conf.d, where nginx would read them at its next reload
# whether the admin wants webswarm on this server or not (docs/install.md says why): the
# admin links them there.
install -m 0644 nginx-conf/webswarm-http.conf nginx-conf/webswarm-upstreams.conf "$root/etc/nginx/webswarm/"
install -m 0644 "$pkg/default-webswarm-tracker" "$root/etc/default/webswarm-tracker"
install -m 0644 "$pkg/default-webswarm-seed" "$root/etc/default/webswarm-seed"

# systemd units: the repository's, for the packaged paths and the package's `webswarm` user,
# with /run/webswarm (the socket the snippets name) as the tracker's runtime directory.
units="$root/lib/systemd/system"
install -d "$units"
declare -A manpage=([webswarm-tracker]='webswarm-tracker(1)' [webswarm-seed]='seedctl-agent(1)')
for u in webswarm-tracker webswarm-seed; do
  sed -E \
    -e '1,/^\[Unit\]/{/^\[Unit\]/!d}' \
    -e 's|/usr/local/bin/tracker|/usr/bin/webswarm-tracker|' \
    -e 's|/usr/local/bin/seedctl|/usr/bin/seedctl|' \
    -e "s|^Documentation=.*|Documentation=man:${manpage[$u]} file:/usr/share/doc/webswarm/install.md|" \
    -e 's|^DynamicUser=yes$|User=webswarm\nGroup=webswarm|' \
    -e 's|^RuntimeDirectory=webswarm-tracker$|RuntimeDirectory=webswarm|' \
    -e 's|^RuntimeDirectoryMode=0750$|RuntimeDirectoryMode=0755|' \
    -e 's|^# Its own user, allocated at start.*|# The package'"'"'s system user, made by postinst.|' \
    "systemd/$u.service" >"$units/$u.service"
  { echo "# $u.service as the webswarm Debian package installs it; options: /etc/default/$u."; cat "$units/$u.service"; } >"$stage/unit" && mv "$stage/unit" "$units/$u.service"
  chmod 0644 "$units/$u.service"
  for want in 'User=webswarm' 'ExecStart=/usr/bin/' 'Documentation=man:'; do
    grep -q "^$want" "$units/$u.service" || { echo "package.sh: $u.service: no '$want' after adapting systemd/$u.service" >&2; exit 1; }
  done
done
grep -q '^RuntimeDirectory=webswarm$' "$units/webswarm-tracker.service" || { echo "package.sh: webswarm-tracker.service: RuntimeDirectory not adapted" >&2; exit 1; }

# Documentation, monitoring files, lintian overrides.
doc="$root/usr/share/doc/webswarm"
install -d "$doc" "$root/usr/share/webswarm/monitoring/dashboards" "$root/usr/share/lintian/overrides"
"$pkg/copyright.sh" "$root/usr/bin/webswarm-tracker" "$root/usr/bin/seedctl" >"$doc/copyright"
"$pkg/changelog.sh" | gzip -9n >"$doc/changelog.gz"
install -m 0644 docs/install.md "$doc/install.md"
install -m 0644 monitoring/prometheus.yml monitoring/alert-rules.yml monitoring/alert-rules.test.yml \
  "$root/usr/share/webswarm/monitoring/"
install -m 0644 monitoring/README.md "$doc/monitoring.md"
install -m 0644 monitoring/dashboards/*.json "$root/usr/share/webswarm/monitoring/dashboards/"
install -m 0644 "$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/webswarm"

# Control area.
install -m 0755 "$pkg/postinst" "$pkg/prerm" "$pkg/postrm" "$root/DEBIAN/"
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
(cd "$root" && find usr lib -type f | sort | xargs md5sum) >"$root/DEBIAN/md5sums"
size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" "$pkg/control.in" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

# Same modes whatever the umask, same dates whatever the checkout: a reproducible archive.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "package.sh: $deb"

if [[ ${LINTIAN:-1} == 1 ]]; then
  # Errors fail the build; warnings print (those left are explained in the overrides file).
  timeout 600 lintian --fail-on error --tag-display-limit 0 "$deb"
fi
