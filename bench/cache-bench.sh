#!/usr/bin/env bash
# bench/cache-bench.sh — the cache engine benchmark (issue #3): origin on a real disk, cache on a
# fast device, five ratios with their numerators and denominators. Run by hand, as root:
#
#     bench/cache-bench.sh [--rounds N] [--runtime SEC] [--pin none|same|split] [--keep]
#                          [--json FILE] [--dir PARENT] [--cache-dir PARENT] [--cachemax PATH]
#                          [--hot-size MiB] [--miss-size MiB] [--big-size MiB] [--part-size MiB]
#                          [--only a,b,c,d,e,e2] [--start-args "OPTIONS"]
#
#   --only LIST       run only these cases, comma-separated (default a,b,c,d,e,e2)
#   --start-args "OPTIONS"  extra options for `cachemax start`, split on spaces, e.g.
#                     "--io-uring" or "--no-io-uring" (the transport: cachemax --help)
#   --rounds N        repeat every measurement N times (default 1); ratios are computed within a
#                     round and shown as median (min-max), numerators/denominators as medians
#   --runtime SEC     seconds per time-based fio run (default 5)
#   --pin MODE        none (default), same (fio and daemons on CPU 0), split (fio on CPU 0,
#                     cachemax and bindfs on CPU 1) — see NOISE below
#   --keep            keep the origin files and the cache directory (paths printed at the end);
#                     mounts are always removed
#   --json FILE       also write every per-round figure and the ratios to FILE
#   --dir PARENT      where the origin directory is made (default /var/tmp: the real disk)
#   --cache-dir PARENT where the cache directory is made (default /dev/shm: tmpfs, the "fast
#                     cache device")
#   --cachemax PATH   the binary (default build/cachemax under the repository root)
#   --hot-size MiB    the fully cached file of a, b (default 64)
#   --miss-size MiB   the file read once, uncached, in c (default 1024: ~1 s at disk speed)
#   --big-size MiB    the large partially cached file of d (default 1024)
#   --part-size MiB   its cached leading region, where d reads (default 256)
#
# WHAT IT MEASURES (fio, 1 job, QD1, ioengine=psync, O_DIRECT on every run)
#   A fresh origin directory PARENT/cachemax-cb.XXXXXX/origin on the disk, accelerated in place
#   (`cachemax start ORIGIN --cache CACHEDIR`), CACHEDIR on tmpfs. The original files stay
#   reachable behind the mount through a private bind mount made before the start ("raw"),
#   so origin runs need no stop/start and see exactly the disk. The page cache is dropped
#   (sync; echo 3 > /proc/sys/vm/drop_caches) before every run that touches the origin.
#   Ratios are of IOPS (equal to ratios of MB/s: the block size is fixed per row):
#     a  4K random read of a fully cached file (hot.dat) through the mount  ÷  the same read of
#        its cache copy (CACHEDIR/cachemax-v1/objects/HH/DEV-INO.data) directly.  target >= 0.90
#        The file is made complete by one full read through the mount (then closed), so fio's
#        read-only open is passed through by the kernel to the copy.
#     b  1M sequential read, same two files.                                       target >= 0.90
#     c  first (miss) read of an uncached file (miss.dat, `cachemax evict` before, page cache
#        dropped) through the mount  ÷  the same single pass on the origin directly. 1M
#        sequential, one pass over the whole file (not time-based: only the first read misses).
#        With the default --first-read origin the kernel passes this read through to the
#        original (the path check wants first_reads); with --first-read fill (give it in
#        --start-args) the daemon serves it and fills the cache as it goes.  target >= 0.85
#     d  4K random read of a PARTIALLY cached large file (user-space path)  ÷  bindfs over the
#        origin, same file, same region. "Partially cached": big.dat (--big-size) of which only
#        the first --part-size MiB were read twice through the mount (dd O_DIRECT, so no
#        readahead beyond it; the first pass is a first read, passed through to the original,
#        the second fills the cache): those 256 KiB chunks are in the cache, the object is not
#        complete, so opens are served by the daemon; fio's reads are restricted to that region
#        (offset=0, size=--part-size), so every read is a cache hit served in user space. The
#        bindfs run reads the same region of the same file from the disk after a cache drop
#        (bindfs does not forward O_DIRECT: its origin page cache warms during the run).
#                                                                                  target >= 3
#     e  4K random write through the mount  ÷  the same on the origin directly, on wr.dat,
#        never read through the mount (its open passes through to the original file).
#                                                                                  target >= 0.85
#     e2 (informational) the same on wr2.dat, fully read through the mount just before, so its
#        writable open is served by the daemon: write-through, origin first, then the copy.
#   Where a run through the mount has a counterpart, the two alternate (mount first in odd
#   rounds, the other first in even rounds) to spread drift over both sides.
#   After every run through the mount, the daemon's counters (`cachemax stats --json`) are
#   compared with those before: the line "path:" shows which path served it (passthrough opens
#   to the copy or to the original, user-space reads from cache/origin, writes) and the daemon's
#   own latency. A run served by the wrong path is flagged "WRONG PATH".
#
# HOW TO READ THE OUTPUT
#   Progress lines: one per fio run (MB/s = 10^6 B/s, IOPS, mean and p99 latency in µs).
#   Final table: per ratio, numerator and denominator (median IOPS or MB/s and mean latency)
#   and the ratio: median (min-max) over rounds, the target and PASS/MISS.
#   Exit status: 0 when the runs completed (whatever PASS/MISS says), non-zero on an error.
#
#   NOISE: ratio d depends mostly on where the daemon's worker runs: a FUSE round trip whose
#   worker wakes on fio's CPU costs ~10 µs, on the other vCPU ~50 µs (docs/ARCHITECTURE.md;
#   bench/mount-bench.sh --pin). On a 2-vCPU machine where others compile, use --rounds 3.
#
# SAFETY
#   On exit, error and Ctrl-C: cachemax is stopped (--lazy), bindfs and the bind mount are
#   unmounted, and the scratch directories are removed (unless --keep). The binary is copied
#   first, so a rebuild during the run cannot mix versions.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=cache-bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

RUNTIME=5; ROUNDS=1; PIN=none; KEEP=0; JSON_OUT=""
PARENT=/var/tmp; CPARENT=/dev/shm; CM="$ROOT/build/cachemax"
HOT_MIB=64; MISS_MIB=1024; BIG_MIB=1024; PART_MIB=256; ONLY=a,b,c,d,e,e2; START_ARGS=()

while [ $# -gt 0 ]; do
  case "$1" in
    --runtime)   [ $# -ge 2 ] || bench_die "--runtime needs a value"; RUNTIME=$2; shift 2;;
    --rounds)    [ $# -ge 2 ] || bench_die "--rounds needs a value"; ROUNDS=$2; shift 2;;
    --pin)       [ $# -ge 2 ] || bench_die "--pin needs none, same or split"; PIN=$2; shift 2;;
    --keep)      KEEP=1; shift;;
    --only)      [ $# -ge 2 ] || bench_die "--only needs a list such as c,d"; ONLY=$2; shift 2;;
    --json)      [ $# -ge 2 ] || bench_die "--json needs a file"; JSON_OUT=$(realpath -m -- "$2"); shift 2;;
    --dir)       [ $# -ge 2 ] || bench_die "--dir needs a path"; PARENT=$2; shift 2;;
    --cache-dir) [ $# -ge 2 ] || bench_die "--cache-dir needs a path"; CPARENT=$2; shift 2;;
    --cachemax)  [ $# -ge 2 ] || bench_die "--cachemax needs a path"; CM=$2; shift 2;;
    --start-args) [ $# -ge 2 ] || bench_die "--start-args needs options"; read -r -a START_ARGS <<< "$2"; shift 2;;
    --hot-size)  [ $# -ge 2 ] || bench_die "--hot-size needs MiB"; HOT_MIB=$2; shift 2;;
    --miss-size) [ $# -ge 2 ] || bench_die "--miss-size needs MiB"; MISS_MIB=$2; shift 2;;
    --big-size)  [ $# -ge 2 ] || bench_die "--big-size needs MiB"; BIG_MIB=$2; shift 2;;
    --part-size) [ $# -ge 2 ] || bench_die "--part-size needs MiB"; PART_MIB=$2; shift 2;;
    -h|--help)   bench_usage "${BASH_SOURCE[0]}"; exit 0;;
    *) bench_die "unknown argument '$1' (see --help)";;
  esac
done
for v in RUNTIME ROUNDS HOT_MIB MISS_MIB BIG_MIB PART_MIB; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || bench_die "${v,,} must be a whole number >= 1"
done
for c in ${ONLY//,/ }; do
  case "$c" in a|b|c|d|e|e2) ;; *) bench_die "--only: unknown case '$c' (cases: a b c d e e2)";; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0;; esac; return 1; }
[ "$PART_MIB" -lt "$BIG_MIB" ] || bench_die "--part-size must be smaller than --big-size (else the file is complete)"
case "$PIN" in
  none)  FIO_CPU=();                 DAEMON_ON=();;
  same)  FIO_CPU=(--cpus_allowed=0); DAEMON_ON=(taskset -c 0);;
  split) FIO_CPU=(--cpus_allowed=0); DAEMON_ON=(taskset -c 1);;
  *) bench_die "--pin must be none, same or split";;
esac
[ "$PIN" != split ] || [ "$(nproc)" -ge 2 ] || bench_die "--pin split needs at least 2 CPUs"

[ "$(id -u)" -eq 0 ] || bench_die "run as root (mounting over a directory, passthrough, drop_caches)"
[ -c /dev/fuse ] || bench_die "/dev/fuse is missing"
for t in fio bindfs python3 findmnt; do command -v $t >/dev/null || bench_die "$t is not installed"; done
case "$CM" in /*) ;; *) if [ -e "$CM" ]; then CM=$(realpath -- "$CM"); else CM="$ROOT/$CM"; fi;; esac
[ -x "$CM" ] || bench_die "no cachemax binary at $CM (make -C $ROOT all, or --cachemax PATH)"
[ -d "$PARENT" ] || bench_die "--dir $PARENT is not a directory"
[ -d "$CPARENT" ] || bench_die "--cache-dir $CPARENT is not a directory"

# ---- scratch space and cleanup ---------------------------------------------------------------
WORK_O=""; WORK_C=""; ORIGIN=""; RAW=""; BIND_MNT=""; CM_UP=0; CM_LOG=""
cleanup() {
  local rc=$? leftover=0
  trap - EXIT INT TERM HUP
  set +e
  if [ "$CM_UP" -eq 1 ] || { [ -n "$ORIGIN" ] && bench_is_mounted "$ORIGIN"; }; then
    "$CM" stop "$ORIGIN" --lazy >/dev/null 2>&1
    bench_umount "$ORIGIN" || { echo "$BENCH_NAME: WARNING: $ORIGIN is still mounted" >&2; leftover=1; }
  fi
  for m in "$BIND_MNT" "$RAW"; do
    [ -n "$m" ] || continue
    bench_umount "$m" || { echo "$BENCH_NAME: WARNING: $m is still mounted" >&2; leftover=1; }
  done
  if [ "$leftover" -eq 1 ]; then
    echo "$BENCH_NAME: left $WORK_O and $WORK_C in place because of the mount above" >&2
  elif [ "$KEEP" -eq 1 ]; then
    [ -n "$WORK_C" ] && rm -rf "$WORK_C/results" "$WORK_C/bindfs-mnt"
    [ -n "$WORK_O" ] && rmdir "$WORK_O/raw" 2>/dev/null
    [ -n "$WORK_O" ] && echo "$BENCH_NAME: kept (--keep): origin $ORIGIN, cache $WORK_C/cache"
  else
    [ -n "$WORK_O" ] && rm -rf "$WORK_O"
    [ -n "$WORK_C" ] && rm -rf "$WORK_C"
  fi
  if [ -n "$CM_LOG" ] && [ -f "$CM_LOG" ]; then
    if [ "$rc" -eq 0 ] && [ "$leftover" -eq 0 ] && [ "$KEEP" -eq 0 ]; then rm -f "$CM_LOG"
    else echo "$BENCH_NAME: cachemax log kept: $CM_LOG" >&2; fi
  fi
  exit "$rc"
}
bench_traps cleanup

WORK_O=$(mktemp -d "$(realpath -- "$PARENT")/cachemax-cb.XXXXXX")
WORK_C=$(mktemp -d "$(realpath -- "$CPARENT")/cachemax-cb.XXXXXX")
ORIGIN=$WORK_O/origin; RAW=$WORK_O/raw; CACHE=$WORK_C/cache
BIND_MNT=$WORK_C/bindfs-mnt; RES=$WORK_C/results
mkdir -p "$ORIGIN" "$RAW" "$BIND_MNT" "$RES" "$WORK_C/bin"
CM_SRC=$CM; CM=$WORK_C/bin/cachemax; cp -- "$CM_SRC" "$CM"

# ---- header ----------------------------------------------------------------------------------
echo "== CacheMax cache benchmark (issue #3)"
echo "   date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_header
echo "   origin:    $ORIGIN on $(bench_disk_of "$WORK_O")"
echo "   cache:     $CACHE on $(bench_disk_of "$WORK_C")"
echo "   cachemax:  $CM_SRC (built $(date -u -r "$CM_SRC" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$CM_SRC" | cut -c1-12); tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted src/ changes'))"
echo "   tools:     $(fio --version), bindfs $(bindfs --version 2>/dev/null | awk '{print $2; exit}')"
echo "   fio:       1 job, QD1, psync, direct=1; time-based runs ${RUNTIME} s; rounds $ROUNDS; CPU pinning $PIN"
echo "   files:     hot.dat ${HOT_MIB} MiB (a, b), miss.dat ${MISS_MIB} MiB (c), big.dat ${BIG_MIB} MiB (d),"
echo "              wr.dat and wr2.dat ${HOT_MIB} MiB (e, e2); random bytes"
echo "   partially cached (d): big.dat, ${BIG_MIB} MiB, of which the first ${PART_MIB} MiB were read once"
echo "              through the mount (so $((PART_MIB * 4)) of $((BIG_MIB * 4)) chunks of 256 KiB are cached, the object is"
echo "              not complete: user-space path); fio reads 4K at random offsets in [0, ${PART_MIB} MiB) only"

# ---- data, bind mount, start -----------------------------------------------------------------
echo "-- writing the test files"
head -c "$((HOT_MIB << 20))" /dev/urandom > "$ORIGIN/hot.dat"
head -c "$((HOT_MIB << 20))" /dev/urandom > "$ORIGIN/wr.dat"
head -c "$((HOT_MIB << 20))" /dev/urandom > "$ORIGIN/wr2.dat"
head -c "$((MISS_MIB << 20))" /dev/urandom > "$ORIGIN/miss.dat"
head -c "$((BIG_MIB << 20))" /dev/urandom > "$ORIGIN/big.dat"
sync
# the original, reachable behind the mount (private: the cachemax mount must not propagate here)
mount --bind "$ORIGIN" "$RAW"
mount --make-private "$RAW"

# c's path: a first read passes through to the original unless first reads fill (--first-read fill)
C_EXPECT=first-read
case " ${START_ARGS[*]+"${START_ARGS[*]}"} " in *" --first-read fill "*|*" --first-read=fill "*|*" --no-passthrough "*) C_EXPECT=miss;; esac
msg=$("${DAEMON_ON[@]}" "$CM" start "$ORIGIN" --cache "$CACHE" "${START_ARGS[@]+"${START_ARGS[@]}"}" 2>&1) || { echo "$msg" >&2; bench_die "cachemax start failed"; }
CM_UP=1
echo "   $msg"
[ "$(bench_fstype_of "$ORIGIN")" = fuse.cachemax ] || bench_die "$ORIGIN is not a fuse.cachemax mount after start"
"$CM" status --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["directories"]:
    if d["dir"] == sys.argv[1]:
        print("   status: health %s, passthrough %s%s, %s threads, transport %s%s" % (d.get("health"),
              "on" if d.get("passthrough") else "off",
              (" (" + d["passthrough_reason"] + ")") if d.get("passthrough_reason") else "", d.get("threads"),
              d.get("transport", "dev_fuse"),
              (" (" + d["transport_reason"] + ")") if d.get("transport_reason") else ""))
        print(d.get("log", ""), file=open(sys.argv[2], "w"))
' "$ORIGIN" "$RES/cm.log.path"
CM_LOG=$(cat "$RES/cm.log.path" 2>/dev/null || true)
python3 - "$CM" "$ORIGIN" <<'PY' || bench_die "passthrough is off: a and b would not measure passthrough"
import json, subprocess, sys
s = json.loads(subprocess.run([sys.argv[1], "stats", sys.argv[2], "--json"], capture_output=True, text=True).stdout)
sys.exit(0 if s.get("passthrough") and s.get("cache") else 1)
PY

stats() { "$CM" stats "$ORIGIN" --json > "$1"; }

# warm hot.dat: one full read through the mount, closed; then its copy must be complete
cat "$ORIGIN/hot.dat" > /dev/null
sleep 1
mapfile -t datas < <(find "$CACHE" -name '*.data')
[ "${#datas[@]}" -eq 1 ] || bench_die "expected exactly one cache object after warming hot.dat, found ${#datas[@]}"
COPY=${datas[0]}
alloc=$(( $(stat -c %b "$COPY") * $(stat -c %B "$COPY") ))
[ "$(stat -c %s "$COPY")" -eq $((HOT_MIB << 20)) ] && [ "$alloc" -ge $((HOT_MIB << 20)) ] \
  || bench_die "cache copy $COPY is not complete (size $(stat -c %s "$COPY"), allocated $alloc)"
cmp -s "$COPY" "$RAW/hot.dat" || bench_die "cache copy $COPY differs from the original hot.dat"
echo "   cache copy of hot.dat: $COPY (complete, identical to the original)"

# warm the leading region of big.dat (O_DIRECT: no readahead past the region)
stats "$RES/s0.json"
# (with --first-read origin the first pass goes to the original and fills nothing: O_DIRECT
# leaves nothing in its page cache to copy, which is dropped first, or the copy of the pages
# that writing big.dat left there would complete the object; the second pass fills)
bench_drop_caches
dd if="$ORIGIN/big.dat" of=/dev/null bs=1M count="$PART_MIB" iflag=direct status=none
sleep 0.2
dd if="$ORIGIN/big.dat" of=/dev/null bs=1M count="$PART_MIB" iflag=direct status=none
sleep 1
stats "$RES/s1.json"
python3 - "$RES/s0.json" "$RES/s1.json" "$((PART_MIB << 20))" <<'PY' || bench_die "big.dat's leading region was not filled as expected"
import json, sys
a, b = (json.load(open(f))["stats"]["counters"] for f in sys.argv[1:3])
want = int(sys.argv[3]); got = b["fill_bytes"] - a["fill_bytes"]
print("   big.dat: first %d MiB read twice through the mount, %d MiB filled into the cache" % (want >> 20, got >> 20))
sys.exit(0 if got >= want else 1)
PY

# ---- helpers ---------------------------------------------------------------------------------
# fio_run CASE SIDE ROUND FILE RW BS [fio args...]: one fio run, a progress line, JSON kept
fio_run() {
  local c=$1 side=$2 r=$3 file=$4 rw=$5 bs=$6; shift 6
  local dir=read out=$RES/$c.$side.r$r.json
  case $rw in *write*) dir="write";; esac
  printf '  r%-2s %-3s %-7s ' "$r" "$c" "$side"
  bench_fio_or_die "$out" "$RES/fio.log" --name="$c-$side" --filename="$file" --rw="$rw" --bs="$bs" \
    --direct=1 --ioengine=psync --iodepth=1 --numjobs=1 "${FIO_CPU[@]}" "$@"
  bench_fio_line "$out" "$dir"
}
TIMED=(--time_based --runtime="$RUNTIME")

# path_check CASE ROUND BEFORE AFTER EXPECT: which path served the run, from the counters
path_check() {
  python3 - "$@" <<'PY'
import json, sys
c, r, f0, f1, expect = sys.argv[1:6]
s0, s1 = (json.load(open(f))["stats"] for f in (f0, f1))
d = {k: s1["counters"][k] - s0["counters"][k] for k in s1["counters"]}
lat = s1["latency_us"]
parts = ["requests %d" % d["requests"], "pt-opens cache %d / origin %d" % (d["passthrough_opens_cache"], d["passthrough_opens_origin"]),
         "us-reads cache %d / origin %d" % (d["read_ops_cache"], d["read_ops_origin"]),
         "writes %d" % d["write_ops"], "fills %d MiB" % (d["fill_bytes"] >> 20)]
if "readahead_bytes" in d:
    parts.append("read-ahead %d MiB" % (d["readahead_bytes"] >> 20))
ok = {"passthrough-cache": d["passthrough_opens_cache"] > 0 and d["read_ops_cache"] + d["read_ops_origin"] == 0,
      "miss": d["read_ops_origin"] > 0,
      "first-read": d.get("first_reads", 0) > 0 and d["passthrough_opens_origin"] > 0 and d["read_ops_origin"] == 0,
      "userspace-hit": d["read_ops_cache"] > 0 and d["read_ops_origin"] == 0 and d["passthrough_opens_cache"] == 0,
      "passthrough-origin": d["passthrough_opens_origin"] > 0 and d["write_ops"] == 0,
      "userspace-write": d["write_ops"] > 0}[expect]
extra = ""
if expect == "userspace-hit" and d["read_ops_cache"]:
    extra = "; daemon read_cache mean %.1f us (cumulative)" % lat["read_cache"]["mean"]
if expect == "miss" and d["read_ops_origin"]:
    extra = "; daemon read_origin mean %.1f us (cumulative)" % lat["read_origin"]["mean"]
if expect == "userspace-write" and d["write_ops"]:
    extra = "; daemon write mean %.1f us (cumulative)" % lat["write"]["mean"]
print("               path: %s%s -> %s" % (", ".join(parts), extra, expect if ok else "WRONG PATH (expected %s)" % expect))
json.dump(dict(case=c, round=int(r), expect=expect, ok=ok, delta=d), open(f1 + ".path", "w"))
PY
}

# mount_run CASE ROUND EXPECT FILE RW BS [fio args...]: fio through the mount, with path check
mount_run() {
  local c=$1 r=$2 expect=$3; shift 3
  stats "$RES/$c.r$r.s0.json"
  fio_run "$c" mount "$r" "$@"
  stats "$RES/$c.r$r.s1.json"
  path_check "$c" "$r" "$RES/$c.r$r.s0.json" "$RES/$c.r$r.s1.json" "$expect"
}

# ---- rounds ----------------------------------------------------------------------------------
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS (load $(bench_load1))"
  odd=$(( r % 2 ))

  # a, b: fully cached file through the mount vs its cache copy (both on tmpfs: no cache drop
  # needed; tmpfs pages are the data)
  for c in a b; do
    want "$c" || continue
    if [ "$c" = a ]; then args=(randread 4k --readonly --size="${HOT_MIB}M" "${TIMED[@]}")
    else args=(read 1m --readonly --size="${HOT_MIB}M" "${TIMED[@]}"); fi
    if [ "$odd" = 1 ]; then
      mount_run "$c" "$r" passthrough-cache "$ORIGIN/hot.dat" "${args[@]}"
      fio_run "$c" copy "$r" "$COPY" "${args[@]}"
    else
      fio_run "$c" copy "$r" "$COPY" "${args[@]}"
      mount_run "$c" "$r" passthrough-cache "$ORIGIN/hot.dat" "${args[@]}"
    fi
  done

  # c: one pass of an uncached file, evicted and page cache dropped before each side
  args=(read 1m --readonly --size="${MISS_MIB}M")
  c_mount() { "$CM" evict "$ORIGIN" "$ORIGIN/miss.dat" >/dev/null; bench_drop_caches
              mount_run c "$r" "$C_EXPECT" "$ORIGIN/miss.dat" "${args[@]}"; }
  c_origin() { bench_drop_caches; fio_run c origin "$r" "$RAW/miss.dat" "${args[@]}"; }
  if want c; then
    if [ "$odd" = 1 ]; then c_mount; c_origin; else c_origin; c_mount; fi
    "$CM" evict "$ORIGIN" "$ORIGIN/miss.dat" >/dev/null   # give the tmpfs space back
  fi

  # d: partially cached big.dat, reads in its cached region: user space vs bindfs
  args=(randread 4k --readonly --offset=0 --size="${PART_MIB}M" "${TIMED[@]}")
  d_mount() { bench_drop_caches; mount_run d "$r" userspace-hit "$ORIGIN/big.dat" "${args[@]}"; }
  d_bindfs() {
    "${DAEMON_ON[@]}" bindfs "$RAW" "$BIND_MNT" || bench_die "bindfs $RAW $BIND_MNT failed"
    bench_is_mounted "$BIND_MNT" || bench_die "bindfs returned but $BIND_MNT is not mounted"
    bench_drop_caches
    fio_run d bindfs "$r" "$BIND_MNT/big.dat" "${args[@]}"
    bench_umount "$BIND_MNT" || bench_die "cannot unmount $BIND_MNT"
  }
  if want d; then if [ "$odd" = 1 ]; then d_mount; d_bindfs; else d_bindfs; d_mount; fi; fi

  # e: random writes, file never read through the mount (open passes through to the original)
  args=(randwrite 4k --size="${HOT_MIB}M" "${TIMED[@]}")
  e_mount() { bench_drop_caches; mount_run e "$r" passthrough-origin "$ORIGIN/wr.dat" "${args[@]}"; }
  e_origin() { bench_drop_caches; fio_run e origin "$r" "$RAW/wr.dat" "${args[@]}"; }
  if want e; then if [ "$odd" = 1 ]; then e_mount; e_origin; else e_origin; e_mount; fi; fi

  # e2: random writes to a cached file (user-space write-through); re-read before each mount
  # run, because the origin run behind the mount's back resets its cache copy
  e2_mount() { cat "$ORIGIN/wr2.dat" > /dev/null; sleep 0.5; bench_drop_caches
               mount_run e2 "$r" userspace-write "$ORIGIN/wr2.dat" "${args[@]}"; }
  e2_origin() { bench_drop_caches; fio_run e2 origin "$r" "$RAW/wr2.dat" "${args[@]}"; }
  if want e2; then if [ "$odd" = 1 ]; then e2_mount; e2_origin; else e2_origin; e2_mount; fi; fi
done
sync
echo "   load average at end $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$CM_LOG" ] && [ -f "$CM_LOG" ]; then
  warn=$(grep -v ': info: ' "$CM_LOG" | tail -n 20 || true)
  [ -z "$warn" ] || { echo "== cachemax log ($CM_LOG), non-info lines:"; echo "$warn" | sed 's/^/  /'; }
fi

# ---- summary ---------------------------------------------------------------------------------
echo
python3 - "$RES" "$ROUNDS" "$JSON_OUT" "$PART_MIB" "$BIG_MIB" "$ONLY" <<'PY'
import glob, json, os, statistics, sys
res, rounds, json_out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
part, big = int(sys.argv[4]), int(sys.argv[5])
only = sys.argv[6].split(",")
rows = [  # case, label, numerator side, denominator side, metric, target
    ("a", "4K rand read, fully cached: mount / cache copy", "mount", "copy", "iops", 0.90),
    ("b", "1M seq read, fully cached: mount / cache copy", "mount", "copy", "mbs", 0.90),
    ("c", "1M seq first read (miss): mount / origin", "mount", "origin", "mbs", 0.85),
    ("d", "4K rand read, partially cached: mount / bindfs", "mount", "bindfs", "iops", 3.0),
    ("e", "4K rand write, uncached file: mount / origin", "mount", "origin", "iops", 0.85),
    ("e2", "4K rand write, cached file: mount / origin (info)", "mount", "origin", "iops", None),
]
def load(c, side, r):
    j = json.load(open(os.path.join(res, f"{c}.{side}.r{r}.json")))["jobs"][0]
    d = j["write"] if j["write"]["io_bytes"] else j["read"]
    return dict(mbs=d["bw_bytes"] / 1e6, iops=d["iops"], lat=d["lat_ns"]["mean"] / 1e3,
                p99=d.get("clat_ns", {}).get("percentile", {}).get("99.000000", 0) / 1e3)
def path_ok(c, r):
    try: return json.load(open(os.path.join(res, f"{c}.r{r}.s1.json.path")))["ok"]
    except OSError: return None
out = {"rounds": rounds, "partially_cached": f"{big} MiB file, first {part} MiB read once through the mount; reads in [0, {part} MiB)", "ratios": {}}
unit = {"iops": "IOPS", "mbs": "MB/s"}
med = statistics.median
def cell(v): return f"{med(v):.2f}" + (f" ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else "")
print("Ratios" + (f" (median (min-max) of {rounds} rounds; numerator and denominator are medians)" if rounds > 1 else ""))
print(f"{'':3}{'what':<50}{'numerator':>24}{'denominator':>24}{'ratio':>20}{'target':>8}")
for c, label, a, b, m, goal in rows:
    if c not in only: continue
    num = [load(c, a, r) for r in range(1, rounds + 1)]
    den = [load(c, b, r) for r in range(1, rounds + 1)]
    rat = [x[m] / y[m] if y[m] else float("nan") for x, y in zip(num, den)]
    wrong = [r for r in range(1, rounds + 1) if path_ok(c, r) is False]
    def side(v): return f"{med(x[m] for x in v):.{0 if m == 'iops' else 1}f} {unit[m]} {med(x['lat'] for x in v):.1f}us"
    verdict = "" if goal is None else ("PASS" if med(rat) >= goal else "MISS")
    print(f"{c:<3}{label:<50}{side(num):>24}{side(den):>24}{cell(rat):>20}{('>= %.2f' % goal) if goal else 'info':>8} {verdict}"
          + (f"  WRONG PATH in round(s) {wrong}" if wrong else ""))
    out["ratios"][c] = dict(what=label, metric=m, target=goal, verdict=verdict or None,
                            ratio_median=med(rat), ratio_min=min(rat), ratio_max=max(rat), ratios=rat,
                            numerator=num, denominator=den, wrong_path_rounds=wrong)
print("   (a, b: numerator = hot.dat through the mount, denominator = its cache copy read directly;"
      " c, e, e2: denominator = the original file behind the mount; latency = fio mean per I/O)")
if json_out:
    json.dump(out, open(json_out, "w"), indent=1)
    print(f"   JSON: {json_out}")
PY
