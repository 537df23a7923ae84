#!/usr/bin/env bash
# optest on plain directories: two runs on the same filesystem type must print identical
# transcripts (tmpfs twice, then the scratch fs twice), otherwise the transcript holds something
# run-dependent and is useless for diffing against a mount. The tmpfs vs scratch-fs differences are
# printed for information only.
source "$(dirname "$0")/lib.sh"

OPTEST=$TOOLS/integ/optest
SRC=$ROOT/tests/integ/optest.c
if [ ! -x "$OPTEST" ] || [ "$SRC" -nt "$OPTEST" ]; then
  make -C "$ROOT" -s build/tests/integ/optest >/dev/null || fail "cannot build $OPTEST"
fi
[ -x "$OPTEST" ] || fail "$OPTEST missing"

# A tmpfs scratch beside $T_SCRATCH, removed on exit together with everything lib.sh cleans.
t_shm optest

# run_optest DIR OUT: runs optest in the fresh directory DIR and checks it got to the end.
run_optest() {
  local dir=$1 out=$2 rc=0
  mkdir -p "$dir"
  (cd / && timeout 600 "$OPTEST" "$dir") >"$out" 2>"$out.err" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$out.err" >&2; tail -n 5 "$out" >&2; fail "optest $dir: exit $rc"; }
  [ "$(tail -n 1 "$out")" = "== end" ] || fail "optest $dir: transcript does not end with '== end'"
  if grep -qE '^(TIMEOUT|child (exit|killed))' "$out"; then
    grep -E '^(TIMEOUT|child (exit|killed))' "$out" >&2
    fail "optest $dir: a step timed out or a child failed"
  fi
}

# same_fs NAME A B: fails with the diff when two transcripts of one fs type differ.
same_fs() {
  if ! diff -u "$2" "$3" >"$T_SCRATCH/$1.diff"; then
    cat "$T_SCRATCH/$1.diff"
    fail "$1: two plain runs on the same filesystem type printed different transcripts"
  fi
  echo "$1: identical ($(wc -l <"$2") lines)"
}

OUT=$T_SCRATCH/out
mkdir -p "$OUT"
fstype() { df --output=fstype "$1" 2>/dev/null | tail -n 1 | tr -c 'a-zA-Z0-9\n' _; }
shm_type=$(fstype "$SHM")
scr_type=$(fstype "$T_SCRATCH")

run_optest "$SHM/a" "$OUT/shm-a.txt"
run_optest "$SHM/b" "$OUT/shm-b.txt"
same_fs "$shm_type-vs-$shm_type" "$OUT/shm-a.txt" "$OUT/shm-b.txt"

run_optest "$T_SCRATCH/a" "$OUT/scr-a.txt"
run_optest "$T_SCRATCH/b" "$OUT/scr-b.txt"
same_fs "$scr_type-vs-$scr_type" "$OUT/scr-a.txt" "$OUT/scr-b.txt"

echo "$shm_type vs $scr_type (information only):"
diff "$OUT/shm-a.txt" "$OUT/scr-a.txt" || true
echo "PASS"
