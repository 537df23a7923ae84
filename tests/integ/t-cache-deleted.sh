#!/usr/bin/env bash
# Deleted files return their space (issue #12): after a metadata-heavy run through the mount
# (create, write, read, rename over, delete) the cache holds objects for live files only; a
# file deleted while open keeps its copy for its reader until the last close; a hard link
# keeps it; and files deleted or changed behind the cache while the daemon was down are
# reclaimed by the scrub after the next start (CACHEMAX_SCRUB_DELAY_MS: at once here), which
# counts and logs them.
. "$(dirname "$0")/lib.sh"
need_root
t_shm deleted
D=$SHM/data C=$T_SCRATCH/cache
mkdir -p "$D"
json() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
counter() { json "j['stats']['counters']['$1']"; }
objects() { find "$C/cachemax-v1/objects" -name '*.data' 2>/dev/null | wc -l; }
copy_of() {   # the cache copy of file $1 (the original's dev: $SHM's; inode numbers are the original's)
  local key
  key=$(python3 -c 'import os,sys; print("%016x-%016x" % (os.stat(sys.argv[2]).st_dev, os.stat(sys.argv[1]).st_ino))' "$1" "$SHM")
  find "$C/cachemax-v1/objects" -name "$key.data"
}
wait_completions() { for _ in $(seq 1 600); do [ "$(counter completions)" -ge "$1" ] && return 0; sleep 0.05; done; fail "completions did not reach $1: $(counter completions)"; }

CACHEMAX_SCRUB_DELAY_MS=600000 t_mount "$D" "$C"  # no scrub racing this part (a link moves ctime)
# A metadata-heavy run: 3 rounds of 100 files written, read twice (cached), half of them
# appended and renamed over another, all deleted but 3.
for round in 1 2 3; do
  mkdir -p "$D/w"
  for i in $(seq 1 100); do head -c $((i * 97 % 30000 + 1)) /dev/urandom > "$D/w/f$i"; done
  before=$(counter completions)
  cat "$D"/w/f* > /dev/null
  wait_completions $((before + 100))
  cat "$D"/w/f* > /dev/null
  for i in $(seq 1 2 99); do printf x >> "$D/w/f$i"; mv "$D/w/f$i" "$D/w/f$((i + 1))"; done
  cat "$D"/w/f* > /dev/null
  [ "$round" = 3 ] && mv "$D/w/f2" "$D/w/f4" "$D/w/f6" "$D/"
  rm -rf "$D/w"
done
cat "$D"/f* > /dev/null; cat "$D"/f* > /dev/null
sleep 0.5
live=$(find "$D" -type f | wc -l)
echo "metadata-heavy run: $live live files, $(objects) cache objects, deleted_objects $(counter deleted_objects)"
[ "$live" = 3 ] || fail "expected 3 live files, found $live"
[ "$(objects)" -le "$live" ] || fail "$(objects) cache objects for $live live files"
[ "$(json "j['cache_objects']")" = "$(objects)" ] || fail "cache_objects $(json "j['cache_objects']") but $(objects) data files"
# 100 copies a round: 50 renamed over, 50 deleted; 3 files of the last round live on.
[ "$(counter deleted_objects)" = 297 ] || fail "deleted_objects $(counter deleted_objects), expected 297"

# Deleted while open: the reader keeps its copy (and reads the file's bytes) until its close.
head -c 100000 /dev/urandom > "$T_SCRATCH/held"
sum=$(md5sum < "$T_SCRATCH/held")
before=$(counter completions)
cp "$T_SCRATCH/held" "$D/held"
cat "$D/held" > /dev/null; wait_completions $((before + 1))
cat "$D/held" > /dev/null   # cached now
copy=$(copy_of "$SHM/data/held")
[ -n "$copy" ] || fail "no cache copy of held"
exec 8<"$D/held"
rm "$D/held"
[ -e "$copy" ] || fail "the copy of an open deleted file went before its last close"
[ "$(md5sum <&8)" = "$sum" ] || fail "the reader of a deleted file read other bytes"
exec 8<&-
for _ in $(seq 1 50); do [ -e "$copy" ] || break; sleep 0.05; done
[ -e "$copy" ] && fail "the copy of a deleted file outlived its last close"

# A hard link keeps the file, and its copy.
before=$(counter completions)
head -c 50000 /dev/urandom > "$D/linked"
cat "$D/linked" > /dev/null; wait_completions $((before + 1))
ln "$D/linked" "$D/other-name"
rm "$D/linked"
[ -n "$(copy_of "$SHM/data/other-name")" ] || fail "unlinking one of two names dropped the copy"
copy=$(copy_of "$SHM/data/other-name")
rm "$D/other-name"   # the last name
[ -e "$copy" ] && fail "unlinking the last name kept the copy"

# Opens racing the unlink of their file through the mount (its own mount on /tmp, where the
# race shows; not on tmpfs): no copy outlives the file. Before stop 30, an open that reached the
# inode after the unlink's discard created a fresh object for it, recorded as a live one (a
# review: 27 of 1,000 rounds; 1 of 600 here once: a race, so this fails only sometimes).
D2=$T_SCRATCH/racing C2=$T_SCRATCH/cache-racing
mkdir -p "$D2"
t_mount "$D2" "$C2" > /dev/null
PYTHONPATH=$(cd "$(dirname "$0")" && pwd) python3 - "$D2" <<'PY'
import os, sys
from readers import Readers   # tests/integ/readers.py
d = sys.argv[1]
for i in range(600):
    p = os.path.join(d, "race%d" % i)
    with open(p, "wb") as f:
        f.write(os.urandom(14000))
    with Readers(p, 2):
        with open(p, "rb") as f:
            f.read()
        os.unlink(p)
PY
t_unmount "$D2" > /dev/null
left=$(find "$C2/cachemax-v1/objects" -name '*.data' 2>/dev/null | wc -l)
echo "opens racing unlinks: $left copies left of 600 files unlinked through the mount"
[ "$left" = 0 ] || fail "$left copies of files unlinked through the mount while opened stayed in the cache"
t_unmount "$D"

# Behind the cache while it is stopped: 20 cached files, 8 deleted, 4 changed, 8 kept.
mkdir -p "$D/b"
for i in $(seq 1 20); do head -c 40000 /dev/urandom > "$D/b/g$i"; done
t_mount "$D" "$C"
before=$(counter completions); cat "$D"/b/g* > /dev/null; wait_completions $((before + 20))
n0=$(objects)
t_unmount "$D"
rm "$D"/b/g{1..8}
for i in 9 10 11 12; do echo changed >> "$D/b/g$i"; done
start=$(date +%s%N)
CACHEMAX_SCRUB_DELAY_MS=0 t_mount "$D" "$C"
echo "start took $(( ($(date +%s%N) - start) / 1000000 )) ms"
for _ in $(seq 1 100); do [ "$(json "j['scrub_passes']")" -ge 1 ] && break; sleep 0.1; done
[ "$(json "j['scrub_passes']")" -ge 1 ] || fail "the scrub did not run"
echo "scrub: $n0 objects before, $(objects) after; scrub_reclaimed $(counter scrub_reclaimed), $(json "j['scrub_reclaimed_bytes']") bytes"
[ "$(objects)" = $((n0 - 12)) ] || fail "expected $((n0 - 12)) objects after the scrub, found $(objects)"
[ "$(counter scrub_reclaimed)" = 12 ] || fail "scrub_reclaimed $(counter scrub_reclaimed), expected 12"
[ "$(json "j['scrub_reclaimed_bytes']")" -ge $((12 * 40000)) ] || fail "scrub_reclaimed_bytes too small"
grep -q "scrub: examined .* reclaimed 12 .*8 of deleted files, 4 of changed files" "$CACHEMAX_RUN_DIR"/*.log \
  || fail "the scrub's reclaim was not logged"
for i in $(seq 13 20); do [ -n "$(copy_of "$D/b/g$i")" ] || fail "the scrub dropped the copy of live g$i"; done
# The kept ones are still hits.
hits=$(counter passthrough_opens_cache)
cat "$D"/b/g{13..20} > /dev/null
[ "$(counter passthrough_opens_cache)" = $((hits + 8)) ] || fail "kept copies are not hits"
echo "deleted files: space returned through the mount and behind it"
