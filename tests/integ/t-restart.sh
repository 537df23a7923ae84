#!/usr/bin/env bash
# Restart right after an unmount, as a service manager does it: 200 cycles of start, some use,
# then a plain umount (odd cycles) or cachemax stop (even ones), and at once the next start with
# the same cache directory. The exiting daemon still holds the cache directory for a few tens of
# milliseconds; the new one must wait for it instead of refusing. Zero failures allowed.
. "$(dirname "$0")/lib.sh"
need_root
CYCLES=${RESTART_CYCLES:-200}

t_shm restart
D=$SHM/dir
C=$T_SCRATCH/cache
mkdir -p "$D"
head -c 1M /dev/urandom > "$D/big"
for i in $(seq 1 8); do echo "small $i" > "$D/s$i"; done
T_MOUNTS+=("$D")

start_ns=$(date +%s%N)
for i in $(seq 1 "$CYCLES"); do
  if ! "$CACHEMAX" start "$D" --cache "$C" >/dev/null 2>"$T_SCRATCH/err"; then
    cat "$T_SCRATCH/err" >&2
    fail "cycle $i: start right after the unmount failed"
  fi
  # Work for the daemon to be busy with when the unmount comes: first reads (a completion
  # behind them), a write, a listing.
  cat "$D"/s* "$D/big" >/dev/null
  echo "$i" > "$D/s1"
  ls -l "$D" >/dev/null
  if [ $((i % 2)) -eq 1 ]; then
    umount "$D"
  else
    "$CACHEMAX" stop "$D" >/dev/null
  fi
done
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
grep -q " $D fuse.cachemax " /proc/mounts && fail "a mount is left after the last unmount"
[ "$(cat "$D/s1")" = "$CYCLES" ] || fail "the last write is not in the original directory"
echo "$CYCLES unmount-then-start cycles, 0 failures, ${elapsed_ms} ms ($(( elapsed_ms / CYCLES )) ms per cycle)"
