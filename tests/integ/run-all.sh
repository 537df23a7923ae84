#!/usr/bin/env bash
# Runs every tests/integ/t-*.sh and prints a closing "N passed, N failed, N skipped" line.
set -u
cd "$(dirname "$0")"
pass=0; failn=0; skipn=0; failed=()
for t in t-*.sh; do
  [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]] && continue
  start=$(date +%s)
  bash "$t" > "/tmp/cachemax-$t.log" 2>&1
  rc=$?
  el=$(( $(date +%s) - start ))
  case $rc in
    0) pass=$((pass+1)); echo "PASS $t (${el}s)";;
    77) skipn=$((skipn+1)); echo "SKIP $t: $(tail -n1 "/tmp/cachemax-$t.log")";;
    *) failn=$((failn+1)); failed+=("$t"); echo "FAIL $t (${el}s, rc=$rc)"; sed 's/^/    /' "/tmp/cachemax-$t.log" | tail -n 40;;
  esac
done
# Mounts of ours left under the tests' scratch locations (lib.sh: /tmp/cmtest.*, /dev/shm/cmtest*).
if grep -E ' (/tmp/cmtest\.|/dev/shm/cmtest)[^ ]* fuse\.cachemax ' /proc/mounts; then
  echo "FAIL: a test left the cachemax mount(s) above behind"; failn=$((failn+1))
fi
echo "integration: $pass passed, $failn failed, $skipn skipped"
[ $failn -eq 0 ]
