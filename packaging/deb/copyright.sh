#!/usr/bin/env bash
# copyright.sh BINARY...: prints /usr/share/doc/webswarm/copyright in Debian's machine-readable
# format (DEP-5): webswarm's own licence, then a paragraph for every Go module compiled into
# the binaries (`go version -m`, the modules really bundled, not all of go.mod) with the
# licence text from the module cache. A module whose licence is not recognised stops the
# build: the package must not ship code under terms nobody read.
set -euo pipefail
cd "$(dirname "$0")/../.."

# indent: a DEP-5 multi-line field body (one space, blank lines as " .").
indent() { sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /'; }

# spdx FILE: the licence's short name as DEP-5 spells it, from its text; a file holding two
# licences (go.yaml.in/yaml: MIT for the parts ported from libyaml, Apache for the rest) gives
# "Expat and Apache-2.0".
spdx() {
  local f=$1 names=()
  grep -q 'Apache License' "$f" && grep -q 'Version 2.0' "$f" && names+=(Apache-2.0)
  grep -q 'Mozilla Public License Version 2.0' "$f" && names+=(MPL-2.0)
  grep -qi 'Permission is hereby granted, free of charge' "$f" && names+=(Expat)
  grep -qi 'Permission to use, copy, modify, and/or distribute' "$f" && names+=(ISC)
  if grep -qi 'Neither the name' "$f" || grep -qi 'names of its contributors may be used' "$f"; then
    names+=(BSD-3-clause)
  elif grep -qi 'Redistributions in binary form must reproduce' "$f"; then
    names+=(BSD-2-clause)
  fi
  [[ ${#names[@]} -gt 0 ]] || return 1
  local IFS=' '
  sed 's/ / and /g' <<<"${names[*]}"
}

# apache_text FILE: the licence text with the Apache License 2.0's terms replaced by a pointer
# to Debian's copy (lintian: copyright-file-contains-full-apache-2-license); the rest (another
# licence in the same file, copyright lines, notices) stays.
apache_text() {
  awk '
    /^[[:space:]]*Apache License[[:space:]]*$/ { skip = 1; print "The Apache License 2.0: on Debian systems its full text is in"; print "/usr/share/common-licenses/Apache-2.0."; next }
    skip && /END OF TERMS AND CONDITIONS/ { skip = 2; next }
    skip == 2 && /limitations under the License\./ { skip = 0; next }
    skip == 2 && /^[[:space:]]*(#|-|\*\*)/ { skip = 0 }
    !skip { print }
  ' "$1"
}

# paragraph FILES WHAT LICENCE_FILE [NOTICE_FILE]: a Files paragraph with the licence's text.
paragraph() {
  local files=$1 what=$2 lic=$3 notice=${4:-} name holders
  if ! name=$(spdx "$lic"); then
    echo "copyright.sh: $what: licence in $lic not recognised" >&2
    return 1
  fi
  holders=$(grep -E '^[[:space:]]*Copyright (\(c\)|©|[0-9])' "$lic" | sed -e 's/^[[:space:]]*Copyright[[:space:]]*//' -e 's/^(c)[[:space:]]*//I' | sort -u || true)
  [[ -n $holders ]] || holders="the authors of $what"
  echo
  echo "Files: $files"
  echo "Copyright: $(head -n 1 <<<"$holders")"
  tail -n +2 <<<"$holders" | indent
  echo "Comment: $what, compiled into the programs."
  echo "License: $name"
  {
    apache_text "$lic"
    if [[ -n $notice ]]; then
      printf '\nNOTICE (%s):\n\n' "$(basename "$notice")"
      cat "$notice"
    fi
  } | indent
}

cat <<HEAD
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: webswarm
Upstream-Contact: https://github.com/webswarm/webswarm/issues
Source: https://github.com/webswarm/webswarm

Files: *
Copyright: the webswarm developers
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
HEAD

declare -A dir
while read -r path version d; do
  dir["$path $version"]=$d
done < <(go list -m -f '{{.Path}} {{.Version}} {{.Dir}}' all)

goroot=$(go env GOROOT)
paragraph "vendor/go/*" "the Go standard library and runtime ($(go env GOVERSION))" "$goroot/LICENSE"

go version -m "$@" | awk '$1 == "dep" { print $2, $3 }' | sort -u | while read -r path version; do
  d=${dir["$path $version"]:-}
  if [[ -z $d || ! -d $d ]]; then
    echo "copyright.sh: module $path $version is not in the module cache (go mod download)" >&2
    exit 1
  fi
  lic=$(find "$d" -maxdepth 1 -type f \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' \) | sort | head -n 1)
  if [[ -z $lic ]]; then
    echo "copyright.sh: module $path $version has no LICENSE file in $d" >&2
    exit 1
  fi
  notice=$(find "$d" -maxdepth 1 -type f -iname 'NOTICE*' | sort | head -n 1)
  paragraph "vendor/$path/*" "Go module $path $version" "$lic" "$notice"
done
