#!/usr/bin/env bash
# Capacity, pin, exclude and background completion on a real mount:
# - with --size 4M, reading 24 MiB of files keeps the cache at or under its size (the
#   evictor trims to the low watermark), every file still reads right, and the size given
#   once is kept by the next start without --size;
# - a file under a --pin glob keeps its copy through all of that; an --exclude'd file is
#   never cached;
# - a small file read once (4 KiB of it) is completed in the background and its next open is
#   a passthrough hit; a larger file's random 4 KiB miss reads 4 KiB from the origin and its
#   chunk is filled behind the answer;
# - a file as large as the cache is cached up to the low watermark, not filled and evicted
#   over and over.
. "$(dirname "$0")/lib.sh"
need_root
t_shm capacity
D=$SHM/data C=$SHM/cache
mkdir -p "$D/keep" "$D/many"
json() { "$CACHEMAX" stats "$D" --json; }
top() { json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
counter() { json | python3 -c 'import json,sys; c=json.load(sys.stdin)["stats"]["counters"]; k=sys.argv[1]; print(c[k[7:]] - c["passthrough_" + k[7:]] if k.startswith("daemon_") else c[k])' "$1"; }
evicted() { "$CACHEMAX" evict "$D" "$D/$1" | sed -n "s/^evicted \([0-9]*\) .*/\1/p"; }
poll() {  # poll WHAT CMD...: until CMD succeeds, up to 10 s
  local what=$1; shift
  for _ in $(seq 1 200); do "$@" && return 0; sleep 0.05; done
  fail "$what"
}
head -c 1M /dev/urandom > "$D/keep/pinned.db"
for i in $(seq 1 24); do head -c 1M /dev/urandom > "$D/many/f$i"; done
head -c 1M /dev/urandom > "$D/many/skip.log"
head -c 300K /dev/urandom > "$D/small"
head -c 20M /dev/urandom > "$D/large"
(cd "$D" && md5sum keep/pinned.db many/* small large) > "$SHM/sums"

# --first-read fill: misses in user space (the 4 KiB random miss below is one)
t_mount "$D" "$C" --size 4M --pin 'keep/*' --exclude '*.log' --complete-max 1M --first-read fill
"$CACHEMAX" status | t_grep "size 4.00 MiB" || fail "status does not show the cache size: $("$CACHEMAX" status)"
cat "$D/keep/pinned.db" > /dev/null
for i in $(seq 1 24); do cat "$D/many/f$i" > /dev/null; done
under_size() { [ "$(top cache_bytes)" -le $((4 * 1024 * 1024)) ]; }
poll "the cache stayed above its size: $(top cache_bytes) bytes" under_size
[ "$(top cache_size)" = $((4 * 1024 * 1024)) ] || fail "stats cache_size is $(top cache_size)"
[ "$(top evictions_capacity)" -gt 0 ] || fail "no eviction for capacity"
[ "$(evicted keep/pinned.db)" = 1 ] || fail "the pinned file's copy was evicted"
# excluded_opens counts first opens: a second open that reaches the daemon before the first
# one's RELEASE (sent after close, asynchronously) joins it, so each open is its own cat here,
# a little apart.
excluded_twice() { cat "$D/many/skip.log" > /dev/null; sleep 0.2; [ "$(counter excluded_opens)" -ge 2 ]; }
poll "opens of the excluded file were not counted (excluded_opens stayed below 2)" excluded_twice
[ "$(evicted many/skip.log)" = 0 ] || fail "the excluded file was cached"
(cd "$D" && md5sum -c --quiet "$SHM/sums") || fail "a file reads wrong under capacity pressure"

# Background completion: 4 KiB of a 300 KiB file, then the whole file is cached.
"$CACHEMAX" evict "$D" > /dev/null
before=$(counter completions)
dd if="$D/small" of=/dev/null bs=4k count=1 status=none
completed() { [ "$(counter completions)" -gt "$before" ]; }
poll "the small file was not completed in the background" completed
hits=$(counter passthrough_opens_cache)
cmp "$D/small" <(cd "$D" && head -c 300K small) || fail "small reads wrong"
[ "$(counter passthrough_opens_cache)" -gt "$hits" ] || fail "the completed file's next open was not a hit"

# A random 4 KiB miss on a file above --complete-max: 4 KiB from the origin, chunk filled later.
origin_before=$(counter daemon_read_bytes_origin)
fills_before=$(counter fills)
python3 - "$D/large" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)   # no readahead: exactly 4 KiB asked
assert os.preadv(fd, [mmap.mmap(-1, 4096)], 10 * 1024 * 1024 + 8192) == 4096
os.close(fd)
PY
[ $(( $(counter daemon_read_bytes_origin) - origin_before )) = 4096 ] ||
  fail "a random 4 KiB miss read $(( $(counter daemon_read_bytes_origin) - origin_before )) bytes from the origin"
filled() { [ "$(counter fills)" -gt "$fills_before" ]; }
poll "the random miss's chunk was not filled in the background" filled
[ "$(counter completions)" -le $((before + 1)) ] || fail "a file above --complete-max was completed"
(cd "$D" && md5sum -c --quiet "$SHM/sums") || fail "a file reads wrong after background fills"

# A file as large as the cache: one object never grows past the low watermark, so reading it
# again and again is served mostly from the cache instead of filling and evicting it each pass.
"$CACHEMAX" evict "$D" > /dev/null
head -c 4M /dev/urandom > "$SHM/whole.src"
cp "$SHM/whole.src" "$D/whole"
ev_before=$(top evictions_capacity); refused_before=$(counter fills_refused_full)
for _ in 1 2 3; do dd if="$D/whole" of=/dev/null bs=1M iflag=direct status=none; done
sleep 0.3
cache_before=$(counter daemon_read_bytes_cache)
dd if="$D/whole" of=/dev/null bs=256k iflag=direct status=none
hits=$(( $(counter daemon_read_bytes_cache) - cache_before ))
[ "$(top evictions_capacity)" = "$ev_before" ] \
  || fail "a file as large as the cache evicted itself: evictions $ev_before -> $(top evictions_capacity)"
[ "$(counter fills_refused_full)" -gt "$refused_before" ] || fail "no fill of the too-large file was refused"
[ "$hits" -ge $((3 * 1024 * 1024)) ] || fail "only $hits bytes of a pass over the file came from the cache"
cmp "$SHM/whole.src" "$D/whole" || fail "the file as large as the cache reads wrong"
t_unmount "$D"

# The size given once is kept.
t_mount "$D" "$C"
[ "$(top cache_size)" = $((4 * 1024 * 1024)) ] || fail "the next start without --size did not keep 4M: $(top cache_size)"
cat "$D/keep/pinned.db" > /dev/null   # cached again (the check above evicted it), unpinned now
hit() { cat "$D/keep/pinned.db" > /dev/null; [ "$(counter passthrough_opens_cache)" -ge 1 ]; }
poll "the pinned file was not cached again" hit
t_unmount "$D"

# Pins are found at start: the pinned file's copy, cached earlier and never opened in this
# run, survives 24 MiB of reads.
t_mount "$D" "$C" --pin 'keep/*'
sleep 0.5   # the pin walk runs beside the first requests
for i in $(seq 1 24); do cat "$D/many/f$i" > /dev/null; done
poll "the cache stayed above its size after the restart" under_size
[ "$(evicted keep/pinned.db)" = 1 ] || fail "the pin walk at start did not keep the pinned file's copy"
t_unmount "$D"
echo "PASS: capacity, pin, exclude, background completion"
