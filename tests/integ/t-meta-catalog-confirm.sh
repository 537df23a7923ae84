#!/usr/bin/env bash
# The seal is used only once confirmed (docs/ARCHITECTURE.md "The seal", review item "seal used
# before it is confirmed"). At the start the seal is checked before the mount, the watcher's
# mark comes after it, and a second check (a syncfs, the same device counters) follows the
# mark: a change between the first check and the mark is in no event. Here the daemon waits
# (CACHEMAX_SEAL_START_DELAY_MS) before the mark and again before the second check; a chmod
# behind the mount made in the first wait must be seen by a stat in the second. Before,
# the watcher was active and the seal valid in that second wait, so the LOOKUP trusted the
# sealed record and the old mode was served (and the kernel kept it).
. "$(dirname "$0")/lib.sh"
need_root
t_shm confirm
D=$T_SCRATCH/hdd BACK=$T_SCRATCH/back C=$SHM/cache
t_hdd_make 64M "$D"
mkdir -p "$D/d"
for j in 1 2 3 4; do echo "file $j" > "$D/d/f$j"; done
chmod 644 "$D"/d/f*
sync
t_backdoor "$D" "$BACK"
sleep 2.2  # the catalog records no listing younger than 2 s (the racily-clean rule)
seal() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }

t_mount "$D" "$C" --meta-catalog
ls -lR "$D" > /dev/null
t_unmount "$D"
[ -f "$C/cachemax-v1/catalog/seal" ] || fail "no seal after a clean stop"

# The sealed start, slowed: 4 s before the mark, 4 s before the second check.
T_MOUNTS+=("$D")
CACHEMAX_SEAL_START_DELAY_MS=4000 "$CACHEMAX" start "$D" --cache "$C" --meta-catalog \
  > "$T_SCRATCH/start.out" 2>&1 &
T_PIDS+=($!)
for i in $(seq 1 100); do grep -q " $D fuse.cachemax " /proc/mounts && break; sleep 0.1; done
grep -q " $D fuse.cachemax " /proc/mounts || fail "no mount appeared"
chmod 600 "$BACK/d/f2"   # before the mark: no event; the first check is behind us
sleep 5                   # now past the mark, before the second check
mode=$(stat -c %a "$D/d/f2")
wait
[ "$mode" = 600 ] || fail "a chmod between the seal's first check and the watcher's mark was served stale ($mode) before the second check"
[ "$(stat -c %a "$D/d/f2")" = 600 ] || fail "the chmod between the seal's checks is not seen after the start"
case "$(seal)" in void*) ;; *) fail "the original was written between the seal's checks, yet the seal is '$(seal)'" ;; esac
t_unmount "$D"
exit 0
