#!/usr/bin/env bash
# kill -9 of the daemon during a workload: the watchdog gives the original directory back within
# 2 seconds and restarts the daemon; nothing acknowledged by fsync is missing from the origin;
# stop and a new start work. Runs with and without passthrough.
. "$(dirname "$0")/lib.sh"
need_root

D=$T_SCRATCH/data C=$T_SCRATCH/cache
mkdir -p "$D"

state_of() { "$CACHEMAX" status --json | python3 -c '
import json,sys
for e in json.load(sys.stdin)["directories"]:
    if e["dir"]==sys.argv[1]: print(e["daemon_pid"], e["restarts"], e["health"])' "$1"; }

round() {
  local mode=$1; shift
  local ack=$T_SCRATCH/ack.$mode
  t_mount "$D" "$C" "$@"
  read -r pid restarts health < <(state_of "$D")
  [ "$health" = ok ] || fail "$mode: not healthy after start"
  # Writer: append a numbered line, fsync, then report it acknowledged (outside DIR).
  python3 - "$D/log.$mode" > "$ack" 2>/dev/null <<'PY' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = 0
while True:
    n += 1
    os.write(fd, b"%d\n" % n)
    os.fsync(fd)
    print(n, flush=True)
PY
  local writer=$!
  sleep 1
  local killed_at; killed_at=$(date +%s%N)
  kill -9 "$pid"
  # The original directory must be reachable again within 2 seconds (no ENOTCONN).
  local back=""
  for _ in $(seq 1 40); do
    if stat "$D/." >/dev/null 2>&1 && ! grep -q " $D fuse.cachemax " /proc/mounts; then back=1; break; fi
    # the restarted daemon may already have mounted again: that is fine too if it answers
    if stat "$D/." >/dev/null 2>&1 && [ "$(state_of "$D" | awk '{print $1}')" != "$pid" ] 2>/dev/null; then back=1; break; fi
    sleep 0.05
  done
  local ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
  [ -n "$back" ] || fail "$mode: directory not usable 2 s after kill -9"
  echo "$mode: directory usable again ${ms} ms after kill -9"
  kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
  # The watchdog restarts the daemon.
  local ok=""
  for _ in $(seq 1 100); do
    read -r npid restarts health < <(state_of "$D") || true
    if [ "${health:-}" = ok ] && [ "${npid:-$pid}" != "$pid" ] && [ "${restarts:-0}" -ge 1 ]; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || fail "$mode: daemon not restarted: $("$CACHEMAX" status)"
  t_unmount "$D"
  # Every acknowledged line is in the origin.
  local last; last=$(tail -n1 "$ack" || true)
  [ -n "$last" ] && [ "$last" -gt 0 ] || fail "$mode: the writer acknowledged nothing"
  local have; have=$(wc -l < "$D/log.$mode")
  [ "$have" -ge "$last" ] || fail "$mode: origin has $have lines, $last were acknowledged by fsync"
  seq 1 "$last" | cmp -s - <(head -n "$last" "$D/log.$mode") || fail "$mode: acknowledged lines differ in the origin"
  echo "$mode: $last fsync-acknowledged lines, all in the origin"
  # start again works
  t_mount "$D" "$C" "$@"
  [ "$(head -n1 "$D/log.$mode")" = 1 ] || fail "$mode: content after restart"
  t_unmount "$D"
}

round passthrough
round userspace --no-passthrough

# Nobody left to clean up: kill the watchdog, then the daemon. The mount is dead (ENOTCONN) and
# hides the original; stop must clear it and give the directory back.
echo "before the dead mount" > "$D/keep"
t_mount "$D" "$C"
read -r pid _ _ < <(state_of "$D")
wd=$(sed -n 's/^watchdog_pid=//p' "$(grep -l "^dir=$D\$" "${CACHEMAX_RUN_DIR:-/run/cachemax}"/*.state)")
[ -n "$wd" ] && [ "$wd" -gt 1 ] || fail "no watchdog pid in the state record"
kill -9 "$wd"; kill -9 "$pid"
for _ in $(seq 1 50); do stat "$D/." >/dev/null 2>&1 || break; sleep 0.05; done
err=$(stat "$D/." 2>&1 || true)
# ENOTCONN; ECONNABORTED where the daemon served through FUSE-over-io_uring (enable_uring Y)
echo "$err" | t_grep -E "not connected|connection abort" || fail "expected a dead mount (ENOTCONN or ECONNABORTED), got: $err"
"$CACHEMAX" status | t_grep "daemon not running" || fail "status does not report the dead daemon: $("$CACHEMAX" status)"
out=$("$CACHEMAX" stop "$D") || fail "stop on a dead mount failed: $out"
echo "$out" | t_grep "cleared a dead mount" || fail "stop said: $out"
grep -q " $D fuse.cachemax " /proc/mounts && fail "dead mount still there"
[ "$(cat "$D/keep")" = "before the dead mount" ] || fail "original not visible after clearing"
"$CACHEMAX" status | t_grep "no directory is accelerated" || fail "stale status record after clearing"
echo ok
