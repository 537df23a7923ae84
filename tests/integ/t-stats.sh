#!/usr/bin/env bash
# Statistics never lie: exact counts for a known workload. User space: 256 O_DIRECT 4 KiB reads
# are 256 reads / 1 MiB between cache and origin (later chunks may be read ahead), 10 O_DIRECT
# 4 KiB writes are 10 / 40 KiB.
# Passthrough: reads bypass the daemon; the kernel counts them (BPF) where it can, else only the
# opens are counted — never file sizes as bytes read; the first read of a file fills the cache,
# later opens are hits (t-stats-passthrough checks the exact byte counts).
. "$(dirname "$0")/lib.sh"
need_root
t_shm stats
D=$SHM/data
mkdir -p "$D"
head -c 1M /dev/urandom > "$D/f"

counter() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["stats"]["counters"][sys.argv[2]])' "$1" "$2"; }
expect() {  # expect JSON KEY VALUE
  local got; got=$(counter "$1" "$2")
  [ "$got" = "$3" ] || fail "stats: $2 = $got, expected $3"
}

t_mount "$D" "$T_SCRATCH/cache" --no-passthrough --complete-max 0   # misses stay misses
dd if="$D/f" of=/dev/null bs=4k iflag=direct status=none
dd if=/dev/zero of="$D/w" bs=4k count=10 oflag=direct status=none
j=$("$CACHEMAX" stats "$D" --json)
[ $(( $(counter "$j" read_ops_origin) + $(counter "$j" read_ops_cache) )) -eq 256 ] || fail "reads: $j"
[ $(( $(counter "$j" read_bytes_origin) + $(counter "$j" read_bytes_cache) )) -eq 1048576 ] || fail "read bytes: $j"
# One pass over a cold cache: the first chunk is a miss; the other three are misses too unless
# read-ahead filled them first; no byte is served from the cache that was not filled.
[ "$(counter "$j" read_ops_origin)" -ge 1 ] || fail "the first chunk cannot be a hit on a cold cache: $j"
[ "$(counter "$j" read_ops_origin)" -ge 4 ] || [ "$(counter "$j" readahead_bytes)" -ge 262144 ] \
  || fail "hits in later chunks of a cold cache without read-ahead: $j"
[ "$(counter "$j" fill_bytes)" -ge "$(counter "$j" read_bytes_cache)" ] || fail "more read from the cache than filled: $j"
expect "$j" write_ops 10
expect "$j" write_bytes 40960
expect "$j" passthrough_opens_origin 0
python3 -c '
import json,sys
s=json.loads(sys.argv[1])["stats"]; l=s["latency_us"]; c=s["counters"]
assert l["read_origin"]["count"]==c["read_ops_origin"] and l["read_cache"]["count"]==c["read_ops_cache"], l
assert 0 < l["read_origin"]["p50"] <= l["read_origin"]["p99"], l' "$j" || fail "latency histograms are wrong: $j"
"$CACHEMAX" stats "$D" | t_grep "from origin $(counter "$j" read_ops_origin) " || fail "human stats: $("$CACHEMAX" stats "$D")"
out=$("$CACHEMAX" stats "$D" --watch 0.2 --count 2)
echo "$out" | t_grep "rates" || fail "--watch shows no rates: $out"
t_unmount "$D"

rm -rf "$T_SCRATCH/cache"   # a cold cache
t_mount "$D" "$T_SCRATCH/cache"
cat "$D/f" > /dev/null     # a first read: passed through to the origin, filled behind
for _ in $(seq 1 100); do
  [ "$(counter "$("$CACHEMAX" stats "$D" --json)" fills)" -ge 4 ] && break; sleep 0.05
done
for _ in 1 2; do cat "$D/f" > /dev/null; done
j=$("$CACHEMAX" stats "$D" --json)
expect "$j" passthrough_opens_cache 2
expect "$j" passthrough_opens_origin 1
if python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["passthrough_counting"]!="bpf")' "$j"; then
  expect "$j" passthrough_read_bytes_cache 2097152
  expect "$j" passthrough_read_bytes_origin 1048576
  expect "$j" read_bytes_origin 1048576   # no read of the origin went through the daemon
else
  expect "$j" read_bytes_cache 0
  expect "$j" read_ops_origin 0
fi
expect "$j" first_reads 1
expect "$j" fills 4
t_unmount "$D"

out=$("$CACHEMAX" stats "$D" 2>&1) && fail "stats of a directory that is not accelerated succeeded"
echo "$out" | t_grep "not accelerated" || fail "stats said: $out"
echo ok
