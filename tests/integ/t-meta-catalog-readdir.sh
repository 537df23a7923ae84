#!/usr/bin/env bash
# READDIR of catalog listings while the directory changes (issue 14 review; docs/ARCHITECTURE.md
# "The metadata catalog", READDIR cookies): a reader lists a directory of 3,000 files in small
# getdents calls (each a READDIR resuming at a cookie, over a listing rebuilt for the call) while
# a writer behind the mount creates and unlinks other names in it. Every listing must hold each
# of the 3,000 files exactly once and no name twice — as the same reader gets on the original.
# Cookies that were indexes into the sorted listing repeated or skipped an entry whenever a name
# sorting before the reader's position came or went.
. "$(dirname "$0")/lib.sh"
need_root
DIRLIST=$TOOLS/integ/dirlist
[ -x "$DIRLIST" ] || fail "$DIRLIST not built (make all)"
KEEP=3000 ROUNDS=${ROUNDS:-8}
D=$T_SCRATCH/orig BACK=$T_SCRATCH/back
t_shm cache
C=$SHM/cache
t_hdd_make 128M "$D"
mkdir "$D/big"
(cd "$D/big" && seq -f 'keep-%05g' 1 $KEEP | xargs touch)
sync
t_backdoor "$D" "$BACK"
sleep 2.2  # listings younger than 2 s are not recorded: the first pass below records one

# writer DIR: creates and unlinks names spread over the whole name order until killed
writer() {
  python3 - "$1" <<'PY' &
import os, random, sys, time
d = sys.argv[1]; live = []; i = 0
while True:
    name = "%s-churn-%d" % (random.choice("0ABMakmz"), i); i += 1
    open(os.path.join(d, name), "w").close(); live.append(name)
    if len(live) > 40:
        os.unlink(os.path.join(d, live.pop(random.randrange(len(live)))))
    time.sleep(0.0005)
PY
  WRITER=$!
  T_PIDS+=("$WRITER")
}
# check LISTING LABEL: every keep-* once, no name twice
check() {
  local dup miss
  dup=$(sort "$1" | uniq -d | head -3 | tr '\n' ' ')
  miss=$(( KEEP - $(grep -c '^keep-' "$1" || true) ))
  [ -z "$dup" ] || { echo "$2: names returned twice: $dup"; return 1; }
  [ "$miss" -eq 0 ] || { echo "$2: $miss of the $KEEP files that stayed are missing (or extra)"; return 1; }
  [ "$(grep '^keep-' "$1" | sort -u | wc -l)" -eq "$KEEP" ] || { echo "$2: not every file once"; return 1; }
}
# rounds ROOT LABEL WDIR: ROUNDS listings of ROOT/big while the writer works in WDIR (the same
# directory, reached behind the mount for the mount's rounds); prints failures, returns their count
rounds() {
  local bad=0 i
  writer "$3"
  for i in $(seq 1 "$ROUNDS"); do
    "$DIRLIST" "$1/big" 1024 2000 > "$T_SCRATCH/list" || fail "dirlist $1/big failed"
    check "$T_SCRATCH/list" "$2 round $i" || bad=$((bad + 1))
  done
  kill "$WRITER"; wait "$WRITER" 2>/dev/null || true
  rm -f "$3"/*-churn-*
  return "$bad"
}

# The same reader on the original (ext4: hash cookies) holds the rule.
rounds "$BACK" original "$BACK/big" || fail "the original itself breaks the rule (the test is wrong)"
sleep 2.2

t_mount "$D" "$C" --meta-catalog
"$DIRLIST" "$D/big" > "$T_SCRATCH/quiet"
check "$T_SCRATCH/quiet" "quiet listing" || fail "a listing with no writer is wrong"
"$DIRLIST" "$D/big" > "$T_SCRATCH/quiet"   # from the record now
check "$T_SCRATCH/quiet" "quiet listing from the record" || fail "a listing from the record is wrong"
diff <(sort "$T_SCRATCH/quiet") <(ls -A "$BACK/big" | sort) > /dev/null || fail "the listing through the mount is not the original's"
hits=$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["hits"])')
[ "$hits" -gt 0 ] || fail "the catalog served no listing (hits $hits): the test would not test it"
# Not in a subshell: a failure inside must leave no writer running (T_PIDS is this shell's).
rounds "$D" mount "$BACK/big" > "$T_SCRATCH/rounds.out" ||
  fail "listings through the mount while the directory changed behind it: $(cat "$T_SCRATCH/rounds.out")"
echo "$ROUNDS listings of $KEEP files during creates and unlinks: each file once, no name twice"
t_unmount "$D"
exit 0
