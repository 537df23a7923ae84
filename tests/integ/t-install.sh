#!/usr/bin/env bash
# `make install DESTDIR= PREFIX=/usr` installs every file it lists (the binary, the man page, the
# bash completion, each systemd/*.service, the cachemax-generator link when the binary is one),
# the man page renders without a warning and covers
# every command and every option that `cachemax COMMAND --help` prints, the completion loads in
# a plain bash and completes the commands and each command's options, and `make uninstall`
# removes every file again. Nothing outside this test's scratch directory is touched.
. "$(dirname "$0")/lib.sh"
if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
  skip "needs man and groff (make deps)"
fi

DEST=$T_SCRATCH/dest
run_make() {  # a make of its own: not a sub-make of `make integ` (no jobserver to inherit)
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$ROOT" --no-print-directory "$@"
}
run_make install DESTDIR="$DEST" PREFIX=/usr > "$T_SCRATCH/install.out" 2>&1 \
  || fail "make install failed: $(cat "$T_SCRATCH/install.out")"

BIN=$DEST/usr/bin/cachemax
MAN=$DEST/usr/share/man/man1/cachemax.1
COMPLETION=$DEST/usr/share/bash-completion/completions/cachemax
[ -x "$BIN" ] || fail "no executable $BIN"
cmp -s "$BIN" "$ROOT/build/cachemax" || fail "$BIN is not build/cachemax"
[ -f "$MAN" ] || fail "no man page at $MAN"
[ -f "$COMPLETION" ] || fail "no bash completion at $COMPLETION"
expected=3
for unit in "$ROOT"/systemd/*.service; do
  [ -e "$unit" ] || continue
  installed=$DEST/usr/lib/systemd/system/$(basename "$unit")
  [ -f "$installed" ] || fail "unit $(basename "$unit") not installed at $installed"
  ! grep -q '@BINDIR@' "$installed" || fail "$installed still says @BINDIR@"
  expected=$((expected + 1))
done
GENERATOR=$DEST/usr/lib/systemd/system-generators/cachemax-generator
if "$BIN" help systemd-generator >/dev/null 2>&1; then   # the binary can be systemd's generator
  [ "$(readlink "$GENERATOR")" = /usr/bin/cachemax ] || fail "no link $GENERATOR to /usr/bin/cachemax"
  expected=$((expected + 1))
fi
found=$(find "$DEST" ! -type d | wc -l)
[ "$found" -eq "$expected" ] || fail "make install wrote $found files, expected $expected: $(find "$DEST" ! -type d)"
for f in "$BIN" "$MAN" "$COMPLETION"; do
  [ "$(stat -c %U "$f")" = "$(id -un)" ] || fail "$f is not owned by the installing user"
done
modes="$(stat -c %a "$BIN") $(stat -c %a "$MAN") $(stat -c %a "$COMPLETION")"
[ "$modes" = "755 644 644" ] || fail "modes of the binary, page and completion are $modes"

# The man page: no warning from man or groff; the rendered text is what the checks read.
warnings=$(LC_ALL=C MANWIDTH=80 man --warnings -l "$MAN" 2>&1 >"$T_SCRATCH/man.txt") \
  || fail "man -l $MAN failed: $warnings"
[ -z "$warnings" ] || fail "man -l $MAN warns: $warnings"
warnings=$(groff -man -ww -z "$MAN" 2>&1) || fail "groff failed on $MAN: $warnings"
[ -z "$warnings" ] || fail "groff -man -ww warns: $warnings"
for heading in NAME SYNOPSIS DESCRIPTION COMMANDS; do
  grep -q "^$heading" "$T_SCRATCH/man.txt" || fail "the rendered page has no $heading section"
done

# Every command of 'cachemax --help' has a subsection under COMMANDS, and every option its own
# help prints (in its options or its text) is in that subsection; global ones are in the page.
mapfile -t COMMANDS < <("$BIN" --help | sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p')
[ "${#COMMANDS[@]}" -ge 8 ] || fail "'cachemax --help' lists only ${#COMMANDS[@]} commands: ${COMMANDS[*]}"
"$ROOT/scripts/man-check.sh" "$BIN" "$MAN" || fail "man/cachemax.1 falls behind --help (above)"

# The completion, loaded in a bash without any startup file or bash-completion package.
complete_words() {  # complete_words WORD...: what completing the last word offers
  PATH=$DEST/usr/bin:$PATH bash --norc --noprofile -c '
    source "$1"; shift
    complete -p cachemax >/dev/null || { echo "no completion registered" >&2; exit 1; }
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
    _cachemax cachemax "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' complete_words "$COMPLETION" "$@"
}
got=$(complete_words cachemax "" | sort | tr '\n' ' ')
want=$(printf '%s\n' "${COMMANDS[@]}" | sort | tr '\n' ' ')
[ "$got" = "$want" ] || fail "completing a command offers '$got', expected '$want'"
got=$(complete_words cachemax st | sort | tr '\n' ' ')
want=$(printf '%s\n' "${COMMANDS[@]}" | grep '^st' | sort | tr '\n' ' ')
[ "$got" = "$want" ] || fail "completing 'st' offers '$got', expected '$want'"
for cmd in "${COMMANDS[@]}"; do
  offered=$(complete_words cachemax "$cmd" /srv --)
  while read -r opt; do
    grep -qxF -- "$opt" <<< "$offered" || fail "completing 'cachemax $cmd /srv --' does not offer $opt: $offered"
  done < <("$BIN" "$cmd" --help | sed -n 's/^ *\(--[a-z][a-z0-9-]*\).*/\1/p')
done
[ "$(complete_words cachemax start /srv --first-read "" | tr '\n' ' ')" = "origin fill " ] \
  || fail "--first-read does not complete its modes"
mkdir -p "$T_SCRATCH/complete-me/sub"
got=$(cd "$T_SCRATCH" && complete_words cachemax start /srv --cache complete-me/s)
[ "$got" = complete-me/sub ] || fail "--cache completes '$got', expected the directory complete-me/sub"

# Uninstall removes every file; the default prefix is /usr/local.
run_make uninstall DESTDIR="$DEST" PREFIX=/usr > "$T_SCRATCH/uninstall.out" 2>&1 \
  || fail "make uninstall failed: $(cat "$T_SCRATCH/uninstall.out")"
left=$(find "$DEST" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
run_make install DESTDIR="$DEST" > "$T_SCRATCH/install.out" 2>&1 || fail "make install (default PREFIX) failed"
for f in bin/cachemax share/man/man1/cachemax.1 share/bash-completion/completions/cachemax; do
  [ -f "$DEST/usr/local/$f" ] || fail "the default PREFIX is not /usr/local: $(find "$DEST" -type f)"
done
run_make uninstall DESTDIR="$DEST" > "$T_SCRATCH/uninstall.out" 2>&1 || fail "make uninstall (default PREFIX) failed"
[ -z "$(find "$DEST" ! -type d)" ] || fail "make uninstall (default PREFIX) left files"
echo "install: $expected files, ${#COMMANDS[@]} commands in the page and the completion; uninstall: none left"
