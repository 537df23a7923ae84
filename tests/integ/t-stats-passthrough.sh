#!/usr/bin/env bash
# Passthrough reads counted exactly (docs/STATS.md): the kernel serves them, a BPF program
# counts them. An 8 MiB file read three times (the first read from the original, then two
# cache hits) plus 10 opens reading 4 KiB each is 16.04 MiB from the cache and 8 MiB from the
# original (hit ratio 0.67 by bytes); 1 MiB read of a 4 MiB cached file counts 1 MiB, not 4.
# Then: the windows move, the top files name the file, a latency without samples is "—", and
# without BPF (CACHEMAX_NO_BPF) stats say so and never count file sizes as bytes read.
. "$(dirname "$0")/lib.sh"
need_root
t_shm ptstats
D=$SHM/data
mkdir -p "$D"
head -c 8M /dev/urandom > "$D/f"
head -c 4M /dev/urandom > "$D/g"

js() { "$CACHEMAX" stats "$D" --json; }
get() {  # get JSON PYTHON-EXPR (s: the reply)
  python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
counter() { get "$1" "s['stats']['counters']['$2']"; }
expect() {
  local got; got=$(counter "$1" "$2")
  [ "$got" = "$3" ] || fail "stats: $2 = $got, expected $3: $1"
}
completed() {  # completed N: wait until N files were completed in the background
  for _ in $(seq 1 200); do
    [ "$(counter "$(js)" completions)" -ge "$1" ] && return 0; sleep 0.05
  done
  fail "no background completion: $(js)"
}

# A fresh mount: no read yet, so no latency — "—", never 0.0.
t_mount "$D" "$T_SCRATCH/cache"
j=$(js)
[ "$(get "$j" "s['stats']['latency_us']['read_cache']['p50']")" = None ] || fail "p50 without samples: $j"
out=$("$CACHEMAX" stats "$D")
echo "$out" | t_grep "read cache p50 — p99 —" || fail "latency without samples is not '—': $out"
echo "$out" | t_grep "0\.0 p99" && fail "a latency printed as 0.0: $out"
t_unmount "$D"

# Without BPF: said so, opens counted, no bytes invented.
CACHEMAX_NO_BPF=1 t_mount "$D" "$T_SCRATCH/cache"
cat "$D/g" > /dev/null
completed 1
cat "$D/g" > /dev/null
j=$(js)
[ "$(get "$j" "s['passthrough_counting']")" = opens ] || fail "counting: $j"
get "$j" "s['passthrough_counting_why']" | t_grep CACHEMAX_NO_BPF || fail "no reason given: $j"
expect "$j" passthrough_opens_cache 1
expect "$j" read_bytes_cache 0
expect "$j" read_bytes_origin 0
get "$j" "list(s['stats']['counters'])" | t_grep "passthrough_bytes_" && fail "file sizes counted: $j"
"$CACHEMAX" stats "$D" | t_grep "passthrough reads are NOT counted, only opens" ||
  fail "human stats do not say so: $("$CACHEMAX" stats "$D")"
t_unmount "$D"
# Where the kernel refuses fexit programs, the system-call hooks (a cost on every system call
# of the machine) are used only when asked for: without --count-syscalls, opens are counted.
rm -rf "$T_SCRATCH/cache"
t_mount "$D" "$T_SCRATCH/cache"
j=$(js)
if [ "$(get "$j" "s.get('passthrough_counting_hooks', '')")" != fexit ]; then
  [ "$(get "$j" "s['passthrough_counting']")" = opens ] || fail "syscall hooks used unasked: $j"
  get "$j" "s['passthrough_counting_why']" | t_grep -- "--count-syscalls" || fail "no hint: $j"
fi
t_unmount "$D"
# The rest needs BPF counting (the fallback above works everywhere).
rm -rf "$T_SCRATCH/cache"
t_mount "$D" "$T_SCRATCH/cache" --count-syscalls
j=$(js)
[ "$(get "$j" "s['passthrough_counting']")" = bpf ] ||
  skip "no BPF counting here: $(get "$j" "s['passthrough_counting_why']")"
# 1 MiB of a 4 MiB cached file: 1 MiB counted.
cat "$D/g" > /dev/null           # the first read: from the original
completed 1
dd if="$D/g" of=/dev/null bs=1M count=1 status=none
j=$(js)
expect "$j" passthrough_read_bytes_origin 4194304
expect "$j" passthrough_read_bytes_cache 1048576
expect "$j" read_bytes_cache 1048576
# Reads just now are in the 1 s window; the top file is g, complete in the cache.
[ "$(get "$j" "s['windows']['1s']['read_bytes_cache']")" -ge 1048576 ] || fail "1s window: $j"
get "$j" "s['files'][0]['path'], s['files'][0]['state'], s['files'][0]['bytes_served']" |
  t_grep -x "('g', 'full', 5242880)" || fail "top files: $(get "$j" "s['files']")"
sleep 2.2
j=$(js)
[ "$(get "$j" "s['windows']['1s']['read_bytes_cache']")" = 0 ] || fail "the 1s window did not move: $j"
[ "$(get "$j" "s['windows']['1m']['read_bytes_cache']")" = 1048576 ] || fail "1m window: $j"
t_unmount "$D"

# The example of issue 15, on a cold cache.
rm -rf "$T_SCRATCH/cache"
t_mount "$D" "$T_SCRATCH/cache" --count-syscalls
cat "$D/f" > /dev/null
completed 1
cat "$D/f" > /dev/null
cat "$D/f" > /dev/null
for _ in $(seq 1 10); do dd if="$D/f" of=/dev/null bs=4k count=1 status=none; done
j=$(js)
expect "$j" read_bytes_cache 16818176          # 2 × 8 MiB + 10 × 4 KiB = 16.04 MiB
expect "$j" read_bytes_origin 8388608
expect "$j" passthrough_opens_cache 12
expect "$j" passthrough_opens_origin 1
[ "$(get "$j" "round(s['stats']['hit_ratio_bytes'], 2)")" = 0.67 ] || fail "hit_ratio_bytes: $j"
"$CACHEMAX" stats "$D" | t_grep "hit ratio .*, 66.7% bytes" || fail "human stats: $("$CACHEMAX" stats "$D")"
t_unmount "$D"

echo ok
