#!/usr/bin/env bash
# Failures of the cache device never reach applications: with the cache on a 1 MiB tmpfs
# (ENOSPC), on a tmpfs remounted read-only mid-run (EROFS), with the cache directory deleted
# under the daemon, and with EIO injected into the store's fdatasync, every read through the
# mount returns the origin's bytes, writes reach the origin, and stats count cache errors.
. "$(dirname "$0")/lib.sh"
need_root
t_shm cfault
counter() { "$CACHEMAX" stats "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"][sys.argv[1]])' "$2"; }
check_reads() {  # check_reads DIR: every file reads as its origin twice, and a write lands
  local d=$1 f
  for f in "$d"/f*; do
    [ "$(md5sum < "$f")" = "$(cat "$SHM/sums/$(basename "$f")")" ] || fail "$f: wrong bytes through the mount"
    [ "$(md5sum < "$f")" = "$(cat "$SHM/sums/$(basename "$f")")" ] || fail "$f: wrong bytes on the second read"
  done
  echo appended >> "$d/f0" && tail -n1 "$d/f0" | t_grep appended || fail "a write through the mount failed"
  md5sum < "$d/f0" > "$SHM/sums/f0"
  "$CACHEMAX" status --json | t_grep '"restarts": 0' || fail "the daemon crashed and was restarted"
}
# remount_ro DIR: a background fill behind the last read may still hold a cache file open for
# writing, which makes a read-only remount fail with EBUSY for that long: retry.
remount_ro() {
  local i
  for i in $(seq 1 100); do mount -o remount,ro "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "could not remount $1 read-only"
}
setup() {  # setup NAME: an origin with 4 files of 1.5 MiB
  local d=$SHM/$1
  mkdir -p "$d" "$SHM/sums"
  for i in 0 1 2 3; do head -c 1500000 /dev/urandom > "$d/f$i"; md5sum < "$d/f$i" > "$SHM/sums/f$i"; done
  echo "$d"
}

# ENOSPC: a cache device that fills up under the cache (start refuses a --size above the
# device's size, so something else takes the space: the store's capacity is not reached).
D=$(setup nospc); C=$SHM/tiny
mkdir -p "$C"; mount -t tmpfs -o size=64m,mode=0700 cmtest "$C"; T_BINDS+=("$C")
t_mount "$D" "$C/cache" --size 60M
head -c 63M /dev/zero > "$C/filler" 2>/dev/null || true   # about 1 MiB left for the cache
check_reads "$D"
[ "$(counter "$D" cache_errors)" -gt 0 ] || fail "ENOSPC on the cache device was not counted"
t_unmount "$D"

# EROFS: the cache device turns read-only while the daemon runs.
D=$(setup erofs); C=$SHM/rofs
mkdir -p "$C"; mount -t tmpfs -o size=64m cmtest "$C"; T_BINDS+=("$C")
t_mount "$D" "$C/cache"
cat "$D/f1" > /dev/null
remount_ro "$C"
check_reads "$D"
[ "$(counter "$D" cache_errors)" -gt 0 ] || fail "EROFS on the cache device was not counted"
t_unmount "$D"
mount -o remount,rw "$C"

# The cache directory disappears under the daemon.
D=$(setup gone); C=$T_SCRATCH/gone-cache
t_mount "$D" "$C"
cat "$D/f2" > /dev/null
rm -rf "$C"
check_reads "$D"
[ "$(counter "$D" cache_errors)" -gt 0 ] || fail "the deleted cache directory caused no cache error"
t_unmount "$D"

# EIO from the cache device when a record is made durable.
D=$(setup eio); C=$T_SCRATCH/eio-cache
CACHEMAX_FAULT="fdatasync:1:EIO" t_mount "$D" "$C"
check_reads "$D"
[ "$(counter "$D" cache_errors)" -gt 0 ] || fail "the injected EIO was not counted"
t_unmount "$D"
# A cache device that is read-only from the start: the directory is served without a cache,
# and status says why.
D=$(setup rostart); C=$SHM/rostart-dev
# mode 0700: a tmpfs root is 1777 by default, which start refuses as a cache directory
mkdir -p "$C"; mount -t tmpfs -o size=8m,ro,mode=0700 cmtest "$C"; T_BINDS+=("$C")
t_mount "$D" "$C"
"$CACHEMAX" status | t_grep "cache: .*(off: cache directory unusable: Read-only file system)" \
  || fail "status does not say the cache is off: $("$CACHEMAX" status)"
"$CACHEMAX" status --json | t_grep '"cache_on": false' || fail "status --json: cache_on not false"
check_reads "$D"
t_unmount "$D"

# Repeated failures put the whole cache in bypass: status and stats say so, applications see
# nothing, and the cache is tried again after the bypass period (5 s here, 60 s by default:
# long enough that the checks below finish inside it on a loaded machine).
D=$(setup bypass); C=$SHM/bypass-dev
mkdir -p "$C"; mount -t tmpfs -o size=64m cmtest "$C"; T_BINDS+=("$C")
CACHEMAX_BYPASS_RETRY_MS=5000 t_mount "$D" "$C/cache"
remount_ro "$C"
for round in 1 2 3; do for i in 0 1 2 3; do cat "$D/f$i" > /dev/null; done; done
"$CACHEMAX" status | t_grep "BYPASSED: .*cache-device errors" || fail "status does not show the bypass: $("$CACHEMAX" status)"
"$CACHEMAX" status --json | t_grep '"bypass": true' || fail "status --json: bypass not true"
"$CACHEMAX" status | t_grep "health: *degraded: cache bypassed" || fail "health is not degraded in bypass: $("$CACHEMAX" status)"
"$CACHEMAX" stats "$D" | t_grep "BYPASS" || fail "stats does not show the bypass"
[ "$(counter "$D" bypass_entries)" = 1 ] || fail "bypass_entries is $(counter "$D" bypass_entries)"
errors=$(counter "$D" cache_errors)
check_reads "$D"
[ "$(counter "$D" cache_errors)" = "$errors" ] || fail "the cache was still used in bypass"
mount -o remount,rw "$C"
sleep 3
hit() { cat "$D/f1" > /dev/null; [ "$(counter "$D" passthrough_opens_cache)" -ge 1 ]; }
for _ in $(seq 1 50); do hit && break; sleep 0.1; done
"$CACHEMAX" status --json | t_grep '"bypass": false' || fail "the cache was not tried again after the bypass period"
hit || fail "no hit after the bypass ended"
t_unmount "$D"

# A cache directory that holds another directory's cache refuses the start, clearly.
D2=$(setup other)
out=$("$CACHEMAX" start "$D2" --cache "$T_SCRATCH/eio-cache" 2>&1) && { T_MOUNTS+=("$D2"); fail "start with another directory's cache succeeded"; }
echo "$out" | t_grep "holds the cache of another directory" || fail "start said: $out"
grep -q " $D2 fuse.cachemax " /proc/mounts && fail "a refused start left a mount"
echo ok
