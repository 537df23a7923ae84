#!/usr/bin/env bash
# bench/per-file-ab.sh — two builds side by side on the per-file path of cached small files
# (issue 14): open + read + close of every file, through a mount made by each build over its
# own copy of one tree, alternating A, B and the original in every round. Hand-run, as root;
# not a timed test.
#
# Usage: bench/per-file-ab.sh --a BINARY --b BINARY [--files N] [--rounds R]
#            [--original local|sshfs] [--start-opts "OPTIONS"]
#   --a, --b BINARY    the two cachemax builds to compare (copies: a build may be rebuilt meanwhile)
#   --files N          small files (0.5-4 KiB, 100 per directory; default 1000: within the fd
#                      cache, a quarter of the daemon's fd limit up to 16,384, and the kept
#                      objects, one per 128 KiB of memory up to 131,072)
#   --rounds R         alternating rounds (default 9); each round reads every file twice per side
#   --original local   the trees on /var/tmp (ext4 here), page cache warm (default)
#   --original sshfs   each tree behind its own sshfs mount of a private sshd on 127.0.0.1
#   --start-opts OPTS  extra options for both `cachemax start`s
# Prints, per side: µs per open+read+close (median of the rounds, and each round), the per-round
# ratio A ÷ B (> 1: B is faster), the daemon's CPU per file (utime + stime, clock ticks: coarse),
# each mount's open counters, and the kernel's latency of OPEN and RELEASE per mount (send to
# end, fuse tracepoints with perf) over three more alternating passes.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=per-file-ab
. "$HERE/lib.sh"
A_BIN= B_BIN= N=1000 R=9 KIND=local START_OPTS=
while [ $# -gt 0 ]; do
  case $1 in
    --a) A_BIN=${2:?}; shift 2;;
    --b) B_BIN=${2:?}; shift 2;;
    --files) N=${2:?}; shift 2;;
    --rounds) R=${2:?}; shift 2;;
    --original) KIND=${2:?}; shift 2;;
    --start-opts) START_OPTS=${2-}; shift 2;;
    -h|--help) bench_usage "$0"; exit 0;;
    *) bench_die "unknown argument '$1' (see --help)";;
  esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || bench_die "--files takes a number >= 1, not '$N'"
[[ $R =~ ^[1-9][0-9]*$ ]] || bench_die "--rounds takes a number >= 1, not '$R'"
case $KIND in local|sshfs) ;; *) bench_die "--original is local or sshfs, not '$KIND'";; esac
[ "$(id -u)" -eq 0 ] || bench_die "needs root (it mounts)"
[ -x "$A_BIN" ] && [ -x "$B_BIN" ] || bench_die "--a and --b must name two cachemax binaries"
for t in cc perf python3 bc; do command -v "$t" >/dev/null || bench_die "needs $t"; done

export CACHEMAX=$B_BIN
# shellcheck source=../tests/integ/lib.sh
source "$HERE/../tests/integ/lib.sh"
set +e +o pipefail; set -u
[ "$KIND" = local ] || t_has_sshfs || bench_die "--original sshfs needs sshfs and openssh-server (make deps)"
W=$T_SCRATCH
cp "$A_BIN" "$W/cachemax-a"; cp "$B_BIN" "$W/cachemax-b"
cc -O2 -o "$W/loop" -x c - <<'C' || fail "cannot build the per-file loop"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
	char buf[8192], line[4096], **names = NULL; size_t n = 0, cap = 0; int reps = atoi(argv[2]);
	FILE *l = fopen(argv[1], "r"); if (!l) return 1;
	while (fgets(line, sizeof line, l)) { line[strcspn(line, "\n")] = 0;
		if (n == cap) { cap = cap ? cap * 2 : 1024; names = realloc(names, cap * sizeof *names); }
		names[n++] = strdup(line); }
	struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
	for (int r = 0; r < reps; r++) for (size_t i = 0; i < n; i++) {
		int fd = open(names[i], O_RDONLY); if (fd < 0) { perror(names[i]); return 1; }
		while (read(fd, buf, sizeof buf) > 0) ; close(fd); }
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / (n * reps));
	return 0; }
C
make_tree() {
  python3 - "$1" "$N" <<'PY' || fail "cannot make the tree"
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2]); r = random.Random(14)
for i in range(n):
    d = os.path.join(root, "d%02d" % (i // 100)); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "f%05d" % i), "wb").write(os.urandom(r.randint(512, 4096)))
PY
}
bench_two_trees "$KIND"   # bench/lib.sh: sets A and B
t_backdoor "$A" "$W/orig"   # the original, reached behind the mount
mkdir -p "$W/cache-a" "$W/cache-b"
# shellcheck disable=SC2086  # START_OPTS: options, split on purpose
CACHEMAX=$W/cachemax-a t_mount "$A" "$W/cache-a" $START_OPTS >/dev/null || fail "start A"
# shellcheck disable=SC2086
CACHEMAX=$W/cachemax-b t_mount "$B" "$W/cache-b" $START_OPTS >/dev/null || fail "start B"
pid_of() { "$CACHEMAX" status --json | python3 -c 'import json, sys
for d in json.load(sys.stdin)["directories"]:
    if d["dir"] == sys.argv[1]: print(d["daemon_pid"])' "$1"; }
PA=$(pid_of "$A") PB=$(pid_of "$B")
(cd "$A" && find . -type f | sort) > "$W/rel"
sed "s|^\.|$A|" "$W/rel" > "$W/list-a"; sed "s|^\.|$B|" "$W/rel" > "$W/list-b"
sed "s|^\.|$W/orig|" "$W/rel" > "$W/list-o"
hits() { "$CACHEMAX" stats "$1" --json | python3 -c 'import json, sys
print(json.load(sys.stdin)["stats"]["counters"]["passthrough_opens_cache"])'; }
# warm: every copy complete (after a first read, in the background): a pass is N cache hits on
# each side (at most 60 passes)
for _ in $(seq 1 60); do
  ha=$(hits "$A") hb=$(hits "$B")
  "$W/loop" "$W/list-a" 1 >/dev/null; "$W/loop" "$W/list-b" 1 >/dev/null
  [ $(( $(hits "$A") - ha )) -eq "$N" ] && [ $(( $(hits "$B") - hb )) -eq "$N" ] && break
  sleep 2
done
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
ra=() rb=() ro=() ca=() cb=()
for _ in $(seq 1 "$R"); do
  c0=$(cpu "$PA"); ra+=("$("$W/loop" "$W/list-a" 2)"); ca+=("$(echo "($(cpu "$PA") - $c0) * 1000000 / $hz / ($N * 2)" | bc -l)")
  c0=$(cpu "$PB"); rb+=("$("$W/loop" "$W/list-b" 2)"); cb+=("$(echo "($(cpu "$PB") - $c0) * 1000000 / $hz / ($N * 2)" | bc -l)")
  ro+=("$("$W/loop" "$W/list-o" 2)")
done
med() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] }'; }
ratios=(); for i in $(seq 0 $((R - 1))); do ratios+=("$(echo "${ra[$i]} / ${rb[$i]}" | bc -l)"); done
echo "per-file-ab: $KIND original, $N files, $R rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "µs per open+read+close: A $(med "${ra[@]}"), B $(med "${rb[@]}"), original $(med "${ro[@]}")"
echo "  A: ${ra[*]}"; echo "  B: ${rb[*]}"; echo "  original: ${ro[*]}"
echo "A ÷ B per round: median $(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }') ($(printf '%.2f ' "${ratios[@]}"))"
echo "daemon CPU µs per file (utime+stime, coarse): A $(med "${ca[@]}"), B $(med "${cb[@]}")"
for x in A B; do
  d=$A; [ $x = B ] && d=$B
  "$CACHEMAX" stats "$d" --json | python3 -c 'import json, sys
c = json.load(sys.stdin)["stats"]["counters"]
print("%s: opens %d, cache hits %d, origin opens deferred %s, opened late %s" % (sys.argv[1], c["opens"],
      c["passthrough_opens_cache"], c.get("origin_opens_deferred", "-"), c.get("origin_opens_late", "-")))' $x
done
t_shm perf
conn_a=$(mountpoint -d "$A"); conn_a=${conn_a#*:}; conn_b=$(mountpoint -d "$B"); conn_b=${conn_b#*:}
perf record -q -a -e fuse:fuse_request_send -e fuse:fuse_request_end -o "$SHM/p.data" -- \
  bash -c "for i in 1 2 3; do '$W/loop' '$W/list-a' 1; '$W/loop' '$W/list-b' 1; done" >/dev/null 2>&1
perf script -i "$SHM/p.data" -F time,event,trace 2>/dev/null | python3 -c '
import collections, re, sys
send, lat = {}, collections.defaultdict(list)
for l in sys.stdin:
    m = re.match(r"\s*([\d.]+):\s+fuse:(\w+):\s+connection (\d+) req (\d+)(?: opcode \d+ \((\w+)\))?", l)
    if not m:
        continue
    t, ev, c, u, op = float(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)
    if ev == "fuse_request_send":
        send[(c, u)] = (t, op)
    elif (c, u) in send:
        t0, op = send.pop((c, u)); lat[(c, op)].append((t - t0) * 1e6)
names = {sys.argv[1]: "A", sys.argv[2]: "B"}
for (c, op), v in sorted(lat.items(), key=lambda x: (x[0][1], names.get(x[0][0], ""))):
    if c in names and op in ("FUSE_OPEN", "FUSE_RELEASE"):
        v.sort()
        print("%s %-13s %6d requests, median %5.1f µs, p90 %6.1f µs" % (names[c], op, len(v), v[len(v) // 2], v[int(len(v) * 0.9)]))
' "$conn_a" "$conn_b"
