#!/usr/bin/env bash
# cachemax bench (issue #4): the table and the JSON on a tiny size; nothing left behind after
# success, after a failure injected before and after the bench's own start, and after SIGINT;
# an accelerated directory stays accelerated and its original is reached through the daemon's
# fd, not the mount; refusals of a non-directory, bad options and too little space.
. "$(dirname "$0")/lib.sh"
need_root
t_shm bench
D=$T_SCRATCH/data          # the origin: ext4 (or whatever /tmp is)
C=$SHM/cache               # the cache: tmpfs, created and removed by each run
mkdir -p "$D/sub"
echo keep > "$D/keep.txt"
echo also > "$D/sub/x"
TINY=(--size 2M --runtime 0.2)
T_MOUNTS+=("$D")           # whatever a broken bench leaves mounted, the trap takes away

listing() { (cd "$1" && find . -printf '%p %s %y\n' | LC_ALL=C sort); }
BEFORE=$(listing "$D")

# clean WHAT: no mount, no state record, the directory as it was, the cache directory gone.
clean() {
  if grep -q " $D fuse.cachemax " /proc/mounts; then fail "$1: a mount was left on $D"; fi
  local now; now=$(listing "$D")
  [ "$now" = "$BEFORE" ] || fail "$1: $D changed: $(diff <(echo "$BEFORE") <(echo "$now"))"
  [ ! -e "$C" ] || fail "$1: the cache directory it created was left: $(find "$C")"
  if ls "$CACHEMAX_RUN_DIR"/*.state >/dev/null 2>&1; then fail "$1: a state record was left"; fi
}

# 1. The table, piped: nothing but the result on stdout, nothing at all on stderr.
out=$("$CACHEMAX" bench "$D" --cache "$C" "${TINY[@]}" 2>"$T_SCRATCH/err") || fail "bench failed: $(cat "$T_SCRATCH/err")"
[ ! -s "$T_SCRATCH/err" ] || fail "piped bench wrote to stderr: $(cat "$T_SCRATCH/err")"
for row in "SEQ1M Q1T1 read" "SEQ1M Q1T1 write" "RND4K Q1T1 read" "RND4K Q1T1 write"; do
  grep -Eq "^$row +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+x +[0-9]+%$" <<<"$out" ||
    fail "table has no complete '$row' row: $out"
done
grep -q "origin .*cache device .*accel. cold .*accel. warm" <<<"$out" || fail "table header: $out"
# the stats line: a hit ratio of the reads through the daemon, or that there were none (all passthrough)
grep -Eq "hit ratio|no read went through the daemon" <<<"$out" || fail "table has no stats line: $out"
clean "after the table"

# 2. The JSON: one object with the documented keys (docs/BENCH.md), every cell measured.
"$CACHEMAX" bench "$D" --cache "$C" "${TINY[@]}" --json > "$T_SCRATCH/b.json" || fail "bench --json failed"
python3 - "$T_SCRATCH/b.json" "$D" <<'EOF' || fail "bench JSON is wrong: $(cat "$T_SCRATCH/b.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["version"] == 1 and j["dir"] == sys.argv[2] and j["file_bytes"] == 2 << 20, j
assert j["was_accelerated"] is False and j["origin_path"] == sys.argv[2], j
assert j["direct"] is True and j["warm_complete"] is True, j
for k in ("cache", "runtime_seconds", "page_cache_dropped", "queue_depth_32", "notes"):
    assert k in j, k
keys = [t["key"] for t in j["tests"]]
want = ["seq1m_q1t1_read", "seq1m_q1t1_write", "rnd4k_q1t1_read", "rnd4k_q1t1_write"]
want += ["rnd4k_q32t1_read", "rnd4k_q32t1_write"] if j["queue_depth_32"] else []
assert keys == want, keys
for t in j["tests"]:
    for k in ("name", "block_bytes", "queue_depth", "write"):
        assert k in t, (k, t)
    for target in ("origin", "cache_device", "accelerated_cold", "accelerated_warm"):
        m = t[target]
        assert m["mb_per_s"] > 0 and m["iops"] > 0 and m["ops"] > 0 and m["seconds"] > 0, (target, t)
        assert m["bytes"] == m["ops"] * t["block_bytes"], (target, t)
    assert t["warm_over_origin"] > 0 and t["warm_of_cache_device"] > 0, t
s = j["stats"]
for k in ("read_ops_cache", "read_bytes_cache", "read_ops_origin", "read_bytes_origin",
          "passthrough_opens_cache", "passthrough_opens_origin", "fills", "fill_bytes",
          "hit_ratio_ops", "hit_ratio_bytes"):
    assert k in s, k
# the cold reads went to the origin (first reads pass through) and the cache filled
assert s["read_ops_origin"] + s["passthrough_opens_origin"] > 0 and s["fills"] > 0, s
assert s["passthrough_opens_cache"] + s["read_ops_cache"] > 0, s   # the warm reads hit
EOF
clean "after --json"

# 3. An accelerated directory stays accelerated (same daemon); its original is reached
#    through the daemon's fd: the daemon's counters move only during the accelerated phases.
t_mount "$D" "$C"
pid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["directories"][0]["daemon_pid"])' < <("$CACHEMAX" status --json))
cache_files=$(cd "$C" && find . -type f | LC_ALL=C sort)
s0=$("$CACHEMAX" stats "$D" --json)
"$CACHEMAX" bench "$D" --cache "$C" "${TINY[@]}" --json > "$T_SCRATCH/a.json" || fail "bench on an accelerated directory failed"
s1=$("$CACHEMAX" stats "$D" --json)
grep -q " $D fuse.cachemax " /proc/mounts || fail "bench stopped an acceleration it did not start"
pid2=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["directories"][0]["daemon_pid"])' < <("$CACHEMAX" status --json))
[ "$pid" = "$pid2" ] || fail "the daemon changed during the bench ($pid -> $pid2)"
python3 - "$T_SCRATCH/a.json" "$pid" "$s0" "$s1" <<'EOF' || fail "accelerated run: $(cat "$T_SCRATCH/a.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["was_accelerated"] is True, j
assert j["origin_path"].startswith("/proc/%s/fd/" % sys.argv[2]), j["origin_path"]
c0 = json.loads(sys.argv[3])["stats"]["counters"]
c1 = json.loads(sys.argv[4])["stats"]["counters"]
for k in ("read_ops_cache", "read_ops_origin", "passthrough_opens_cache", "passthrough_opens_origin", "fills"):
    assert c1[k] - c0[k] == j["stats"][k], ("%s moved outside the accelerated phases: the original "
                                            "or the cache device was reached through the mount" % k,
                                            c1[k] - c0[k], j["stats"][k])
EOF
[ "$(ls -A "$D" | LC_ALL=C sort)" = "$(printf '%s\n' keep.txt sub)" ] || fail "scratch visible through the mount: $(ls -A "$D")"
[ "$(cd "$C" && find . -type f | LC_ALL=C sort)" = "$cache_files" ] || fail "cache files changed: $(cd "$C" && find . -type f)"
t_unmount "$D"
rm -rf "$C"
clean "after the accelerated run"

# 4. A failure injected midway, before the bench's own start (the 3rd write: the origin test).
out=$(CACHEMAX_FAULT=pwrite:3:EIO "$CACHEMAX" bench "$D" --cache "$C" "${TINY[@]}" 2>&1) && fail "injected EIO did not fail the bench: $out"
grep -q "Input/output error" <<<"$out" || fail "injected EIO: $out"
clean "after a failed write"

# 5. A failure injected after the bench accelerated DIR itself (its only fstatat looks at the
#    scratch file through the mount): the bench must stop what it started.
out=$(CACHEMAX_FAULT=fstatat:1:EIO "$CACHEMAX" bench "$D" --cache "$C" "${TINY[@]}" 2>&1) && fail "injected fstatat EIO did not fail the bench: $out"
grep -q "not visible through the mount" <<<"$out" || fail "fstatat EIO: $out"
clean "after a failure while accelerated"

# 6. SIGINT early (the origin tests) and while its mount is up.
for when in early mounted; do
  "$CACHEMAX" bench "$D" --cache "$C" --size 2M --runtime 0.5 > "$T_SCRATCH/int.out" 2>&1 &
  bpid=$!
  if [ $when = early ]; then
    sleep 1
  else
    for _ in $(seq 1 300); do grep -q " $D fuse.cachemax " /proc/mounts && break; sleep 0.1; done
    grep -q " $D fuse.cachemax " /proc/mounts || { kill -INT $bpid; fail "the bench never accelerated $D"; }
    sleep 0.5
  fi
  kill -INT $bpid
  rc=0; wait $bpid || rc=$?
  [ $rc -eq 130 ] || fail "SIGINT ($when): exit $rc, expected 130: $(cat "$T_SCRATCH/int.out")"
  grep -q "interrupted" "$T_SCRATCH/int.out" || fail "SIGINT ($when): $(cat "$T_SCRATCH/int.out")"
  clean "after SIGINT ($when)"
done

# 7. Refusals: a non-directory, bad options, too little space (a 4 MiB tmpfs as DIR, then as
#    the cache); each leaves nothing behind.
rc=0; out=$("$CACHEMAX" bench "$D/keep.txt" --cache "$C" "${TINY[@]}" 2>&1) || rc=$?
[ $rc -eq 1 ] && grep -q "not a directory" <<<"$out" || fail "non-directory: rc $rc: $out"
rc=0; out=$("$CACHEMAX" bench "$D" "${TINY[@]}" 2>&1) || rc=$?
[ $rc -eq 2 ] && grep -q "needs --cache" <<<"$out" || fail "no --cache: rc $rc: $out"
rc=0; out=$("$CACHEMAX" bench "$D" --cache "$C" --size 512K 2>&1) || rc=$?
[ $rc -eq 2 ] && grep -q "at least 1M" <<<"$out" || fail "--size 512K: rc $rc: $out"
mkdir -p "$T_SCRATCH/tiny"
mount -t tmpfs -o size=4m cmtest-bench-tiny "$T_SCRATCH/tiny"
T_BINDS+=("$T_SCRATCH/tiny")
rc=0; out=$("$CACHEMAX" bench "$T_SCRATCH/tiny" --cache "$C" "${TINY[@]}" 2>&1) || rc=$?
[ $rc -eq 1 ] && grep -q "too little free space" <<<"$out" || fail "tiny DIR: rc $rc: $out"
[ -z "$(ls -A "$T_SCRATCH/tiny")" ] || fail "tiny DIR: files left: $(ls -A "$T_SCRATCH/tiny")"
rc=0; out=$("$CACHEMAX" bench "$D" --cache "$T_SCRATCH/tiny/c" "${TINY[@]}" 2>&1) || rc=$?
[ $rc -eq 1 ] && grep -q "too little free space" <<<"$out" || fail "tiny cache: rc $rc: $out"
[ -z "$(ls -A "$T_SCRATCH/tiny")" ] || fail "tiny cache: the cache directory was left: $(ls -A "$T_SCRATCH/tiny")"
clean "after the refusals"
echo ok
