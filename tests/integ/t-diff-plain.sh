#!/usr/bin/env bash
# difftest against itself: two plain directories must agree over 20,000 ops, and difftest must
# catch a fault it injects into one side (otherwise a passing difftest run would mean nothing).
source "$(dirname "$0")/lib.sh"

DT=$TOOLS/diff/difftest
[ -x "$DT" ] || fail "$DT is not built (run make)"

# Usage and setup errors exit 2.
rc=0; "$DT" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "difftest without arguments exited $rc, expected 2"
mkdir -p "$T_SCRATCH/full" "$T_SCRATCH/empty"
touch "$T_SCRATCH/full/x"
rc=0; "$DT" "$T_SCRATCH/full" "$T_SCRATCH/empty" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "difftest on a non-empty DIR_A exited $rc, expected 2"

# Two plain directories: every result must agree.
mkdir -p "$T_SCRATCH/a" "$T_SCRATCH/b"
"$DT" --seed 1 --ops 20000 "$T_SCRATCH/a" "$T_SCRATCH/b" \
  || fail "difftest found a difference between two plain directories (see above)"

# Self-check: side A's 50th write gets one wrong byte. Whether that byte is read before it is
# overwritten, truncated or deleted depends on the op sequence, so try a few seeds (the outcome
# for a given seed is deterministic; with the current op mix seed 1 already catches it).
caught=0
for seed in 1 2 3 4 5 6 7 8; do
  rm -rf "$T_SCRATCH/fa" "$T_SCRATCH/fb"
  mkdir -p "$T_SCRATCH/fa" "$T_SCRATCH/fb"
  rc=0
  "$DT" --seed $seed --ops 20000 --inject-fault 50 "$T_SCRATCH/fa" "$T_SCRATCH/fb" \
    >"$T_SCRATCH/fault.out" 2>"$T_SCRATCH/fault.err" || rc=$?
  case $rc in
    0) echo "seed $seed: injected fault was overwritten before it could be observed";;
    1) grep -q "MISMATCH at op" "$T_SCRATCH/fault.err" || fail "exit 1 without a MISMATCH report"
       grep -q "last ops" "$T_SCRATCH/fault.err" || fail "MISMATCH report without the op trace"
       head -n 3 "$T_SCRATCH/fault.err"
       caught=1; break;;
    *) cat "$T_SCRATCH/fault.err" >&2; fail "difftest --inject-fault exited $rc, expected 1";;
  esac
done
[ $caught -eq 1 ] || fail "difftest did not detect the injected fault with any seed"
echo "t-diff-plain: ok"
