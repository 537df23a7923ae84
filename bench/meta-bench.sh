#!/usr/bin/env bash
# bench/meta-bench.sh — metadata and small files (issue 14): everyday tree-walking workloads
# through the CacheMax mount against the same original reached behind the mount. Run by hand,
# as root (not part of make check):
#
#     bench/meta-bench.sh [--files N] [--rounds N] [--originals a,b,c] [--cachemax PATH]
#                         [--start-opts "OPTIONS"] [--settle SEC]
#
#   --files N          files in the generated repository (default 5000, a quick run of a few
#                      minutes; the issue's figure is 100000, which takes about an hour: the
#                      HDD-like original reads every small file at 200 IOPS)
#   --rounds N         timed rounds per original, alternating the two sides (default 2;
#                      the HDD-like original always 1: each side there costs minutes)
#   --originals LIST   which originals, comma-separated (default a,b,c):
#                        a  local disk (the scratch directory under /tmp), page cache warm
#                        b  HDD-like: a loop-backed ext4 image with reads throttled to 200 IOPS
#                           (cgroup v1 blkio), measured after a warm-up through the mount (every
#                           workload once, a second cat: the fill queue skips completions beyond
#                           its bound, the next read fills the file; then the fills settle),
#                           a stop/start of the daemon and a page-cache drop before each side
#                           the same tree copied to tmpfs is timed too (the floor: a cache that
#                           served everything from its device could reach that at best)
#                        c  sshfs over loopback (a private sshd on 127.0.0.1, a fresh key);
#                           each workload also runs on the directory sshd serves (the floor:
#                           no cache beats a local directory, so original ÷ floor is the
#                           ceiling of the ratio)
#   --cachemax PATH    the binary (default build/cachemax under the repository root)
#   --start-opts OPTS  extra options for `cachemax start` (e.g. "--attr-timeout 3600")
#   --settle SEC       (b): wait SEC seconds between making the tree and the warm-up (default
#                      0, a user who lists a tree right after unpacking it; builds before the
#                      catalog's young listings need 2.5, or the tree's listings are never
#                      recorded: docs/PERFORMANCE.md, "meta-bench")
#
# WHAT IT MEASURES
#   A generated git repository of N files of 0.5-4 KiB (100 per directory, two levels, two
#   commits, 1% of the files changed after the last commit) plus a C tree (N/50 sources, at
#   least 20, each including 4 of 10 headers). Every workload runs on the original reached
#   behind the mount (a bind mount of the original made before `cachemax start`) and through
#   the mount, alternating which side goes first, output to a pipe (never /dev/null, which tar
#   would not even read):
#     find       find ROOT
#     stat       find ROOT -printf '%s %m %T@'   (an lstat of every file)
#     ls-lR      ls -lR ROOT
#     du         du -s ROOT
#     tar-c      tar cf - ROOT
#     cat        cat of every file (find -type f | xargs cat)
#     git-status git status --porcelain  \   each side with its own index file (outside the
#     git-diff   git diff                 >  tree, refreshed once per side), since the index
#     git-log-p  git log -p              /   holds stat data; GIT_OPTIONAL_LOCKS=0
#     make-j2    make -j2 of the C tree, objects written outside the tree (a fresh directory)
#   and, for a cached small file, the cost of open+read+close in µs (a C loop over up to 2,000
#   files, repeated, on each side; original a only: with a warm page cache).
#
# HOW TO READ THE OUTPUT
#   One table per original: seconds on each side (median over the rounds) and the ratio
#   original ÷ mount, within each round, median (min-max): > 1 means faster through CacheMax,
#   1 = as fast as the original. Issue 14's targets: a >= 0.8, b >= 10, c >= 10 (once warm).
#   The machine is shared: compare ratios measured in one run, never absolute times across runs.
#   Everything the run made (mounts, the daemon, the loop device and its throttle, sshd, the
#   scratch) is removed at exit, also on failure or Ctrl-C (tests/integ/lib.sh's trap).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FILES=5000
ROUNDS=2
ORIGINALS=a,b,c
START_OPTS=""
SETTLE=0
CACHEMAX_BIN=$HERE/../build/cachemax
die() { echo "meta-bench: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --files) FILES=${2:?}; shift 2;;
    --rounds) ROUNDS=${2:?}; shift 2;;
    --originals) ORIGINALS=${2:?}; shift 2;;
    --cachemax) CACHEMAX_BIN=${2:?}; shift 2;;
    --start-opts) START_OPTS=${2-}; shift 2;;
    --settle) SETTLE=${2:?}; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown option '$1' (see --help)";;
  esac
done
if ! [[ $FILES =~ ^[0-9]+$ ]] || [ "$FILES" -lt 100 ]; then die "--files takes a number >= 100, not '$FILES'"; fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a number >= 1, not '$ROUNDS'"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--settle takes seconds (e.g. 2.5), not '$SETTLE'"
[ "$(id -u)" -eq 0 ] || die "needs root (mounts, loop devices, cgroup throttles)"
[ -x "$CACHEMAX_BIN" ] || die "no binary at $CACHEMAX_BIN: build first (make)"
for t in git make cc tar python3 bc; do command -v "$t" >/dev/null || die "needs $t"; done
export CACHEMAX=$CACHEMAX_BIN
# shellcheck source=../tests/integ/lib.sh
source "$HERE/../tests/integ/lib.sh"
set +e +o pipefail; set -u   # timed pipelines report their own failures (below)
export GIT_OPTIONAL_LOCKS=0 GIT_PAGER=cat PAGER=cat LC_ALL=C
W=$T_SCRATCH
t_shm bench
CACHE_ROOT=$SHM

# --- the tree ------------------------------------------------------------------------------
make_tree() {   # make_tree DIR: the repository and the C tree
  python3 - "$1" "$FILES" <<'PY' || return 1
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(14)
words = b"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu\n"
for i in range(n):
    d = f"{root}/d{i // 10000:02d}/e{(i // 100) % 100:02d}"
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    size = rnd.randint(512, 4096)
    with open(f"{d}/f{i:06d}.txt", "wb") as f:
        f.write((words * (size // len(words) + 1))[:size - 8] + b"%07d\n" % i)
c = f"{root}/csrc"
os.makedirs(c)
for h in range(10):
    with open(f"{c}/h{h}.h", "w") as f:
        f.write(f"#pragma once\nstatic inline int h{h}(int x) {{ return x * {h + 1}; }}\n")
srcs = max(20, n // 50)
for s in range(srcs):
    with open(f"{c}/s{s:05d}.c", "w") as f:
        for h in rnd.sample(range(10), 4):
            f.write(f'#include "h{h}.h"\n')
        f.write(f"int s{s}(int x);\nint s{s}(int x) {{ return x + {s}; }}\n")
with open(f"{c}/Makefile", "w") as f:
    f.write("SRCS := $(wildcard *.c)\nOBJS := $(SRCS:%.c=$(O)/%.o)\nall: $(OBJS)\n"
            "$(O)/%.o: %.c $(wildcard *.h)\n\t$(CC) -O0 -c -o $@ $<\n")
PY
  ( cd "$1" && git init -q && git config gc.auto 0 && git config user.email b@b && git config user.name bench \
    && git add -A && git commit -q -m first \
    && find d00 -name '*.txt' | sort | awk 'NR % 100 == 0' | xargs sed -i '1s/^/changed /' \
    && git commit -q -am second \
    && find d00 -name '*.txt' | sort | awk 'NR % 100 == 50' | xargs sed -i '1s/^/uncommitted /' \
    && git gc -q ) || return 1
  sleep 1.1   # an index written later than every file's mtime: no racily-clean entries to re-read
}

# --- workloads: each takes the root to work in, writes to stdout --------------------------
wl_find() { find "$1"; }
wl_stat() { find "$1" -printf '%s %m %T@\n'; }
wl_ls_lR() { ls -lR "$1"; }
wl_du() { du -s "$1"; }
wl_tar_c() { tar cf - -C "$1" .; }
wl_cat() { find "$1" -type f -print0 | xargs -0 cat; }
wl_git_status() { GIT_INDEX_FILE=$(index_of "$1") git -C "$1" status --porcelain; }
wl_git_diff() { GIT_INDEX_FILE=$(index_of "$1") git -C "$1" diff; }
wl_git_log_p() { git -C "$1" log -p; }
wl_make_j2() { rm -rf "$W/obj"; mkdir "$W/obj"; make -s -C "$1/csrc" -j2 O="$W/obj"; }
WORKLOADS="find stat ls_lR du tar_c cat git_status git_diff git_log_p make_j2"
index_of() {
  if [ "$1" = "$MNT" ]; then echo "$W/index.mount"
  elif [ -n "$FLOOR" ] && [ "$1" = "$FLOOR" ]; then echo "$W/index.floor"
  else echo "$W/index.orig"; fi
}
FLOOR=   # (c): the directory sshd serves, timed as a third side (the floor: a local directory)

# time_side FN ROOT: seconds FN ROOT took (its output counted through a pipe); "ERR" on failure
time_side() {
  local s e rc
  s=$(date +%s.%N)
  "wl_$1" "$2" 2>"$W/err" | wc -c >/dev/null
  rc=${PIPESTATUS[0]}
  e=$(date +%s.%N)
  # git diff and make return 0; find/ls may return 1 for nothing else but an error
  if [ "$rc" -ne 0 ]; then echo "meta-bench: $1 on $2 failed ($rc): $(head -c 300 "$W/err")" >&2; echo ERR; return; fi
  echo "$e - $s" | bc
}

# per-file open+read+close in µs, the C loop over a list of files (repeated to >= 20,000 opens)
PERFILE_SRC='#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
	char buf[8192], line[4096], **names = NULL; size_t n = 0, cap = 0;
	FILE *l = fopen(argv[1], "r"); if (!l) return 1;
	while (fgets(line, sizeof line, l)) { line[strcspn(line, "\n")] = 0;
		if (n == cap) { cap = cap ? cap * 2 : 1024; names = realloc(names, cap * sizeof *names); }
		names[n++] = strdup(line); }
	if (!n) return 1;
	size_t reps = 20000 / n + 1, done = 0; struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t r = 0; r < reps; r++) for (size_t i = 0; i < n; i++) {
		int fd = open(names[i], O_RDONLY); if (fd < 0) { perror(names[i]); return 1; }
		while (read(fd, buf, sizeof buf) > 0) ; close(fd); done++; }
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / done);
	return 0; }'
perfile_us() {   # perfile_us ROOT: µs per open+read+close of the first 2,000 files under d00
  find "$1/d00" -type f | sort | head -n 2000 > "$W/perfile.list"
  "$W/perfile" "$W/perfile.list"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { if [ "$1" = ERR ] || [ "$2" = ERR ]; then echo ERR; else echo "scale=4; $1 / ($2 + 0.0001)" | bc; fi; }

# --- the run -------------------------------------------------------------------------------
# shellcheck disable=SC2086  # START_OPTS: options, split on purpose
start_mount() { "$CACHEMAX" start "$ORIG" --cache "$CACHE" $START_OPTS >/dev/null || fail "cachemax start $ORIG failed"; }
stop_mount() { "$CACHEMAX" stop "$ORIG" >/dev/null || fail "cachemax stop $ORIG failed"; }
refresh_indexes() {   # each side's own index, holding that side's stat data
  cp "$BACK/.git/index" "$W/index.orig"; cp "$BACK/.git/index" "$W/index.mount"
  GIT_INDEX_FILE=$W/index.orig git -C "$BACK" update-index -q --refresh >/dev/null
  GIT_INDEX_FILE=$W/index.mount git -C "$MNT" update-index -q --refresh >/dev/null
  if [ -n "$FLOOR" ]; then
    cp "$BACK/.git/index" "$W/index.floor"
    GIT_INDEX_FILE=$W/index.floor git -C "$FLOOR" update-index -q --refresh >/dev/null
  fi
}

# measure LABEL COLD(0|1) ROUNDS: the timed rounds; one table
measure() {
  local label=$1 cold=$2 rounds=$3 w r o m f
  declare -A T_O T_M T_R T_F
  for r in $(seq 1 "$rounds"); do
    for w in $WORKLOADS; do
      if [ $(( (r + ${#w}) % 2 )) -eq 0 ]; then
        [ "$cold" = 1 ] && bench_drop; o=$(time_side "$w" "$BACK")
        [ "$cold" = 1 ] && bench_drop; m=$(time_side "$w" "$MNT")
      else
        [ "$cold" = 1 ] && bench_drop; m=$(time_side "$w" "$MNT")
        [ "$cold" = 1 ] && bench_drop; o=$(time_side "$w" "$BACK")
      fi
      T_O[$w]+="$o "; T_M[$w]+="$m "; T_R[$w]+="$(ratio "$o" "$m") "
      f=
      if [ -n "$FLOOR" ]; then f=$(time_side "$w" "$FLOOR"); T_F[$w]+="$f "; fi
      printf '  round %d %-10s original %8ss  mount %8ss%s\n' "$r" "$w" "$o" "$m" "${f:+  floor ${f}s}" >&2
    done
  done
  echo
  echo "== $label: $FILES files, $rounds round(s); ratio = original ÷ mount (> 1: faster through CacheMax)"
  if [ -n "$FLOOR" ]; then
    echo "   floor = the same workload on $FLOOR (a local copy, or the directory the original serves):"
    echo "   no cache can be faster than that, so ceiling = original ÷ floor is the best ratio reachable"
  fi
  printf '%-11s %11s %11s %8s %-13s%s\n' workload original-s mount-s ratio "(min-max)" "${FLOOR:+ floor-s  ceiling}"
  for w in $WORKLOADS; do
    local rs lo hi fl=
    if [ -n "$FLOOR" ]; then
      local fs os
      fs=$(echo "${T_F[$w]}" | tr ' ' '\n' | grep -v '^$' | grep -v ERR | median)
      os=$(echo "${T_O[$w]}" | tr ' ' '\n' | grep -v '^$' | grep -v ERR | median)
      fl=$(printf ' %8.3f %8.2f' "$fs" "$(ratio "$os" "$fs")")
    fi
    rs=$(echo "${T_R[$w]}" | tr ' ' '\n' | grep -v '^$' | grep -v ERR)
    lo=$(echo "$rs" | sort -g | head -n1); hi=$(echo "$rs" | sort -g | tail -n1)
    printf '%-11s %11.3f %11.3f %8.2f (%.2f-%.2f)%s\n' "${w//_/-}" \
      "$(echo "${T_O[$w]}" | tr ' ' '\n' | grep -v '^$' | grep -v ERR | median)" \
      "$(echo "${T_M[$w]}" | tr ' ' '\n' | grep -v '^$' | grep -v ERR | median)" \
      "$(echo "$rs" | median)" "${lo:-0}" "${hi:-0}" "$fl"
  done
}
bench_drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

fills() {
  "$CACHEMAX" stats "$ORIG" --json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"]["fills"])' 2>/dev/null || echo 0
}
warm_up() {   # a pass of every workload through the mount, then a second cat (fills the cache), untimed
  local w last now same=0 i
  for w in $WORKLOADS; do "wl_$w" "$MNT" 2>/dev/null | wc -c >/dev/null; done
  # The fill queue skips background completions beyond its bound; the file's next read fills it.
  wl_cat "$MNT" | wc -c >/dev/null
  # and wait until the fills settle (the count unchanged for 3 s; at most 10 minutes)
  last=$(fills)
  for i in $(seq 1 600); do
    sleep 1; now=$(fills)
    if [ "$now" = "$last" ]; then same=$((same + 1)); [ $same -ge 3 ] && break; else same=0; fi
    last=$now
  done
  echo "meta-bench: warm-up done: $last fills (settled ${i}s after the passes)" >&2
}

# setup ORIGINAL-DIR: tree made already; bind it behind, start, refresh indexes
setup_sides() {
  ORIG=$1; MNT=$1; BACK=$W/back-$2; CACHE=$CACHE_ROOT/cache-$2
  mkdir -p "$CACHE"
  t_backdoor "$ORIG" "$BACK"
  T_MOUNTS+=("$ORIG")
  start_mount
  refresh_indexes
}

cc -O2 -o "$W/perfile" -x c - <<<"$PERFILE_SRC" || fail "cannot build the per-file loop"
echo "meta-bench: $FILES files; cachemax $("$CACHEMAX" --version 2>/dev/null | head -n1); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$START_OPTS" ] && echo "meta-bench: start options: $START_OPTS"

if [[ ,$ORIGINALS, == *,a,* ]]; then
  echo "meta-bench: (a) local disk, page cache warm: building the tree in $W/a ..." >&2
  mkdir -p "$W/a"; make_tree "$W/a" || fail "cannot build the tree"
  setup_sides "$W/a" a
  warm_up
  measure "(a) local disk ($(findmnt -n -o SOURCE --target "$W"), page cache warm)" 0 "$ROUNDS"
  o=$(perfile_us "$BACK"); m=$(perfile_us "$MNT"); o2=$(perfile_us "$BACK"); m2=$(perfile_us "$MNT")
  echo "per-file open+read+close of a cached small file (µs, 2 runs each, alternating):" \
       "original $o $o2, mount $m $m2"
  stop_mount
fi

if [[ ,$ORIGINALS, == *,b,* ]]; then
  if ! t_hdd_can_throttle; then
    echo "meta-bench: (b) skipped: no cgroup v1 blkio throttle ($T_BLKIO_READ_IOPS)" >&2
  else
    echo "meta-bench: (b) HDD-like original: building the tree on a loop ext4 image ..." >&2
    # the image: the tree's size with room (4 KiB blocks per small file, the .git pack)
    t_hdd_make "$(( FILES / 100 + 256 ))M" "$W/b"
    make_tree "$W/b" || fail "cannot build the tree"
    sync
    # The catalog records no listing of a directory changed within the last 2 s (the racily
    # clean rule) when it is read; its young listings record them 2 s later. Builds without
    # them need --settle 2.5: the kernel keeps the first listing it got, so a tree listed at
    # once after it was made was never recorded (find 0.9-1.5x instead of 84-111x).
    sleep "$SETTLE"
    # the floor: the same tree on the cache's kind of device (tmpfs, in memory), which no drop
    # empties: what a cache serving everything from its device could reach at best
    cp -a "$W/b" "$SHM/floor-b" || fail "cannot copy the tree to $SHM"
    FLOOR=$SHM/floor-b
    setup_sides "$W/b" b
    t_hdd_throttle "$T_HDD_DEV" 200
    echo "meta-bench: (b) warm-up through the mount at 200 read IOPS ..." >&2
    bench_drop; warm_up
    stop_mount; start_mount
    # what the restart found: with --meta-catalog, whether the seal holds (else every first
    # walk reads the original, and the figures say nothing about the catalog)
    "$CACHEMAX" stats "$MNT" --json 2>/dev/null |
      python3 -c 'import json,sys; c=json.load(sys.stdin).get("meta_catalog"); print("meta-bench: (b) after the restart: meta_catalog %s" % c)' >&2 || true
    r0=$(t_hdd_reads "$T_HDD_DEV")
    measure "(b) HDD-like: loop ext4, 200 read IOPS; after a warm-up, a restart, page cache dropped before each side" 1 1
    echo "loop device reads during the timed runs (both sides): $(( $(t_hdd_reads "$T_HDD_DEV") - r0 ))"
    FLOOR=
    t_hdd_unthrottle "$T_HDD_DEV"
    stop_mount
  fi
fi

if [[ ,$ORIGINALS, == *,c,* ]]; then
  if ! t_has_sshfs; then
    echo "meta-bench: (c) skipped: needs sshfs and openssh-server (make deps)" >&2
  else
    echo "meta-bench: (c) sshfs over loopback: building the tree ..." >&2
    mkdir -p "$W/remote"
    make_tree "$W/remote" || fail "cannot build the tree"
    t_sshd_start                       # tests/integ/lib.sh: a private sshd on 127.0.0.1
    t_sshfs "$W/remote" "$W/c"         # sshfs's default caches
    FLOOR=$W/remote
    setup_sides "$W/c" c
    warm_up
    measure "(c) sshfs over loopback (default sshfs options), warm" 0 "$ROUNDS"
    FLOOR=
    stop_mount
  fi
fi
