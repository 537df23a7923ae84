#!/usr/bin/env bash
# One pass fills every file: a daemon under a small fd limit (CACHEMAX_FD_LIMIT=256: its fill
# queue holds 32 jobs, an eighth of the limit) and one `cat` of N small files, several times
# that bound. Each file's first read passes through to the original and queues its completion
# at the last close; those the full queue refuses wait in the fill backlog (no fd each) and
# are queued as it empties (engine_fill.c "the backlog").
#   1. After the fills settle, every file is complete (completions = N, none skipped), the
#      daemon's fds stayed under its limit, and after a restart the same cat is served from
#      the cache copies only: no open passed through to the original, no read served by it.
#   2. Files changed behind the cache or deleted through the mount while they wait: a changed
#      file's copy holds its new bytes, a deleted one gets no copy.
#   3. `cachemax stop` with thousands of completions waiting returns at once.
. "$(dirname "$0")/lib.sh"
need_root
N=${T_FILL_BACKLOG_FILES:-3000}
t_shm backlog
D=$T_SCRATCH/data BACK=$T_SCRATCH/back
t_backdoor "$D" "$BACK"
python3 - "$D" "$N" <<'PY'
import os, random, sys
base, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = f'{base}/d{i // 100:03d}'
    if i % 100 == 0:
        os.mkdir(d)
    with open(f'{d}/f{i % 100:03d}', 'wb') as fh:
        fh.write(os.urandom(random.randint(1000, 4000)))
PY
sync
counters() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["stats"]["counters"]; print(" ".join(f"{k}={c.get(k)}" for k in sys.argv[1:]))' "$@"; }
counter() { t_read_counter "$D" "$1"; }
objects() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cache_objects"])'; }
# settle: until the completions stop growing for 3 s (at most 120 s)
settle() {
  local last=-1 same=0 v
  for _ in $(seq 1 240); do
    v=$(counter completions)
    if [ "$v" = "$last" ]; then same=$((same + 1)); [ $same -ge 6 ] && return 0; else same=0; last=$v; fi
    sleep 0.5
  done
}
# start CACHE [ENV=VALUE...]: accelerate D under an fd limit of 256
start() {
  local cache=$1; shift
  T_MOUNTS+=("$D")
  env CACHEMAX_FD_LIMIT=256 "$@" "$CACHEMAX" start "$D" --cache "$cache" || fail "start under an fd limit of 256"
}
pass() { (cd "$D" && find . -type f | sort | xargs cat | sha1sum); }

# 1. Each fill pauses 2 ms before its origin read (a slow original: the reader outruns the
# fills, as it does over sshfs), so the queue's bound is reached whatever the machine's speed.
start "$SHM/c1" CACHEMAX_FILL_DELAY_MS=2
pid=$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
( max=0; while kill -0 "$pid" 2>/dev/null; do
    n=$(ls /proc/"$pid"/fd 2>/dev/null | wc -l); [ "$n" -gt "$max" ] && { max=$n; echo "$max" > "$T_SCRATCH/peak"; }
    sleep 0.1; done ) &
T_PIDS+=($!)
sum=$(pass)
[ "$sum" = "$(cd "$BACK" && find . -type f | sort | xargs cat | sha1sum)" ] || fail "the first pass read other bytes than the original's"
settle
echo "one pass over $N files: $(counters first_reads completions fills fills_dropped fills_refused_full completions_deferred completions_skipped); daemon fds at most $(cat "$T_SCRATCH/peak")"
[ "$(counter completions)" -ge "$N" ] || fail "one pass completed $(counter completions) of $N files ($(counters fills fills_refused_full completions_deferred completions_skipped))"
[ "$(counter fills_refused_full)" = 0 ] || fail "the cache refused fills: $(counters fills_refused_full)"
[ "$(counter completions_skipped)" = 0 ] || fail "completions skipped: $(counters completions_skipped)"
# The queue's bound made some wait (else this test does not test the backlog).
[ "$(counter completions_deferred)" -gt 0 ] || fail "no completion waited in the backlog: the queue was not the bound"
[ "$(cat "$T_SCRATCH/peak")" -lt 256 ] || fail "the daemon held $(cat "$T_SCRATCH/peak") fds (limit 256)"
"$CACHEMAX" stop "$D"
start "$SHM/c1"
[ "$(pass)" = "$sum" ] || fail "the bytes through the restarted mount differ"
echo "after a restart: $(counters opens passthrough_opens_cache passthrough_opens_origin read_ops_origin)"
[ "$(counter passthrough_opens_origin)" = 0 ] || fail "after one pass and a restart, $(counter passthrough_opens_origin) of $N opens went to the original"
[ "$(counter daemon_read_ops_origin)" = 0 ] || fail "after one pass and a restart, the daemon read the original $(counter daemon_read_ops_origin) times"
[ "$(counter passthrough_opens_cache)" -ge "$N" ] || fail "after a restart only $(counter passthrough_opens_cache) of $N opens were cache hits"
"$CACHEMAX" stop "$D"

# 2. A new cache, fills of 5 ms: most completions of the pass wait in the backlog while the
# files of one directory are rewritten behind the cache (new bytes, same size) and 50 files of
# another are deleted through the mount. (Some of those went through the queue during the pass
# and were filled before the change: the change watcher empties their copies.)
start "$SHM/c2" CACHEMAX_FILL_DELAY_MS=5
pass > /dev/null
changed=$(printf 'd%03d' $(( N / 200 ))) deleted=$(printf 'd%03d' $(( N / 200 + 1 )))
waiting=$(( N - $(counter completions) ))
for f in "$BACK/$changed"/*; do
  python3 -c 'import os,sys; n=os.path.getsize(sys.argv[1]); open(sys.argv[1],"r+b").write(os.urandom(n))' "$f"
done
rm "$D/$deleted"/f0[0-4]?
echo "changed 100 files and deleted 50 while $waiting completions were still to run"
[ "$waiting" -ge $((N / 2)) ] || fail "only $waiting completions were left after the pass: the files changed may not have waited"
settle
[ "$(counter completions_skipped)" = 0 ] || fail "completions skipped: $(counters completions_skipped)"
for f in "$BACK/$changed"/*; do
  cmp -s "$f" "$D/$changed/${f##*/}" || fail "$changed/${f##*/} through the mount differs from the original after the backlog filled it"
done
# A second pass fills what the change watcher emptied; then one copy per file left, none for
# a deleted file.
pass > /dev/null
settle
[ "$(objects)" = $((N - 50)) ] || fail "$(objects) cache copies for $((N - 50)) files (deleted files filled?)"
"$CACHEMAX" stop "$D"
start "$SHM/c2"
for f in "$BACK/$changed"/*; do
  cmp -s "$f" "$D/$changed/${f##*/}" || fail "$changed/${f##*/} through the restarted mount differs from the original"
done
[ "$(counter passthrough_opens_cache)" = 100 ] || fail "the changed files were not all complete copies: $(counters passthrough_opens_cache passthrough_opens_origin)"
"$CACHEMAX" stop "$D"

# 3. Fills of 50 ms: nearly every completion waits; stop does not.
start "$SHM/c3" CACHEMAX_FILL_DELAY_MS=50
pass > /dev/null
waiting=$(( N - 50 - $(counter completions) ))
t0=$(date +%s.%N)
"$CACHEMAX" stop "$D"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
echo "stop with $waiting completions waiting: ${secs}s"
[ "$waiting" -ge $((N / 2)) ] || fail "only $waiting completions waited"
awk -v s="$secs" 'BEGIN { exit !(s < 5) }' || fail "stop took ${secs}s with $waiting completions waiting"
exit 0
