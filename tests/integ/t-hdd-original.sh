#!/usr/bin/env bash
# The HDD-like original (lib.sh t_hdd_*: a loop-backed ext4 image, reads throttled to 200 IOPS
# by cgroup v1 blkio): the throttle really makes the original slow (a cold cat of every small
# file costs at least one read of the device each, at no more than ~200 reads a second); and
# after a warm-up through the mount, a restart and a page-cache drop, the same cat through the
# mount reads the device for metadata only, far fewer times than there are files (the data comes
# from the cache copies). Issue 14 will tighten this to "metadata from the catalog, no reads".
. "$(dirname "$0")/lib.sh"
need_root
t_hdd_can_throttle || skip "no cgroup v1 blkio throttle ($T_BLKIO_READ_IOPS)"
FILES=400
t_shm hdd
D=$T_SCRATCH/hdd BACK=$T_SCRATCH/back C=$SHM/cache
t_hdd_make 64M "$D"
for i in $(seq 1 $((FILES / 100))); do
  mkdir "$D/d$i"
  for j in $(seq 1 100); do head -c $((512 + RANDOM % 3584)) /dev/urandom > "$D/d$i/f$j"; done
done
sync
t_backdoor "$D" "$BACK"
t_hdd_throttle "$T_HDD_DEV" 200
grep -q "^$(t_hdd_majmin "$T_HDD_DEV") 200\$" "$T_BLKIO_READ_IOPS" || fail "throttle not set: $(cat "$T_BLKIO_READ_IOPS")"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# cat_reads ROOT: a cold cat of every file under ROOT; its device reads in $READS, seconds in $SECS
cat_reads() {
  local r0 s
  drop
  r0=$(t_hdd_reads "$T_HDD_DEV"); s=$(date +%s.%N)
  find "$1" -type f -print0 | xargs -0 cat | wc -c > /dev/null
  SECS=$(echo "$(date +%s.%N) - $s" | bc)
  READS=$(( $(t_hdd_reads "$T_HDD_DEV") - r0 ))
}

cat_reads "$BACK"; orig=$READS
echo "original: $orig device reads, ${SECS}s for $FILES files"
[ "$orig" -ge "$FILES" ] || fail "a cold cat of $FILES files read the device only $orig times"
# 200 IOPS: $FILES reads take at least ~FILES/200 s (allowing the throttle's first slice)
awk -v s="$SECS" -v n="$FILES" 'BEGIN { exit !(s >= n / 200 * 0.6) }' \
  || fail "the throttle did not slow reads: $orig reads in ${SECS}s"

# The warm-up's daemon runs under an fd limit of 256: its fill queue holds 32 jobs, and the
# completions one pass queues beyond that wait in the fill backlog (no fd each) instead of
# being dropped (before the backlog: 91 of 400 files filled by one pass under this limit).
CACHEMAX_FD_LIMIT=256 t_mount "$D" "$C"
fills() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"]["fills"])'; }
# Warm-up: first reads pass through and small files are completed after their close; one pass
# queues a completion for every file (a queue of 256 once skipped 123 of 400, filled only by
# their next read; now those the queue refuses wait in the backlog).
find "$D" -type f -print0 | xargs -0 cat | wc -c > /dev/null
for _ in $(seq 1 150); do [ "$(fills)" -ge "$FILES" ] && break; sleep 0.2; done
echo "warm-up: $(fills) fills after one pass"
[ "$(fills)" -ge "$FILES" ] || fail "only $(fills) of $FILES small files filled after one pass"
t_unmount "$D"
t_mount "$D" "$C"
cat_reads "$D"; mnt=$READS
echo "through the mount, warm, restarted: $mnt device reads, ${SECS}s"
[ "$mnt" -lt $((FILES / 4)) ] || fail "through the warm mount, a cat of $FILES files read the device $mnt times; counters: $("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"])')"
[ "$(find "$D" -type f | wc -l)" = "$FILES" ] || fail "files missing through the mount"
t_hdd_unthrottle "$T_HDD_DEV"
grep -q "^$(t_hdd_majmin "$T_HDD_DEV") " "$T_BLKIO_READ_IOPS" && fail "throttle still set after t_hdd_unthrottle"
exit 0
