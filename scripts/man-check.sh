#!/usr/bin/env bash
# man-check.sh BIN MANPAGE: every command that 'BIN --help' lists has a subsection in MANPAGE's
# COMMANDS, and every option its own help prints ('BIN COMMAND --help', its options and its text)
# is in that subsection; the global ones are in the page. Prints what is missing and exits 1,
# or exits 0. An option counts only as a whole word (--all is not found in --allow-submounts).
# t-install runs it on the installed binary and page; run it on a merged binary before a merge.
set -euo pipefail
BIN=$1 MAN=$2
rendered=$(LC_ALL=C MANWIDTH=80 man -l "$MAN" 2>/dev/null)
mapfile -t commands < <("$BIN" --help | sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p')
[ "${#commands[@]}" -gt 0 ] || { echo "man-check: '$BIN --help' lists no command" >&2; exit 1; }
section() {  # the rendered subsection of command $1: from its heading to the next heading
  awk -v cmd="$1" '/^[A-Z]/ { inside = 0 } /^   [a-z]/ { inside = ($1 == cmd) } inside' <<< "$rendered"
}
missing=()
for cmd in "${commands[@]}"; do
  text=$(section "$cmd")
  [ -n "$text" ] || { missing+=("command:$cmd"); continue; }
  while read -r opt; do
    grep -qE -- "(^|[^a-z0-9-])$opt([^a-z0-9-]|\$)" <<< "$text" || missing+=("$cmd:$opt")
  done < <("$BIN" "$cmd" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
done
while read -r opt; do
  grep -qE -- "(^|[^a-z0-9-])$opt([^a-z0-9-]|\$)" <<< "$rendered" || missing+=("$opt")
done < <("$BIN" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "man-check: $MAN falls behind '$BIN --help'; missing: ${missing[*]}" >&2
  exit 1
fi
echo "man-check: ${#commands[@]} commands, every option of their --help in $MAN"
