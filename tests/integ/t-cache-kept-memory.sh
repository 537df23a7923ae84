#!/usr/bin/env bash
# The kept objects' table is sized from the memory the daemon may use: the machine's, or its
# cgroup's memory limit when that is smaller (sys_memory.h, fs_node.c kept_max_for_memory).
#   1. without a limit of ours: the table's size as the machine gives it (the log line), and
#      3,000 small files read again are all reopened from kept objects (when it holds them);
#   2. the daemon started in a cgroup limited to 128 MiB: "at most 1024 (128 MiB of memory:
#      the cgroup's limit)", and the same 3,000 files read again reopen at most 1,024 kept
#      objects (with the machine's memory they were all kept), while 400 of them read twice
#      are still reopened from kept objects (at least 300);
#   3. the limit on a parent cgroup, none on the daemon's own: the parent's limit holds.
# cgroup v1 or v2, whichever has the memory controller (lib.sh t_memory_cgroup); skipped
# without one.
. "$(dirname "$0")/lib.sh"
need_root
t_shm kmem
D=$T_SCRATCH/data C=$SHM/cache
N=3000
counter() { t_read_counter "$D" "$1"; }
kept_line() { grep -h "kept objects: at most" "$CACHEMAX_RUN_DIR"/*.log | tail -n 1; }

python3 - "$D" "$N" <<'EOF'
import os, sys
for i in range(int(sys.argv[2])):
    d = os.path.join(sys.argv[1], "d%d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(os.urandom(500 + i % 1000))
EOF

# reopens: start DIR with `"$@"` as the command's prefix (a cgroup), make every copy complete,
# read every file once more (each copy kept at its close), then once again: prints the
# kept_reopens of that last pass, then those of 400 files read twice. (Called in $(...): the
# caller registers the mount.)
reopens() {
  local k0
  "$@" "$CACHEMAX" start "$D" --cache "$C" --size 1G >/dev/null
  grep -q " $D fuse.cachemax " /proc/mounts || fail "start $D: no mount"
  for _ in $(seq 1 50); do
    find "$D" -type f -exec cat {} + >/dev/null
    [ "$(find "$C" -name '*.meta' | wc -l)" -ge "$N" ] && break
    sleep 0.1
  done
  [ "$(find "$C" -name '*.meta' | wc -l)" -ge "$N" ] || fail "the $N copies were not complete after 50 passes"
  find "$D" -type f -exec cat {} + >/dev/null
  k0=$(counter kept_reopens)
  find "$D" -type f -exec cat {} + >/dev/null
  echo -n "$(( $(counter kept_reopens) - k0 )) "
  # 400 of them (d0 to d3) twice: few enough for any table of 1,024 (64 sets of 16)
  cat "$D"/d[0-3]/* >/dev/null
  k0=$(counter kept_reopens)
  cat "$D"/d[0-3]/* >/dev/null
  echo $(( $(counter kept_reopens) - k0 ))
  t_unmount "$D" >/dev/null
}

# --- 1. the machine's memory ---------------------------------------------------------------------
T_MOUNTS+=("$D")
read -r r r400 <<<"$(reopens env)"
line=$(kept_line)
n0=$(sed -n 's/.*kept objects: at most \([0-9]*\) .*/\1/p' <<<"$line")
[ -n "$n0" ] || fail "no 'kept objects: at most N' line in the daemon's log"
echo "ok: no limit of ours: '$line', $r of $N files reopened from kept objects ($r400 of 400)"
[ "$n0" -ge $((N * 4)) ] || skip "the daemon keeps $n0 objects without a limit of ours: too few to tell a limit of 128 MiB"
[ "$r" -ge $((N * 9 / 10)) ] || fail "with $n0 kept objects, $r of $N files read again were reopened from kept objects"

# --- 2. the daemon's cgroup limited to 128 MiB ----------------------------------------------------
t_memory_cgroup $((128 << 20)) || skip "no memory cgroup controller (v1 or v2) to limit the daemon with"
CG=$T_CGROUP
read -r r r400 <<<"$(reopens t_in_cgroup "$CG")"
line=$(kept_line)
[[ $line == *"kept objects: at most 1024 (128 MiB of memory: the cgroup's limit)"* ]] \
  || fail "in a cgroup limited to 128 MiB the daemon said: '$line'"
[ "$r" -le 1024 ] || fail "in a cgroup limited to 128 MiB (1,024 kept objects) $r files were reopened from kept objects"
[ "$r400" -ge 300 ] || fail "in a cgroup limited to 128 MiB, $r400 of 400 files read again were reopened from kept objects"
echo "ok: limited to 128 MiB: '$line', $r of $N files reopened from kept objects ($r400 of 400)"

# --- 3. the limit of a parent ---------------------------------------------------------------------
t_memory_cgroup $((192 << 20)) || fail "cannot make a second cgroup"
t_memory_cgroup max "$T_CGROUP" || fail "cannot make a child cgroup"
T_MOUNTS+=("$D")
t_in_cgroup "$T_CGROUP" "$CACHEMAX" start "$D" --cache "$C" >/dev/null
line=$(kept_line)
[[ $line == *"kept objects: at most 1536 (192 MiB of memory: the cgroup's limit)"* ]] \
  || fail "in an unlimited cgroup below one limited to 192 MiB the daemon said: '$line'"
t_unmount "$D" >/dev/null
echo "ok: below a parent limited to 192 MiB: '$line'"
echo "PASS: the kept objects' table follows the cgroup's memory limit"
