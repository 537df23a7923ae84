#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS: first every saved crash input in tests/fuzz/regress/NAME
# (each must now pass), then new inputs from the committed seeds in tests/fuzz/seeds/NAME. The
# growing corpus stays in build/fuzz/corpus/NAME (not committed). A crash leaves its input in
# build/fuzz/NAME-crash-*: copy it to tests/fuzz/regress/NAME/ and add a unit test case.
# usage: scripts/fuzz.sh SECONDS build/fuzz/TARGET...
set -u
seconds=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$@"; do
  name=$(basename "$bin")
  corpus=$root/build/fuzz/corpus/$name
  mkdir -p "$corpus"
  regress=("$root/tests/fuzz/regress/$name"/*)
  if [ -e "${regress[0]}" ]; then
    "$bin" "${regress[@]}" >"$root/build/fuzz/$name.regress.log" 2>&1 ||
      { echo "FAIL fuzz $name: a saved crash input crashes again (build/fuzz/$name.regress.log)"; status=1; continue; }
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
    status=1
  fi
done
exit $status
