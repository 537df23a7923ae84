#!/usr/bin/env bash
# bench/compare.sh — CacheMax against the raw cache device, the original directory and other
# FUSE caches/pass-throughs, on the same fio workloads (issue #4). Run by hand, as root:
#
#     bench/compare.sh [--rounds N] [--runtime SEC] [--size MiB] [--pin none|same|split]
#                      [--dir PARENT] [--cache-dir PARENT] [--cachemax PATH] [--only LIST]
#
#   --rounds N        repeat every target N times, interleaved (default 1); figures are medians
#   --runtime SEC     seconds per fio run (default 5)
#   --size MiB        test file size (default 256)
#   --pin MODE        none (default), same (fio and FUSE daemons on CPU 0), split (fio on CPU 0,
#                     daemons on CPU 1)
#   --dir PARENT      where the origin directory is made (default /var/tmp: the real disk)
#   --cache-dir PARENT where the cache device directory is made (default /dev/shm: tmpfs)
#   --cachemax PATH   the binary (default build/cachemax under the repository root)
#   --only LIST       comma-separated subset of targets (names below), e.g. raw,cachemax
#
# WORKLOADS (fio, 1 job, O_DIRECT, time-based --runtime s, on one --size MiB file of random bytes)
#   SEQ1M-Q1-read    1 MiB sequential read,  QD1,  psync
#   SEQ1M-Q1-write   1 MiB sequential write, QD1,  psync
#   RND4K-Q1-read    4 KiB random read,      QD1,  psync
#   RND4K-Q1-write   4 KiB random write,     QD1,  psync
#   RND4K-Q32-read   4 KiB random read,      QD32, io_uring (libaio if io_uring is unavailable)
#   Per target, the three reads run first, then the two writes. The page cache is dropped
#   (sync; echo 3 > drop_caches) before every run, so targets that read the origin start cold
#   (FUSE targets that do not forward O_DIRECT to the origin then warm its page cache during
#   the run; tmpfs pages are not dropped).
#
# TARGETS (each mounted only during its own runs)
#   raw-cache  the cache device itself: a directory on --cache-dir (tmpfs)         = 1.00 by definition
#   origin     the original directory on --dir (the disk), nothing mounted
#   cachemax   `cachemax start ORIGIN --cache CACHEDIR` (in place), warm: the file is read fully
#              once through the mount before, so reads pass through to the complete cache copy;
#              writes to that cached file are write-through in user space (origin, then copy)
#   bindfs     `bindfs -f ORIGIN MNT` (libfuse pass-through, no cache)
#   mergerfs   `mergerfs -f ORIGIN MNT` (one branch, default options)
#   rclone     `rclone mount :local:ORIGIN MNT --vfs-cache-mode full --cache-dir CACHEDIR`
#              (cache on --cache-dir), warm like cachemax (one full read before)
#   A target whose tool is missing prints "skipped: X not installed"; a run that fails (e.g. a
#   file system refusing O_DIRECT) is shown as "failed" and the others go on.
#
# OUTPUT FORMAT (paste-ready; the table is also in docs/PERFORMANCE.md)
#   A header (date, machine, disk, versions), one progress line per fio run, then a Markdown
#   table, one row per workload and target:
#     | workload | target | MB/s | IOPS | lat µs | × raw |
#   MB/s = 10^6 bytes/s; IOPS = I/Os per second; lat µs = fio's mean total latency per I/O;
#   × raw = this target's IOPS ÷ raw-cache's IOPS on the same workload in the same run (equal
#   to the MB/s ratio). With --rounds N > 1: medians over rounds, and × raw is the median of the
#   per-round ratios. "failed" / "skipped" rows have no figures.
#   Exit status: 0 when the run completed, non-zero on an error.
#
# SAFETY
#   Everything created (mounts, the origin and cache directories, FUSE daemons started in the
#   foreground by this script) is removed on exit, error and Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=compare
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

RUNTIME=5; ROUNDS=1; SIZE_MIB=256; PIN=none
PARENT=/var/tmp; CPARENT=/dev/shm; CM="$ROOT/build/cachemax"
ALL_TARGETS="raw-cache origin cachemax bindfs mergerfs rclone"; ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime)   [ $# -ge 2 ] || bench_die "--runtime needs a value"; RUNTIME=$2; shift 2;;
    --rounds)    [ $# -ge 2 ] || bench_die "--rounds needs a value"; ROUNDS=$2; shift 2;;
    --size)      [ $# -ge 2 ] || bench_die "--size needs MiB"; SIZE_MIB=$2; shift 2;;
    --pin)       [ $# -ge 2 ] || bench_die "--pin needs none, same or split"; PIN=$2; shift 2;;
    --dir)       [ $# -ge 2 ] || bench_die "--dir needs a path"; PARENT=$2; shift 2;;
    --cache-dir) [ $# -ge 2 ] || bench_die "--cache-dir needs a path"; CPARENT=$2; shift 2;;
    --cachemax)  [ $# -ge 2 ] || bench_die "--cachemax needs a path"; CM=$2; shift 2;;
    --only)      [ $# -ge 2 ] || bench_die "--only needs a list"; ONLY=$2; shift 2;;
    -h|--help)   bench_usage "${BASH_SOURCE[0]}"; exit 0;;
    *) bench_die "unknown argument '$1' (see --help)";;
  esac
done
for v in RUNTIME ROUNDS SIZE_MIB; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || bench_die "${v,,} must be a whole number >= 1"
done
case "$PIN" in
  none)  FIO_CPU=();                 DAEMON_ON=();;
  same)  FIO_CPU=(--cpus_allowed=0); DAEMON_ON=(taskset -c 0);;
  split) FIO_CPU=(--cpus_allowed=0); DAEMON_ON=(taskset -c 1);;
  *) bench_die "--pin must be none, same or split";;
esac
TARGETS=$ALL_TARGETS
if [ -n "$ONLY" ]; then
  TARGETS=""
  for t in ${ONLY//,/ }; do
    case " $ALL_TARGETS " in *" $t "*) TARGETS="$TARGETS $t";; *) bench_die "--only: unknown target '$t' ($ALL_TARGETS)";; esac
  done
  case " $TARGETS " in *" raw-cache "*) ;; *) TARGETS="raw-cache$TARGETS";; esac   # the reference
fi

[ "$(id -u)" -eq 0 ] || bench_die "run as root (mounts, passthrough, drop_caches)"
[ -c /dev/fuse ] || bench_die "/dev/fuse is missing"
for t in fio python3 findmnt; do command -v $t >/dev/null || bench_die "$t is not installed"; done
case "$CM" in /*) ;; *) if [ -e "$CM" ]; then CM=$(realpath -- "$CM"); else CM="$ROOT/$CM"; fi;; esac
[ -d "$PARENT" ] || bench_die "--dir $PARENT is not a directory"
[ -d "$CPARENT" ] || bench_die "--cache-dir $CPARENT is not a directory"

# ---- scratch space and cleanup ---------------------------------------------------------------
WORK_O=""; WORK_C=""; ORIGIN=""; MNT=""; CM_UP=0; FG_PID=""; CM_LOG=""
stop_fg() {   # unmount MNT and reap the foreground FUSE daemon we started
  if [ -n "$MNT" ] && bench_is_mounted "$MNT"; then bench_umount "$MNT" || return 1; fi
  if [ -n "$FG_PID" ]; then
    local _
    for _ in $(seq 1 50); do kill -0 "$FG_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$FG_PID" 2>/dev/null && { kill "$FG_PID" 2>/dev/null; sleep 1; kill -9 "$FG_PID" 2>/dev/null; }
    wait "$FG_PID" 2>/dev/null || true
    FG_PID=""
  fi
  return 0
}
cleanup() {
  local rc=$? leftover=0
  trap - EXIT INT TERM HUP
  set +e
  if [ "$CM_UP" -eq 1 ] || { [ -n "$ORIGIN" ] && bench_is_mounted "$ORIGIN"; }; then
    "$CM" stop "$ORIGIN" --lazy >/dev/null 2>&1
    bench_umount "$ORIGIN" || { echo "$BENCH_NAME: WARNING: $ORIGIN is still mounted" >&2; leftover=1; }
  fi
  stop_fg || { echo "$BENCH_NAME: WARNING: $MNT is still mounted" >&2; leftover=1; }
  if [ "$leftover" -eq 1 ]; then
    echo "$BENCH_NAME: left $WORK_O and $WORK_C in place because of the mount above" >&2
  else
    [ -n "$WORK_O" ] && rm -rf "$WORK_O"
    [ -n "$WORK_C" ] && rm -rf "$WORK_C"
  fi
  if [ -n "$CM_LOG" ] && [ -f "$CM_LOG" ]; then
    if [ "$rc" -eq 0 ] && [ "$leftover" -eq 0 ]; then rm -f "$CM_LOG"
    else echo "$BENCH_NAME: cachemax log kept: $CM_LOG" >&2; fi
  fi
  exit "$rc"
}
bench_traps cleanup

WORK_O=$(mktemp -d "$(realpath -- "$PARENT")/cachemax-cmp.XXXXXX")
WORK_C=$(mktemp -d "$(realpath -- "$CPARENT")/cachemax-cmp.XXXXXX")
ORIGIN=$WORK_O/origin; RAWDIR=$WORK_C/raw; MNT=$WORK_C/mnt; RES=$WORK_C/results
mkdir -p "$ORIGIN" "$RAWDIR" "$MNT" "$RES" "$WORK_C/bin"
if [ -x "$CM" ]; then CM_SRC=$CM; CM=$WORK_C/bin/cachemax; cp -- "$CM_SRC" "$CM"; else CM_SRC=""; fi
FILE=bench.dat

# ---- which targets can run -------------------------------------------------------------------
declare -A SKIP=()
[ -n "$CM_SRC" ] || SKIP[cachemax]="no cachemax binary (make -C $ROOT all)"
command -v bindfs >/dev/null   || SKIP[bindfs]="bindfs not installed"
command -v mergerfs >/dev/null || SKIP[mergerfs]="mergerfs not installed"
command -v rclone >/dev/null   || SKIP[rclone]="rclone not installed"

head -c "$((SIZE_MIB << 20))" /dev/urandom > "$RAWDIR/$FILE"
cp "$RAWDIR/$FILE" "$ORIGIN/$FILE"
sync
Q32_ENGINE=""
for e in io_uring libaio; do
  if fio --name=probe --filename="$RAWDIR/$FILE" --readonly --rw=randread --bs=4k --direct=1 \
         --ioengine=$e --iodepth=4 --size=1M --io_size=64k >/dev/null 2>&1; then Q32_ENGINE=$e; break; fi
done

echo "== CacheMax comparison (issue #4)"
echo "   date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_header
echo "   origin:    $ORIGIN on $(bench_disk_of "$WORK_O")"
echo "   cache dev: $WORK_C on $(bench_disk_of "$WORK_C")"
[ -n "$CM_SRC" ] && echo "   cachemax:  $CM_SRC (built $(date -u -r "$CM_SRC" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$CM_SRC" | cut -c1-12); tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted src/ changes'))"
echo "   tools:     $(fio --version)$(command -v bindfs >/dev/null && echo ", bindfs $(bindfs --version 2>/dev/null | awk '{print $2; exit}')")$(command -v mergerfs >/dev/null && echo ", mergerfs $(mergerfs --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n1)")$(command -v rclone >/dev/null && echo ", rclone $(rclone version 2>/dev/null | awk 'NR == 1 { print $2 }')")"
echo "   fio:       1 job, direct=1, time-based ${RUNTIME} s, file ${SIZE_MIB} MiB; Q1: psync; Q32: ${Q32_ENGINE:-none available (skipped)}"
echo "   rounds:    $ROUNDS; CPU pinning: $PIN; page cache dropped before every run"
for t in $TARGETS; do [ -z "${SKIP[$t]:-}" ] || echo "   skipped: ${SKIP[$t]} (target $t)"; done

# ---- targets ---------------------------------------------------------------------------------
# target_up T: mount T if needed and print the directory to use in TDIR
target_up() {
  case $1 in
    raw-cache) TDIR=$RAWDIR;;
    origin)    TDIR=$ORIGIN;;
    cachemax)
      local msg
      msg=$("${DAEMON_ON[@]}" "$CM" start "$ORIGIN" --cache "$WORK_C/cm-cache" 2>&1) || { echo "$msg" >&2; return 1; }
      CM_UP=1; TDIR=$ORIGIN
      [ "$(bench_fstype_of "$ORIGIN")" = fuse.cachemax ] || return 1
      [ -n "$CM_LOG" ] || CM_LOG=$("$CM" status --json | python3 -c '
import json, sys
print(next((d.get("log", "") for d in json.load(sys.stdin)["directories"] if d["dir"] == sys.argv[1]), ""))' "$ORIGIN")
      cat "$ORIGIN/$FILE" > /dev/null; sleep 1                     # warm: the copy is complete
      "$CM" stats "$ORIGIN" --json > "$RES/cm.s0.json";;
    bindfs)
      "${DAEMON_ON[@]}" bindfs -f "$ORIGIN" "$MNT" >"$RES/bindfs.log" 2>&1 & FG_PID=$!
      TDIR=$MNT; bench_wait_mounted "$MNT" 'fuse*' 10;;
    mergerfs)
      "${DAEMON_ON[@]}" mergerfs -f "$ORIGIN" "$MNT" >"$RES/mergerfs.log" 2>&1 & FG_PID=$!
      TDIR=$MNT; bench_wait_mounted "$MNT" 'fuse*' 10;;
    rclone)
      "${DAEMON_ON[@]}" rclone mount ":local:$ORIGIN" "$MNT" --vfs-cache-mode full \
        --cache-dir "$WORK_C/rclone-cache" --config /dev/null >"$RES/rclone.log" 2>&1 & FG_PID=$!
      TDIR=$MNT
      bench_wait_mounted "$MNT" 'fuse*' 20 || return 1
      cat "$MNT/$FILE" > /dev/null; sleep 1;;                     # warm its VFS cache
  esac
}
target_down() {
  case $1 in
    cachemax)
      "$CM" stats "$ORIGIN" --json > "$RES/cm.s1.json"
      python3 - "$RES/cm.s0.json" "$RES/cm.s1.json" <<'PY'
import json, sys
a, b = (json.load(open(f))["stats"]["counters"] for f in sys.argv[1:3])
d = {k: b[k] - a[k] for k in b}
print("               cachemax path: passthrough opens to the cache copy %d, to the original %d; user-space reads"
      " cache %d / origin %d; user-space writes %d" % (d["passthrough_opens_cache"], d["passthrough_opens_origin"],
      d["read_ops_cache"], d["read_ops_origin"], d["write_ops"]))
PY
      "$CM" stop "$ORIGIN" >/dev/null || { "$CM" stop "$ORIGIN" --lazy >/dev/null; }
      bench_is_mounted "$ORIGIN" && return 1
      CM_UP=0;;
    bindfs|mergerfs|rclone) stop_fg;;
  esac
  return 0
}

WORKLOADS="SEQ1M-Q1-read RND4K-Q1-read RND4K-Q32-read SEQ1M-Q1-write RND4K-Q1-write"
run_wl() {   # run_wl TARGET DIR WORKLOAD ROUND
  local t=$1 dir=$2 w=$3 r=$4 args rw out=$RES/$1.$3.r$4.json
  case $w in
    SEQ1M-Q1-read)  args=(--rw=read      --bs=1m --ioengine=psync --iodepth=1);;
    SEQ1M-Q1-write) args=(--rw=write     --bs=1m --ioengine=psync --iodepth=1);;
    RND4K-Q1-read)  args=(--rw=randread  --bs=4k --ioengine=psync --iodepth=1);;
    RND4K-Q1-write) args=(--rw=randwrite --bs=4k --ioengine=psync --iodepth=1);;
    RND4K-Q32-read) [ -n "$Q32_ENGINE" ] || { echo "skipped" > "$out"; return 0; }
                    args=(--rw=randread  --bs=4k --ioengine="$Q32_ENGINE" --iodepth=32);;
  esac
  case $w in *read) rw="read"; args+=(--readonly);; *) rw="write";; esac
  printf '  r%-2s %-10s %-15s ' "$r" "$t" "$w"
  bench_drop_caches
  if fio --name="$w" --filename="$dir/$FILE" "${args[@]}" --direct=1 --numjobs=1 --size="${SIZE_MIB}M" \
         --time_based --runtime="$RUNTIME" "${FIO_CPU[@]}" --output-format=json --output="$out" \
         >"$RES/fio.log" 2>&1 && bench_fio_line "$out" "$rw" 2>/dev/null; then
    :
  else
    echo "failed: $(grep -m1 -iE 'error|fio:' "$RES/fio.log" || echo 'see fio output')"
    echo "failed" > "$out"
  fi
}

for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS (load $(bench_load1))"
  for t in $TARGETS; do
    if [ -n "${SKIP[$t]:-}" ]; then
      for w in $WORKLOADS; do echo "skipped" > "$RES/$t.$w.r$r.json"; done
      continue
    fi
    echo "-- $t"
    # the same file for every target: a previous target's writes may have changed or cut it
    # (rclone uploads its cache copy after close and may be stopped mid-way)
    [ "$t" = raw-cache ] || { cp -- "$RAWDIR/$FILE" "$ORIGIN/$FILE"; sync; }
    if ! target_up "$t"; then
      echo "   $t: mount failed"; tail -n 5 "$RES/$t.log" 2>/dev/null | sed 's/^/   /'
      for w in $WORKLOADS; do echo "failed" > "$RES/$t.$w.r$r.json"; done
      target_down "$t" || bench_die "cannot unmount $t"
      continue
    fi
    for w in $WORKLOADS; do run_wl "$t" "$TDIR" "$w" "$r"; done
    target_down "$t" || bench_die "cannot unmount $t"
  done
done
echo "   load average at end $(cut -d' ' -f1-3 /proc/loadavg)"

echo
python3 - "$RES" "$ROUNDS" "$WORKLOADS" "$TARGETS" <<'PY'
import json, os, statistics, sys
res, rounds = sys.argv[1], int(sys.argv[2])
workloads = sys.argv[3].split()
order = ["SEQ1M-Q1-read", "SEQ1M-Q1-write", "RND4K-Q1-read", "RND4K-Q1-write", "RND4K-Q32-read"]
workloads = [w for w in order if w in workloads]
targets = sys.argv[4].split()
def load(t, w, r):
    p = os.path.join(res, f"{t}.{w}.r{r}.json")
    try: j = json.load(open(p))["jobs"][0]
    except (ValueError, OSError):
        return open(p).read().strip() or "failed"
    d = j["write"] if w.endswith("write") else j["read"]
    return dict(mbs=d["bw_bytes"] / 1e6, iops=d["iops"], lat=d["lat_ns"]["mean"] / 1e3)
med = statistics.median
print("| workload | target | MB/s | IOPS | lat µs | × raw |")
print("|---|---|---:|---:|---:|---:|")
for w in workloads:
    raw = [load("raw-cache", w, r) for r in range(1, rounds + 1)]
    for t in targets:
        v = [load(t, w, r) for r in range(1, rounds + 1)]
        ok = [x for x in v if isinstance(x, dict)]
        if not ok:
            print(f"| {w} | {t} | {v[0]} | | | |"); continue
        rat = [x["iops"] / y["iops"] for x, y in zip(v, raw) if isinstance(x, dict) and isinstance(y, dict) and y["iops"]]
        rs = (f"{med(rat):.2f}" + (f" ({min(rat):.2f}-{max(rat):.2f})" if len(rat) > 1 else "")) if rat else "-"
        note = "" if len(ok) == len(v) else f" ({len(v) - len(ok)} failed)"
        print(f"| {w} | {t}{note} | {med(x['mbs'] for x in ok):.1f} | {med(x['iops'] for x in ok):.0f} | "
              f"{med(x['lat'] for x in ok):.1f} | {rs} |")
print()
print("(MB/s = 10^6 B/s; lat = fio mean total latency per I/O; × raw = IOPS ÷ raw-cache IOPS, same workload, same round"
      + (f"; medians of {rounds} rounds, ratio range in parentheses" if rounds > 1 else "") + ")")
PY
