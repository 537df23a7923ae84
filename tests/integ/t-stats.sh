#!/usr/bin/env bash
# Statistics never lie: exact counts for a known workload. User space: 256 O_DIRECT 4 KiB reads
# and 10 O_DIRECT 4 KiB writes are 256 reads / 1 MiB and 10 writes / 40 KiB. Passthrough: reads
# bypass the daemon, so only opens and the sizes of the files opened are counted — never reads.
. "$(dirname "$0")/lib.sh"
need_root
SHM=$(mktemp -d /dev/shm/cmtest-stats.XXXXXX)
T_REMOVE+=("$SHM")
D=$SHM/data
mkdir -p "$D"
head -c 1M /dev/urandom > "$D/f"

counter() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["stats"]["counters"][sys.argv[2]])' "$1" "$2"; }
expect() {  # expect JSON KEY VALUE
  local got; got=$(counter "$1" "$2")
  [ "$got" = "$3" ] || fail "stats: $2 = $got, expected $3"
}

t_mount "$D" "$T_SCRATCH/cache" --no-passthrough
dd if="$D/f" of=/dev/null bs=4k iflag=direct status=none
dd if=/dev/zero of="$D/w" bs=4k count=10 oflag=direct status=none
j=$("$CACHEMAX" stats "$D" --json)
expect "$j" read_ops_origin 256
expect "$j" read_bytes_origin 1048576
expect "$j" write_ops 10
expect "$j" write_bytes 40960
expect "$j" passthrough_opens_origin 0
python3 -c 'import json,sys; l=json.loads(sys.argv[1])["stats"]["latency_us"]["read_origin"]; assert l["count"]==256 and 0 < l["p50"] <= l["p99"], l' "$j" \
  || fail "latency histogram of user-space reads is wrong: $j"
"$CACHEMAX" stats "$D" | grep -q "from origin 256 (1.0 MiB)" || fail "human stats: $("$CACHEMAX" stats "$D")"
out=$("$CACHEMAX" stats "$D" --watch 0.2 --count 2)
echo "$out" | grep -q "rates" || fail "--watch shows no rates: $out"
t_unmount "$D"

t_mount "$D" "$T_SCRATCH/cache"
for _ in 1 2 3; do cat "$D/f" > /dev/null; done
j=$("$CACHEMAX" stats "$D" --json)
expect "$j" passthrough_opens_origin 3
expect "$j" passthrough_bytes_origin 3145728
expect "$j" read_ops_origin 0
t_unmount "$D"

out=$("$CACHEMAX" stats "$D" 2>&1) && fail "stats of a directory that is not accelerated succeeded"
echo "$out" | grep -q "not accelerated" || fail "stats said: $out"
echo ok
