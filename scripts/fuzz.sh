#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS: first every saved crash input in tests/fuzz/regress/NAME
# (each must now pass), then new inputs from the committed seeds in tests/fuzz/seeds/NAME. The
# growing corpus stays in build/fuzz/corpus/NAME (not committed). A crash leaves its input in
# build/fuzz/NAME-crash-*: copy it to tests/fuzz/regress/NAME/ and add a unit test case.
# FUZZ_JOBS targets run at once (default: the number of CPUs), each a single process on its
# own core for its whole SECONDS; their lines are printed in the order of the arguments.
# usage: scripts/fuzz.sh SECONDS build/fuzz/TARGET...
set -u
seconds=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${FUZZ_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] 2>/dev/null || { echo "fuzz.sh: FUZZ_JOBS must be a positive number, not '$jobs'" >&2; exit 2; }

# one NAME BIN: the target's run; its report in build/fuzz/NAME.result, its status the exit's
one() {
  local name=$1 bin=$2 corpus=$root/build/fuzz/corpus/$1 start execs
  mkdir -p "$corpus"
  local regress=("$root/tests/fuzz/regress/$name"/*)
  if [ -e "${regress[0]}" ]; then
    "$bin" "${regress[@]}" >"$root/build/fuzz/$name.regress.log" 2>&1 ||
      { echo "FAIL fuzz $name: a saved crash input crashes again (build/fuzz/$name.regress.log)"; return 1; }
  fi
  start=$(date +%s)
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$root/build/fuzz/$name-" "$corpus" "$root/tests/fuzz/seeds/$name" \
       >"$root/build/fuzz/$name.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$root/build/fuzz/$name.log")
    echo "PASS fuzz $name ($(( $(date +%s) - start ))s, ${execs:-?} inputs)"
  else
    echo "FAIL fuzz $name: see build/fuzz/$name.log; the input is in build/fuzz/$name-*"
    tail -n 30 "$root/build/fuzz/$name.log" | sed 's/^/    /'
    return 1
  fi
}

mkdir -p "$root/build/fuzz"
names=()
for bin in "$@"; do
  name=$(basename "$bin")
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  one "$name" "$bin" > "$root/build/fuzz/$name.result" 2>&1 &
  names+=("$name")
done
wait
# (the status of each run is its line: a job reaped by `wait -n` has given its status there)
status=0
for name in "${names[@]}"; do
  cat "$root/build/fuzz/$name.result"
  grep -q '^PASS fuzz ' "$root/build/fuzz/$name.result" || status=1
done
exit $status
