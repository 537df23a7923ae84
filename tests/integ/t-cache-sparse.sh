#!/usr/bin/env bash
# Sparse files stay sparse (issue #12): SEEK_DATA/SEEK_HOLE through the mount equal the
# original's before the file is cached, once it is cached (the open then passes through to the
# cache copy and LSEEK is answered from it), after a stop/start, and when the cache was filled
# by user-space misses and read-ahead (--first-read fill); the cache copies stay small (st_blocks)
# and read the same bytes. Origin on tmpfs, cache on the scratch file system.
. "$(dirname "$0")/lib.sh"
need_root
t_shm sparse
D=$SHM/data BACK=$SHM/back C=$T_SCRATCH/cache
t_backdoor "$D" "$BACK"
M=$((1024 * 1024))

# s: holes with data inside one chunk, across a chunk boundary, and at the partial last chunk;
# z: nothing but a hole; dense: no hole (a control).
python3 - "$D" <<'EOF'
import os, sys
d = sys.argv[1]
M = 1024 * 1024
with open(f"{d}/s", "wb") as f:
    f.truncate(12 * M + 123)
    for off, n in ((M, 4096), (3 * M + 100 * 1024, 200 * 1024), (7 * M, 1), (12 * M, 123)):
        f.seek(off); f.write(os.urandom(n))
with open(f"{d}/z", "wb") as f:
    f.truncate(6 * M)
with open(f"{d}/dense", "wb") as f:
    f.write(os.urandom(M + 17))
EOF

# "data,hole data,hole ..." of a file, as SEEK_DATA/SEEK_HOLE report it.
seekmap() {
  python3 - "$1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size, pos, out = os.fstat(fd).st_size, 0, []
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, data, os.SEEK_HOLE)
    out.append(f"{data},{hole}")
    pos = hole
# SEEK_HOLE from inside each hole found, too (a copy's own holes must not show up as data).
print(" ".join(out) or "none")
EOF
}
counter() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["stats"]["counters"]; k=sys.argv[1]; print(c[k[7:]] - c["passthrough_" + k[7:]] if k.startswith("daemon_") else c[k])' "$1"; }
wait_counter() { for _ in $(seq 1 200); do [ "$(counter "$1")" -ge "$2" ] && return 0; sleep 0.05; done; fail "$1 did not reach $2: $(counter "$1")"; }
# The cache copy of origin file $1 (by its dev and inode).
copy_of() {
  local key
  key=$(python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print("%016x-%016x" % (s.st_dev, s.st_ino))' "$1")
  find "$C/cachemax-v1/objects" -name "$key.data"
}
blocks_kib() { echo $(( $(stat -c %b "$1") * 512 / 1024 )); }

check_all() {   # $1: when
  local f want got
  for f in s z dense; do
    want=$(seekmap "$BACK/$f"); got=$(seekmap "$D/$f")
    [ "$got" = "$want" ] || fail "$1: SEEK_DATA/SEEK_HOLE of $f through the mount: '$got', original: '$want'"
    [ "$(md5sum < "$D/$f")" = "$(md5sum < "$BACK/$f")" ] || fail "$1: bytes of $f differ"
  done
}
check_copies() {   # $1: when
  local s z
  s=$(copy_of "$BACK/s"); z=$(copy_of "$BACK/z")
  [ -n "$s" ] && [ -n "$z" ] || fail "$1: no cache copies of s and z"
  [ "$(seekmap "$s")" = "$(seekmap "$BACK/s")" ] || fail "$1: the copy of s has other holes: $(seekmap "$s")"
  [ "$(blocks_kib "$s")" -le 1024 ] || fail "$1: the copy of s (12 MiB, 205 KiB of data) takes $(blocks_kib "$s") KiB"
  [ "$(blocks_kib "$z")" = 0 ] || fail "$1: the copy of an all-hole file takes $(blocks_kib "$z") KiB"
  echo "$1: copy of s $(blocks_kib "$s") KiB allocated for $(( $(stat -c %s "$s") / 1024 )) KiB, of z $(blocks_kib "$z") KiB"
}

t_mount "$D" "$C"
echo "original s: $(seekmap "$BACK/s")"
check_all "not cached"
cat "$D/s" "$D/z" "$D/dense" > /dev/null   # first reads: completed behind them
wait_counter completions 3
hits=$(counter passthrough_opens_cache)
check_all "cached"
[ "$(counter passthrough_opens_cache)" -ge $((hits + 3)) ] || fail "cached files were not opened from the cache copy"
check_copies "completion"
# An open file, passing through to the copy, answers LSEEK from it.
exec 8<"$D/s"
python3 -c 'import os; print(os.lseek(8, 0, os.SEEK_DATA), os.lseek(8, 2*1024*1024, os.SEEK_HOLE))' \
  | t_grep -x "1048576 2097152" || fail "lseek on an open cached file"
exec 8<&-
t_unmount "$D"

t_mount "$D" "$C"   # the records claim the hole chunks: still cached, still sparse
check_all "after restart"
[ "$(counter fills)" = 0 ] || fail "refilled after restart"
[ "$(counter passthrough_opens_cache)" -ge 3 ] || fail "not cached after restart"
out=$("$CACHEMAX" evict "$D") || fail "evict: $out"
t_unmount "$D"

# User-space misses and read-ahead fill the cache (no completion: --complete-max 0).
t_mount "$D" "$C" --first-read fill --complete-max 0
dd if="$D/s" bs=1M of=/dev/null status=none
dd if="$D/z" bs=1M of=/dev/null status=none
dd if="$D/s" bs=1M of=/dev/null status=none   # what read-ahead left out
check_all "filled by misses"
t_unmount "$D"
t_mount "$D" "$C" --first-read fill --complete-max 0
cat "$D/s" > /dev/null
check_all "filled by misses, restarted"
[ "$(counter daemon_read_ops_origin)" = 0 ] || fail "misses after the cache was filled by reads: $(counter daemon_read_ops_origin)"
check_copies "misses"
echo "sparse files: SEEK_DATA/SEEK_HOLE equal the original's, cached or not"
