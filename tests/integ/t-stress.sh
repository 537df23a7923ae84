#!/usr/bin/env bash
# Heavy load must never crash the daemon: 8 fio jobs writing and verifying data (buffered and
# O_DIRECT) while 4 shell workers storm the namespace (create, rename, link, unlink, listings,
# stats, directories made under parents removed at once) — with passthrough and with the
# user-space path, on the sanitized daemon. Afterwards the daemon was never restarted, fio
# verified every block, and the tree matches the origin.
. "$(dirname "$0")/lib.sh"
need_root
command -v fio >/dev/null || fail "fio missing (scripts/install-deps.sh installs it)"
SECS=${STRESS_SECONDS:-8}

storm() {  # storm DIR ID: namespace churn until the deadline
  local d=$1/storm$2 end=$((SECONDS + SECS)) i=0
  mkdir -p "$d"
  while [ $SECONDS -lt $end ]; do
    i=$((i + 1))
    echo "$i" > "$d/f$((i % 50))"
    ln -f "$d/f$((i % 50))" "$d/h$((i % 7))" 2>/dev/null || true
    mv -f "$d/f$(((i + 3) % 50))" "$d/g$((i % 11))" 2>/dev/null || true
    rm -f "$d/g$(((i + 5) % 11))" "$d/h$(((i + 2) % 7))"
    [ $((i % 20)) -eq 0 ] && { ls -laR "$1" >/dev/null 2>&1 || true; stat "$d"/* >/dev/null 2>&1 || true; }
    [ $((i % 30)) -eq 0 ] && { mkdir -p "$d/sub$i" && rmdir "$d/sub$i"; }
    # Directories made under a parent that goes at once: the kernel forgets the parent right
    # after the mkdir's reply (a worker once touched the parent's node after replying: ASan).
    [ $((i % 5)) -eq 0 ] && { mkdir -p "$d/t$i/a/b/c" && ln -s x "$d/t$i/a/s" && rm -rf "$d/t$i"; }
  done
}

round() {
  local label=$1; shift
  local D=$T_SCRATCH/data-$label
  mkdir -p "$D"
  t_mount "$D" "$T_SCRATCH/cache-$label" "$@"
  local pid; pid=$("$CACHEMAX" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["directories"][0]["daemon_pid"])')
  for w in 1 2 3 4; do storm "$D" "$w" & done
  fio --directory="$D" --size=24M --bsrange=4k-256k --rw=randwrite --verify=crc32c \
      --verify_fatal=1 --verify_state_save=0 --numjobs=4 --name=buffered --ioengine=psync \
      --name=direct --direct=1 --verify_state_save=0 --bs=4k --numjobs=4 --rw=randwrite --size=8M --ioengine=psync \
      --group_reporting --output="$T_SCRATCH/fio-$label.txt" >/dev/null 2>&1 || {
        cat "$T_SCRATCH/fio-$label.txt"; fail "$label: fio failed or a verify failed"; }
  wait
  grep -q "err= 0" "$T_SCRATCH/fio-$label.txt" || { cat "$T_SCRATCH/fio-$label.txt"; fail "$label: fio reported errors"; }
  local now; now=$("$CACHEMAX" status --json | python3 -c 'import json,sys; e=json.load(sys.stdin)["directories"][0]; print(e["daemon_pid"], e["restarts"], e["health"])')
  [ "$now" = "$pid 0 ok" ] || fail "$label: daemon was restarted or unhealthy after the load: $now (was pid $pid)"
  local through; through=$(cd "$D" && find . -printf '%p %y %s %n\n' | sort | md5sum)
  t_unmount "$D"
  local origin; origin=$(cd "$D" && find . -printf '%p %y %s %n\n' | sort | md5sum)
  [ "$through" = "$origin" ] || fail "$label: the tree seen through the mount differs from the origin"
  echo "$label: load survived, fio verified, tree identical"
}

round passthrough
round userspace --no-passthrough
echo ok
