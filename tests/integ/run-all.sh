#!/usr/bin/env bash
# Runs every tests/integ/t-*.sh and prints a closing "N passed, N failed, N skipped" line.
# Another run may go on at the same time on this machine: this one has its own id (CMTEST_RUN,
# in every scratch path lib.sh makes), its own log directory, and looks only at its own mounts.
set -u
cd "$(dirname "$0")"
export CMTEST_RUN=${CMTEST_RUN:-$(mktemp -u XXXXXX)}
LOGS=$(mktemp -d "/tmp/cachemax-check-$CMTEST_RUN.XXXXXX")
pass=0; failn=0; skipn=0; failed=()
for t in t-*.sh; do
  [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]] && continue
  start=$(date +%s)
  log=$LOGS/$t.log
  bash "$t" > "$log" 2>&1
  rc=$?
  el=$(( $(date +%s) - start ))
  case $rc in
    0) pass=$((pass+1)); echo "PASS $t (${el}s)";;
    77) skipn=$((skipn+1)); echo "SKIP $t: $(tail -n1 "$log")";;
    *) failn=$((failn+1)); failed+=("$t"); echo "FAIL $t (${el}s, rc=$rc)"; sed 's/^/    /' "$log" | tail -n 40;;
  esac
done
# Mounts of ours left under this run's scratch locations (lib.sh: /tmp/cmtest-RUN.*,
# /dev/shm/cmtest-RUN-*); other runs' mounts are theirs.
if grep -E " (/tmp/cmtest-$CMTEST_RUN\.|/dev/shm/cmtest-$CMTEST_RUN-)[^ ]* fuse\.cachemax " /proc/mounts; then
  echo "FAIL: a test left the cachemax mount(s) above behind"; failn=$((failn+1))
fi
if [ $failn -eq 0 ]; then rm -rf "$LOGS"; else echo "logs: $LOGS"; fi
echo "integration: $pass passed, $failn failed, $skipn skipped"
[ $failn -eq 0 ]
