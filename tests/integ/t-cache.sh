#!/usr/bin/env bash
# The cache on a real mount: a read fills the cache and the next open is a passthrough hit; a
# stop/start keeps the objects; a reader of the cache copy sees appends at once (tail -f); and
# 200 changes made behind the cache's back (through a bind mount of the original directory)
# are never served stale: same size, other size, mtime set back, file replaced by rename; a
# background completion leaves the access time alone.
. "$(dirname "$0")/lib.sh"
need_root
t_shm cache
D=$SHM/data BACK=$SHM/back C=$T_SCRATCH/cache
t_backdoor "$D" "$BACK"   # the original, reachable behind the mount
head -c 3M /dev/urandom > "$D/big"
counter() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"][sys.argv[1]])' "$1"; }
wait_fills() { for _ in $(seq 1 100); do [ "$(counter fills)" -ge "$1" ] && return 0; sleep 0.05; done; fail "fills did not reach $1: $(counter fills)"; }

t_mount "$D" "$C"
sum=$(md5sum < "$BACK/big")
[ "$(md5sum < "$D/big")" = "$sum" ] || fail "first read differs"
wait_fills 12
[ "$(md5sum < "$D/big")" = "$sum" ] || fail "second read (from the cache copy) differs"
[ "$(counter passthrough_opens_cache)" = 1 ] || fail "second open was not a cache hit"
t_unmount "$D"

t_mount "$D" "$C"   # objects survive a stop/start
[ "$(md5sum < "$D/big")" = "$sum" ] || fail "read after restart differs"
[ "$(counter passthrough_opens_cache)" = 1 ] || fail "the cache did not survive stop/start"
[ "$(counter fills)" = 0 ] || fail "refilled after restart"

# evict: one file's copy goes (the next open is a miss again), also while a reader holds it.
exec 8<"$D/big"                       # a reader of the cache copy
out=$("$CACHEMAX" evict "$D" "$D/big") || fail "evict of a file failed: $out"
[ "$out" = "evicted 1 cache copy" ] || fail "evict said: $out"
[ "$(md5sum <&8)" = "$sum" ] || fail "a reader of an evicted copy read wrong bytes"
exec 8<&-
[ "$(counter evictions)" = 1 ] || fail "evictions not counted"
hits=$(counter passthrough_opens_cache) fills=$(counter fills)
[ "$(md5sum < "$D/big")" = "$sum" ] || fail "read after evict differs"
[ "$(counter passthrough_opens_cache)" = "$hits" ] || fail "an evicted file was still a cache hit"
wait_fills $((fills + 12))   # refilled
out=$("$CACHEMAX" evict "$D") || fail "evict of everything failed: $out"
echo "$out" | t_grep -E "^evicted [1-9][0-9]* cache cop" || fail "evict all said: $out"
[ "$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cache_objects"])')" = 0 ] \
  || fail "objects left after evicting everything"
out=$("$CACHEMAX" evict "$D" /etc/passwd 2>&1) && fail "evict of a path outside the directory succeeded"
echo "$out" | t_grep "is not inside" || fail "evict outside said: $out"
out=$("$CACHEMAX" evict "$D" "$D/missing" 2>&1) && fail "evict of a missing file succeeded"
echo "$out" | t_grep "No such file" || fail "evict missing said: $out"

# tail -f: a reader holding the cache copy sees appends made through the mount at once.
printf 'line 0\n' > "$D/log"
cat "$D/log" > /dev/null; cat "$D/log" > /dev/null
exec 7<"$D/log"
head -n1 <&7 >/dev/null
for i in 1 2 3; do
  printf 'line %d\n' "$i" >> "$D/log"
  IFS= read -r got <&7 || fail "reader saw no appended line $i"
  [ "$got" = "line $i" ] || fail "reader saw '$got', expected 'line $i'"
done
exec 7<&-
[ "$(cat "$BACK/log" | wc -l)" = 4 ] || fail "appends did not reach the origin"

# Changes behind the cache's back, each followed by a read through the mount.
inv0=$(counter invalidations)
f=$D/victim b=$BACK/victim
for i in $(seq 1 200); do
  case $((i % 4)) in
    0) printf 'v%05d-same-size\n' "$i" > "$b" ;;                       # size kept
    1) head -c $((i * 37 % 5000 + 1)) /dev/urandom > "$b" ;;           # size changed
    2) printf 'v%05d-same-size\n' "$i" > "$b"; touch -d '2001-01-01' "$b" ;;  # mtime set back
    3) printf 'r%05d-renamed-in\n' "$i" > "$BACK/.new"; mv -f "$BACK/.new" "$b" ;;  # replaced
  esac
  want=$(md5sum < "$b")
  got=$(md5sum < "$f")
  [ "$got" = "$want" ] || fail "stale read after change $i (kind $((i % 4)))"
  cat "$f" > /dev/null   # a second read, possibly from the cache copy
  [ "$(md5sum < "$f")" = "$want" ] || fail "stale read from the cache copy after change $i"
done
inv=$(( $(counter invalidations) - inv0 ))
echo "200 changes behind the cache: no stale read; invalidations $inv"
# Each change met a cached copy (else no stale read was possible): about 150 here.
[ "$inv" -ge 100 ] || fail "only $inv of 200 changes behind the cache invalidated a cached copy"

# A background completion reads bytes nobody asked for: it must not move the access time (with
# relatime it would, after an utimensat that put atime before mtime).
head -c 48M /dev/urandom > "$D/atime.dat"
before=$(counter completions)
python3 - "$D/atime.dat" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "rb", buffering=0) as f:
    f.read(4096)                       # a miss: the 48 MiB file is completed in the background
    st = os.stat(p)
    os.utime(p, ns=(1302292492 * 10**9, st.st_mtime_ns))   # atime back in 2011, before mtime
PY
for _ in $(seq 1 200); do [ "$(counter completions)" -gt "$before" ] && break; sleep 0.05; done
[ "$(counter completions)" -gt "$before" ] || fail "atime.dat was not completed in the background"
# On the original (through the bind mount): the mount's own view is cached for --attr-timeout.
[ "$(stat -c %X "$BACK/atime.dat")" = 1302292492 ] \
  || fail "the background completion moved the access time to $(stat -c %X "$BACK/atime.dat")"
t_unmount "$D"
echo ok
