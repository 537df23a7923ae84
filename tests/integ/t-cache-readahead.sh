#!/usr/bin/env bash
# Read-ahead on a real mount: a sequential O_DIRECT read of an uncached file returns the same
# bytes, the daemon reads ahead (readahead_bytes) and serves the later requests from the cache;
# writes through the mount into the read-ahead window while a reader goes sequentially are never
# lost to a read-ahead fill that raced with them (each read, and a re-read of the whole file
# from the cache, equal the origin); a random reader does not read ahead; a write extending the
# file under a read-ahead piece of its end does not make a reader see the old end.
. "$(dirname "$0")/lib.sh"
need_root
t_shm cache
D=$SHM/data BACK=$SHM/back C=$T_SCRATCH/cache
t_backdoor "$D" "$BACK"
head -c 48M /dev/urandom > "$D/seq"
head -c 24M /dev/urandom > "$D/race"
head -c 24M /dev/urandom > "$D/rand"
counter() {  # counter NAME [DIR]: a counter of DIR's daemon (default $D)
  "$CACHEMAX" stats "${2:-$D}" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"][sys.argv[1]])' "$1"
}

# first reads fill in user space; no background completion: only misses and read-ahead fill
t_mount "$D" "$C" --complete-max 0 --first-read fill

# 1. A sequential first read.
sum=$(md5sum < "$BACK/seq")
got=$(dd if="$D/seq" bs=1M iflag=direct status=none | md5sum)
[ "$got" = "$sum" ] || fail "sequential first read differs from the original"
ra=$(counter readahead_bytes) hits=$(counter read_ops_cache) miss=$(counter read_ops_origin)
[ "$ra" -ge $((16 << 20)) ] || fail "read-ahead filled only $ra bytes of a 48 MiB sequential read"
[ "$hits" -ge 16 ] || fail "only $hits of 48 reads were served from the cache after read-ahead (origin: $miss)"
[ "$((hits + miss))" -ge 48 ] || fail "reads not counted: cache $hits, origin $miss"
[ "$(md5sum < "$D/seq")" = "$sum" ] || fail "re-read of the read-ahead copy differs"

# 2. Writes into the window ahead of a sequential reader, 5 rounds: every 1 MiB read and the
# final re-read equal a model of the file (the original plus the writes).
for round in 1 2 3 4 5; do
  "$CACHEMAX" evict "$D" "$D/race" > /dev/null || fail "evict failed"
  ra=$(counter readahead_bytes)
  python3 - "$D/race" "$BACK/race" "$round" <<'PY' || fail "round $round: stale or wrong data"
import mmap, os, random, sys
path, back, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
MiB = 1 << 20
model = bytearray(open(back, "rb").read())
size = len(model)
buf = mmap.mmap(-1, MiB)                      # page-aligned for O_DIRECT
def read_direct(fd, off):
    n = os.preadv(fd, [buf], off)
    return bytes(buf[:n])
# The reader opens first: the writable open joins its io-mode (served by the daemon).
rd = os.open(path, os.O_RDONLY | os.O_DIRECT)
assert read_direct(rd, 0) == bytes(model[:MiB]), "first read differs"
wr = os.open(path, os.O_RDWR)
for off in range(MiB, size, MiB):
    got = read_direct(rd, off)
    if got != bytes(model[off:off + len(got)]):
        sys.exit("read at %d MiB differs from the model" % (off >> 20))
    for _ in range(2):                        # inside the read-ahead window (2..8 MiB ahead)
        at = off + rng.randrange(MiB, 6 * MiB)
        if at + 4096 > size:
            continue
        data = os.urandom(rng.choice([512, 4096, 300 * 1024]))
        data = data[:size - at]
        assert os.pwrite(wr, data, at) == len(data)
        model[at:at + len(data)] = data
os.close(wr)
os.close(rd)
if open(back, "rb").read() != bytes(model):
    sys.exit("the original differs from the model")
rd = os.open(path, os.O_RDONLY | os.O_DIRECT)
for off in range(0, size, MiB):
    if read_direct(rd, off) != bytes(model[off:off + MiB]):
        sys.exit("re-read at %d MiB differs (stale read-ahead fill?)" % (off >> 20))
os.close(rd)
PY
  # Without read-ahead during the round, there was no fill to race with.
  [ "$(counter readahead_bytes)" -gt "$ra" ] || fail "round $round: nothing was read ahead"
done
[ "$(md5sum < "$D/race")" = "$(md5sum < "$BACK/race")" ] || fail "the race file differs from the original"

# 3. A random reader (4K at scattered offsets) does not read ahead.
ra=$(counter readahead_bytes)
python3 - "$D/rand" <<'PY' || fail "random reads failed"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
for k in range(1, 200):   # each read > 2 MiB away from the one before: never sequential
    os.preadv(fd, [buf], (k * 5 % 6) * (4 << 20) + (k % 16) * 17 * 4096)
os.close(fd)
PY
[ "$(counter readahead_bytes)" = "$ra" ] || fail "random 4K reads triggered read-ahead"
t_unmount "$D"

# 4. A write that extends the file while a read-ahead piece of its end is being read: the piece
# must not tell a later reader that the file ends where it ended before. Found by the
# differential test (seed 12, op 1500: the readback of an extending pwrite read 0 bytes, about
# one run in four); here made certain: CACHEMAX_FILL_DELAY_MS holds every fill job between its
# start and its origin read, and the write lands in between.
E=$SHM/ext
mkdir -p "$E"
head -c $(((2 << 20) + 1000)) /dev/urandom > "$E/f"
CACHEMAX_FILL_DELAY_MS=400 t_mount "$E" "$SHM/cache-ext" --no-passthrough --complete-max 0 > /dev/null
python3 - "$E/f" <<'PY' || fail "a read at the old end of a file extended under its read-ahead did not see the extension"
import mmap, os, sys, time
path, size = sys.argv[1], (2 << 20) + 1000
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)       # stays open: the pieces are kept for it
buf = mmap.mmap(-1, 1 << 20)
os.preadv(fd, [buf], 0)                               # sequential: reads ahead [1M, 2M+256K)
time.sleep(0.1)                                       # the jobs began and wait
ext = os.urandom(3000)
w = os.open(path, os.O_WRONLY)
assert os.pwrite(w, ext, size) == 3000
os.close(w)
time.sleep(1.0)                                       # the jobs read and offered their pieces
small = mmap.mmap(-1, 8192)
n = os.preadv(fd, [small], 2 << 20)
want = 1000 + 3000
if n != want:
    sys.exit(f"read at 2 MiB returned {n} bytes, expected {want}")
with open(path, "rb") as plain:
    plain.seek(2 << 20)
    if small[:n] != plain.read(want):
        sys.exit("read at 2 MiB returned other bytes than the file holds")
os.close(fd)
PY
ra=$(counter readahead_bytes "$E")
[ "$ra" -gt 0 ] || fail "the extended file was not read ahead (readahead_bytes $ra): the race was not exercised"
t_unmount "$E" > /dev/null

# 5. A piece read and filled before a truncate and a write, but offered to its waiting readers
# only after them (its fill thread preempted between the fill and the offer): a reader that
# came after the change and waits for the piece must not be handed the piece's old bytes.
# Found by the differential test under load (seed 1, op 15110: the readback of a pwrite that
# extended a file truncated just before returned the bytes and the size from before the
# truncate); here made certain: CACHEMAX_OFFER_DELAY_MS holds every filled piece before its offer.
O=$SHM/offer
mkdir -p "$O"
head -c $((4 << 20)) /dev/urandom > "$O/f"
CACHEMAX_OFFER_DELAY_MS=600 t_mount "$O" "$SHM/cache-offer" --no-passthrough --complete-max 0 > /dev/null
python3 - "$O/f" <<'PY' || fail "a reader was handed a read-ahead piece's bytes from before a truncate and a write"
import mmap, os, sys, time
path, K, M = sys.argv[1], 1024, 1 << 20
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)       # stays open: the pieces are kept for it
buf = mmap.mmap(-1, M)
os.preadv(fd, [buf], 0)                               # sequential: reads ahead [1M, 3M)
time.sleep(0.3)                                       # the pieces are read and filled, not offered
w = os.open(path, os.O_RDWR)
os.ftruncate(w, M + 4 * K)                            # drops the chunks from 1M + 256K on
new = os.urandom(4 * K)
assert os.pwrite(w, new, M + 512 * K) == len(new)     # a hole [1M + 4K, 1M + 512K) before it
os.close(w)
small = mmap.mmap(-1, 8 * K)
n = os.preadv(fd, [small], M + 256 * K)               # a miss: waits for the piece [1M, 2M)
if n != 8 * K or small[:n] != bytes(8 * K):
    sys.exit(f"read at 1M + 256K returned {n} bytes, {'zeros' if small[:n] == bytes(n) else 'not zeros'}; "
             "expected 8192 bytes of zeros (a hole)")
n = os.preadv(fd, [small], M + 508 * K)
if n != 8 * K or small[:n] != bytes(4 * K) + new[:4 * K]:
    sys.exit(f"read at 1M + 508K returned {n} bytes other than the hole and the write")
os.close(fd)
PY
ra=$(counter readahead_bytes "$O")
[ "$ra" -gt 0 ] || fail "the file was not read ahead (readahead_bytes $ra): the race was not exercised"
t_unmount "$O" > /dev/null
echo "PASS"
