#!/usr/bin/env bash
# changelog.sh: prints the Debian-format changelog (changelog(5), as dpkg-parsechangelog reads
# it) made from CHANGELOG.md: an entry per "## VERSION — DATE" section, an item per top-level
# bullet, markdown taken out. An unreleased section is dated SOURCE_DATE_EPOCH.
set -euo pipefail
cd "$(dirname "$0")/../.."

maint="webswarm developers <webswarm@users.noreply.github.com>"
epoch=${SOURCE_DATE_EPOCH:-$(date +%s)}

# entry VERSION DATE: the trailer of a section.
trailer() {
  local when
  if [[ $2 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
    when=$(LC_ALL=C date -u -R -d "$2 12:00")
  else
    when=$(LC_ALL=C date -u -R -d "@$epoch")
  fi
  printf '\n -- %s  %s\n' "$maint" "$when"
}

# item TEXT: a bullet as "  * text", wrapped at 78 columns, markdown taken out.
item() {
  sed -E -e 's/\[([^]]*)\]\([^)]*\)/\1/g' -e 's/\*\*//g' -e 's/`//g' <<<"$1" |
    fmt -w 74 | sed -e '1s/^/  * /' -e '2,$s/^/    /'
}

version="" date="" bullet="" first=1
flush_bullet() {
  [[ -n $bullet ]] && item "$bullet"
  bullet=""
}
while IFS= read -r line; do
  if [[ $line =~ ^##\ ([0-9][^ ]*)\ —\ (.*)$ ]]; then
    flush_bullet
    [[ -n $version ]] && trailer "$version" "$date" && echo
    version=${BASH_REMATCH[1]} date=${BASH_REMATCH[2]}
    printf 'webswarm (%s) unstable; urgency=medium\n\n' "$version"
    first=0
  elif [[ -z $version ]]; then
    continue
  elif [[ $line =~ ^-\ (.*)$ ]]; then
    flush_bullet
    bullet=${BASH_REMATCH[1]}
  elif [[ -n $bullet && $line =~ ^\ +(.*)$ ]]; then
    bullet+=" ${BASH_REMATCH[1]}"
  else
    flush_bullet
  fi
done <CHANGELOG.md
flush_bullet
if [[ $first == 1 ]]; then
  echo "changelog.sh: no '## VERSION — DATE' section in CHANGELOG.md" >&2
  exit 1
fi
trailer "$version" "$date"
