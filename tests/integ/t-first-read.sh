#!/usr/bin/env bash
# First reads (start --first-read origin, the default): a file the cache holds nothing of is read
# through the origin (kernel passthrough, the daemon sees no READ), and the cache fills behind
# it after its last close: a small file is completed; a larger one keeps the chunks that the
# read left in the origin's page cache; after a read with O_DIRECT (nothing left there) the next
# open fills in user space and the one after is served from the cache. An evict makes the next
# read a first read again; a writer joining a first read leaves nothing stale behind; and
# --first-read fill sends first reads through the daemon. The origin is on the disk (/tmp), not
# tmpfs, whose pages are always in memory.
. "$(dirname "$0")/lib.sh"
need_root
t_shm first
D=$T_SCRATCH/data BACK=$T_SCRATCH/back C=$SHM/cache
t_backdoor "$D" "$BACK"
counter() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["stats"]["counters"]; k=sys.argv[1]; print(c[k[7:]] - c["passthrough_" + k[7:]] if k.startswith("daemon_") else c[k])' "$1"; }
# wait_counter NAME MIN: until the counter reaches MIN (background fills), at most 10 s
wait_counter() {
  local v
  for _ in $(seq 1 200); do v=$(counter "$1"); [ "$v" -ge "$2" ] && return 0; sleep 0.05; done
  fail "counter $1 did not reach $2 (it is $v)"
}
# drop_pages FILE: written out and dropped from the origin's page cache
drop_pages() { sync "$1"; dd if="$1" iflag=nocache count=0 status=none; }

head -c 512K /dev/urandom > "$D/small"
head -c 4M /dev/urandom > "$D/large"
head -c 4M /dev/urandom > "$D/direct"
head -c 4M /dev/urandom > "$D/shared"
t_mount "$D" "$C" --complete-max 1M

# 1. small file: passed through, then completed; the next open is a cache hit.
sum=$(md5sum < "$BACK/small")
[ "$(md5sum < "$D/small")" = "$sum" ] || fail "first read of small differs"
[ "$(counter first_reads)" = 1 ] || fail "the first read of small was not passed through (first_reads $(counter first_reads))"
[ "$(counter passthrough_opens_origin)" = 1 ] || fail "passthrough_opens_origin is $(counter passthrough_opens_origin), expected 1"
[ "$(counter daemon_read_ops_origin)" = 0 ] || fail "the daemon served $(counter daemon_read_ops_origin) reads of a first read"
wait_counter completions 1
[ "$(md5sum < "$D/small")" = "$sum" ] || fail "second read of small differs"
[ "$(counter passthrough_opens_cache)" = 1 ] || fail "second open of small was not a cache hit"

# 2. larger file read through the page cache: its chunks are copied from there (16 x 256 KiB).
fills=$(counter fills)
sum=$(md5sum < "$BACK/large")
drop_pages "$BACK/large"
[ "$(md5sum < "$D/large")" = "$sum" ] || fail "first read of large differs"
[ "$(counter first_reads)" = 2 ] || fail "the first read of large was not passed through"
wait_counter fills $((fills + 16))
[ "$(md5sum < "$D/large")" = "$sum" ] || fail "second read of large differs"
[ "$(counter passthrough_opens_cache)" = 2 ] || fail "second open of large was not a cache hit"

# 3. O_DIRECT first read: nothing in the page cache to copy, nothing filled; the second read
# fills in user space, the third is served from the cache.
sum=$(md5sum < "$BACK/direct")
drop_pages "$BACK/direct"
fills=$(counter fills) misses=$(counter daemon_read_ops_origin)
dd if="$D/direct" of=/dev/null bs=1M iflag=direct status=none
[ "$(counter first_reads)" = 3 ] || fail "the O_DIRECT first read was not passed through"
sleep 0.5
[ "$(counter fills)" = "$fills" ] || fail "an O_DIRECT first read filled $(( $(counter fills) - fills )) chunks (the origin was read twice)"
dd if="$D/direct" of=/dev/null bs=1M iflag=direct status=none
[ "$(counter first_reads)" = 3 ] || fail "the second read of direct was a first read again"
[ "$(counter daemon_read_ops_origin)" -gt "$misses" ] || fail "the second read of direct was not served in user space"
wait_counter fills $((fills + 16))
hits=$(counter daemon_read_ops_cache)
[ "$(dd if="$D/direct" bs=1M iflag=direct status=none | md5sum)" = "$sum" ] || fail "third read of direct differs"
[ "$(counter daemon_read_ops_cache)" -gt "$hits" ] || [ "$(counter passthrough_opens_cache)" = 3 ] \
  || fail "the third read of direct was not served from the cache"

# 4. evict: the next read is a first read again.
"$CACHEMAX" evict "$D" "$D/small" >/dev/null
[ "$(md5sum < "$D/small")" = "$(md5sum < "$BACK/small")" ] || fail "read after evict differs"
[ "$(counter first_reads)" = 4 ] || fail "the read after evict was not a first read (first_reads $(counter first_reads))"

# 5. a writer joins a first read (its writes pass through to the origin): nothing is filled
# behind, and what is read afterwards is what was written.
drop_pages "$BACK/shared"
exec 8<"$D/shared"
[ "$(counter first_reads)" = 5 ] || fail "the open of shared was not a first read"
printf 'changed through the mount' | dd of="$D/shared" bs=1 seek=100 conv=notrunc status=none
head -c 1M <&8 > /dev/null
fills=$(counter fills)
exec 8<&-
sleep 0.3
# (its pages are in the page cache now: a fill behind it would store chunks)
[ "$(counter fills)" = "$fills" ] || fail "the cache filled behind a first read that a writer joined"
[ "$(md5sum < "$D/shared")" = "$(md5sum < "$BACK/shared")" ] || fail "shared differs from the origin after a writer joined its first read"
dd if="$D/shared" bs=1 skip=100 count=25 status=none | t_grep "changed through the mount" \
  || fail "the write through the mount is not read back"
t_unmount "$D"

# 6. --first-read fill: a first read goes through the daemon and fills as it goes.
"$CACHEMAX" evict "$D" >/dev/null 2>&1 || true
rm -rf "$C"
t_mount "$D" "$C" --first-read fill --complete-max 1M
drop_pages "$BACK/large"
[ "$(md5sum < "$D/large")" = "$(md5sum < "$BACK/large")" ] || fail "first read (fill) of large differs"
[ "$(counter first_reads)" = 0 ] || fail "--first-read fill passed a first read through"
[ "$(counter daemon_read_ops_origin)" -gt 0 ] || fail "--first-read fill: the daemon served no miss"
t_unmount "$D"

# 7. an original that refuses O_DIRECT (ramfs): an O_DIRECT first read is not passed through
# (the kernel's reopen of the original would fail, and the application see EIO); it is served
# in user space, as before first reads passed through.
R=$T_SCRATCH/ramfs
mkdir -p "$R"
mount -t ramfs ramfs "$R"
T_BINDS+=("$R")
head -c 1M /dev/urandom > "$R/f"
python3 - "$R/f" <<'PY' 2>/dev/null && fail "ramfs accepted O_DIRECT: this section tests nothing"
import os, sys
os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
PY
sum=$(md5sum < "$R/f")
t_mount "$R" "$SHM/cache-ramfs"
got=$(python3 - "$R/f" <<'PY'
import hashlib, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf, h = mmap.mmap(-1, 1 << 20), hashlib.md5()
n = os.readv(fd, [buf])
h.update(buf[:n])
print(h.hexdigest())
PY
) || fail "an O_DIRECT read-only open on a ramfs original failed through the mount"
[ "$got  -" = "$sum" ] || fail "the O_DIRECT read on ramfs differs"
"$CACHEMAX" stats "$R" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["stats"]["counters"]; sys.exit(c["first_reads"] != 0)' \
  || fail "an O_DIRECT open on ramfs was passed through as a first read"
t_unmount "$R"

# 8. a bad mode is refused with a message that names the choices.
out=$("$CACHEMAX" start "$D" --cache "$C" --first-read sometimes 2>&1) && fail "--first-read sometimes was accepted"
echo "$out" | t_grep "'origin' or 'fill'" || fail "--first-read sometimes said: $out"
echo ok
