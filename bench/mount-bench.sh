#!/usr/bin/env bash
# bench/mount-bench.sh — read throughput and latency of the CacheMax mount against the directory
# it accelerates and against bindfs, a libfuse-based pass-through peer. Run by hand, as root:
#
#     bench/mount-bench.sh [--runtime N] [--size MiB] [--rounds N] [--pin none|same|split]
#                          [--dir PATH] [--cachemax PATH]
#
#   --runtime N      seconds per fio run (default 5)
#   --size MiB       size of the test file (default 64)
#   --rounds N       repeat the whole target sequence N times, report medians (default 1)
#   --pin MODE       CPU placement: none (default, the scheduler decides), same (fio and the
#                    FUSE daemon both on CPU 0), split (fio on CPU 0, the daemon on CPU 1)
#   --dir PATH       origin directory (default: a fresh directory under /dev/shm, removed after)
#   --cachemax PATH  the binary (default build/cachemax under the repository root)
#
# WHAT IT MEASURES
#   One test file (--size MiB, default 64, random bytes) in an origin directory (--dir, default a
#   fresh directory under /dev/shm, i.e. tmpfs) is read with fio, one job, QD1, ioengine=psync,
#   --runtime seconds per workload (default 5), read-only:
#     4K-rand-direct  4 KiB random reads, O_DIRECT (direct=1)
#     1M-seq-direct   1 MiB sequential reads, O_DIRECT (direct=1)
#     4K-rand-buf     4 KiB random reads through the page cache (direct=0, invalidate=0). The
#                     origin's tmpfs pages are always cached; through a user-space FUSE path the
#                     mount's own page cache starts empty (an open without FOPEN_KEEP_CACHE drops
#                     it) and fills during the run, so this row mixes daemon round trips and
#                     page-cache hits: the faster the daemon, the sooner reads become hits.
#                     (fio's invalidate=1 is not used: with time_based it re-drops the cache on
#                     every pass over the file, which only hurts FUSE user-space targets.)
#   through four targets, one after another, so only one is mounted at a time:
#     direct          the origin directory itself, nothing mounted
#     cm-passthrough  `cachemax start DIR` (in place, same path), kernel FUSE passthrough
#     cm-userspace    `cachemax start DIR --no-passthrough`: every read served by the daemon
#     bindfs          `bindfs DIR MNT` (default options: libfuse, one single-threaded request
#                     loop, O_DIRECT not forwarded to the origin, like CacheMax), read through MNT
#   Each CacheMax target is warmed first (one read of the file fills its cache copy, on the same
#   tmpfs), so cm-passthrough measures passthrough to the complete cache copy and cm-userspace
#   reads served by the daemon from it: with origin and cache on the same tmpfs, this is the
#   cost of the FUSE layer itself. (bench for issue #3 puts the origin on a real disk.)
#
# HOW TO READ THE OUTPUT
#   Table 1: one row per workload and target. MB/s is 10^6 bytes/s, IOPS is read operations per
#   second, lat-mean and lat-p99 are fio's total per-read latency (submission to completion) in
#   microseconds. Higher MB/s and IOPS are better, lower latency is better.
#   Table 2: ratios of IOPS per workload (same as MB/s ratios: block size is fixed per workload):
#     pt/direct   cm-passthrough ÷ direct     1.00 = passthrough costs nothing
#     us/direct   cm-userspace ÷ direct       the price of serving reads in user space
#     us/bindfs   cm-userspace ÷ bindfs       >1 = CacheMax's own FUSE layer beats libfuse/bindfs
#   Targets (from the issue), each PASS or MISS:
#     passthrough >= 0.90 x direct on 4K-rand-direct and on 1M-seq-direct
#     user-space  >= 2.00 x bindfs on 4K random reads (4K-rand-direct)
#   With --rounds N > 1 every number is the median over the rounds, and each ratio is computed
#   within a round (both sides measured minutes apart at most) and shown as median (min-max).
#   The progress lines above the tables are the raw per-round numbers (MB/s, IOPS, mean µs).
#   Exit status: 0 when the runs completed (whatever PASS/MISS says), non-zero on an error.
#
#   NOISE: user-space FUSE latency at QD1 is dominated by thread wake-ups (fio -> daemon -> fio),
#   and on a VM mostly by WHERE the daemon thread runs: on fio's CPU a round trip took ~11 µs,
#   on the other (idle) vCPU ~55 µs, for CacheMax and bindfs alike. With --pin none the scheduler
#   decides, so those rows swing 2-4x with the number of daemon threads and with whatever else
#   runs on the machine. The header prints the load average and warns when it is >= 0.5. Use
#   --pin same and --pin split to see both ends, compare runs made under the same load, and use
#   --rounds 3 before trusting a PASS/MISS near its threshold.
#
# SAFETY
#   The script always stops CacheMax (`cachemax stop DIR --lazy`), lazily unmounts bindfs and
#   removes what it created (also on failure and Ctrl-C). With --dir, an existing directory is
#   kept and only the test file is removed; a missing one is created and removed again.
#   The cachemax binary is copied to the scratch directory first, so a rebuild during the run
#   cannot mix versions. The daemon's log (/run/cachemax/<hash>.log) of the default scratch origin
#   is removed after a successful run and kept, with its path printed, after a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIME=5
SIZE_MIB=64
ROUNDS=1
PIN=none
ORIGIN=""
CM="$ROOT/build/cachemax"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "mount-bench: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --runtime)  [ $# -ge 2 ] || die "--runtime needs a value"; RUNTIME=$2; shift 2;;
    --size)     [ $# -ge 2 ] || die "--size needs a value (MiB)"; SIZE_MIB=$2; shift 2;;
    --rounds)   [ $# -ge 2 ] || die "--rounds needs a value"; ROUNDS=$2; shift 2;;
    --pin)      [ $# -ge 2 ] || die "--pin needs none, same or split"; PIN=$2; shift 2;;
    --dir)      [ $# -ge 2 ] || die "--dir needs a path"; ORIGIN=$2; shift 2;;
    --cachemax) [ $# -ge 2 ] || die "--cachemax needs a path"; CM=$2; shift 2;;
    -h|--help)  usage; exit 0;;
    *) die "unknown argument '$1' (see --help)";;
  esac
done

[[ "$RUNTIME" =~ ^[1-9][0-9]*$ ]] || die "--runtime must be a whole number of seconds >= 1"
[[ "$SIZE_MIB" =~ ^[1-9][0-9]*$ ]] || die "--size must be a whole number of MiB >= 1"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a whole number >= 1"
# FIO_CPU: fio's --cpus_allowed; DAEMON_ON: command prefix that places cachemax/bindfs (their
# daemons inherit the affinity)
case "$PIN" in
  none)  FIO_CPU=();                   DAEMON_ON=();;
  same)  FIO_CPU=(--cpus_allowed=0);   DAEMON_ON=(taskset -c 0);;
  split) FIO_CPU=(--cpus_allowed=0);   DAEMON_ON=(taskset -c 1);;
  *) die "--pin must be none, same or split";;
esac
[ "$PIN" != split ] || [ "$(nproc)" -ge 2 ] || die "--pin split needs at least 2 CPUs"

# ---- preconditions -------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: mounting over a directory and FUSE passthrough need CAP_SYS_ADMIN"
[ -c /dev/fuse ] || die "/dev/fuse is missing (modprobe fuse, or give the container the device)"
command -v fio >/dev/null || die "fio is not installed: apt-get install -y fio"
command -v bindfs >/dev/null || die "bindfs is not installed: apt-get install -y bindfs"
command -v python3 >/dev/null || die "python3 is needed to parse fio's JSON output"
case "$CM" in
  /*) ;;
  *) if [ -e "$CM" ]; then CM=$(realpath -- "$CM"); else CM="$ROOT/$CM"; fi;;   # cwd, else repo root
esac
[ -x "$CM" ] || die "no cachemax binary at $CM (build it: make -C $ROOT build/cachemax, or pass --cachemax PATH)"

is_mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }
fstype_of() { awk -v p="$1" '$2 == p { t = $3 } END { print t }' /proc/mounts; }

# ---- scratch space and cleanup ---------------------------------------------------------------
WORK=""; CREATED_ORIGIN=0; DATAFILE=""; CM_DIR=""; BIND_MNT=""; CM_LOG=""
cleanup() {
  local rc=$? leftover=0
  trap - EXIT INT TERM HUP
  set +e
  if [ -n "$CM_DIR" ] && is_mounted "$CM_DIR"; then
    "$CM" stop "$CM_DIR" --lazy >/dev/null 2>&1
    is_mounted "$CM_DIR" && umount -l "$CM_DIR" 2>/dev/null
    is_mounted "$CM_DIR" && { echo "mount-bench: WARNING: $CM_DIR is still mounted" >&2; leftover=1; }
  fi
  if [ -n "$BIND_MNT" ] && is_mounted "$BIND_MNT"; then
    umount -l "$BIND_MNT" 2>/dev/null || fusermount -uz "$BIND_MNT" 2>/dev/null
    is_mounted "$BIND_MNT" && { echo "mount-bench: WARNING: $BIND_MNT is still mounted" >&2; leftover=1; }
  fi
  if [ "$leftover" -eq 0 ]; then
    [ -n "$DATAFILE" ] && rm -f "$DATAFILE"
    [ "$CREATED_ORIGIN" -eq 1 ] && rm -rf "$ORIGIN"
    [ -n "$WORK" ] && rm -rf "$WORK"
  else
    echo "mount-bench: left $WORK${ORIGIN:+ and $ORIGIN} in place because of the mount above" >&2
  fi
  # the daemon log is named after our private scratch path: drop it after a clean run
  if [ -n "$CM_LOG" ] && [ -f "$CM_LOG" ] && [ "$CREATED_ORIGIN" -eq 1 ]; then
    if [ "$rc" -eq 0 ] && [ "$leftover" -eq 0 ]; then rm -f "$CM_LOG"
    else echo "mount-bench: cachemax log kept: $CM_LOG" >&2; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "mount-bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

WORK=$(mktemp -d /dev/shm/cachemax-bench.XXXXXX)
CACHE=$WORK/cache
BIND_MNT=$WORK/bindfs-mnt
RES=$WORK/results
mkdir -p "$BIND_MNT" "$RES" "$WORK/bin"
# Snapshot the binary: a rebuild during the run (others share this tree) would otherwise let a
# newer `cachemax stop` meet a daemon started by the older build.
CM_SRC=$CM
CM=$WORK/bin/cachemax
cp -- "$CM_SRC" "$CM"
if [ -z "$ORIGIN" ]; then
  ORIGIN=$WORK/origin
fi
case "$ORIGIN" in *[[:space:]\\]*) die "--dir: paths with whitespace or backslashes are not supported";; esac
ORIGIN=$(realpath -m -- "$ORIGIN")
[ "$ORIGIN" != / ] || die "--dir: refusing to use /"
if [ -e "$ORIGIN" ]; then
  [ -d "$ORIGIN" ] || die "--dir: $ORIGIN is not a directory"
  is_mounted "$ORIGIN" && die "$ORIGIN is a mount point already ($(fstype_of "$ORIGIN")); pick another --dir"
else
  mkdir -p "$ORIGIN"; CREATED_ORIGIN=1
fi
DATAFILE=$ORIGIN/cachemax-bench.dat
[ -e "$DATAFILE" ] && { DATAFILE=""; die "$ORIGIN/cachemax-bench.dat exists already; remove it or pick another --dir"; }

# ---- helpers -------------------------------------------------------------------------------
WORKLOADS="4K-rand-direct 1M-seq-direct 4K-rand-buf"

# run_fio TARGET DIRECTORY ROUND: every workload against DIRECTORY/cachemax-bench.dat
run_fio() {
  local target=$1 dir=$2 round=$3 wl rw bs direct inval out
  for wl in $WORKLOADS; do
    case $wl in
      4K-rand-direct) rw=randread; bs=4k; direct=1; inval=1;;
      1M-seq-direct)  rw="read";   bs=1m; direct=1; inval=1;;
      4K-rand-buf)    rw=randread; bs=4k; direct=0; inval=0;;
    esac
    out=$RES/$target.$wl.r$round.json
    printf '  %-15s %-15s ' "$target" "$wl"
    if ! fio --name="$wl" --filename="$dir/cachemax-bench.dat" --readonly \
             --rw="$rw" --bs="$bs" --direct="$direct" --ioengine=psync --iodepth=1 --numjobs=1 \
             --size="${SIZE_MIB}M" --time_based --runtime="$RUNTIME" --invalidate="$inval" \
             "${FIO_CPU[@]}" --output-format=json --output="$out" >"$RES/fio.log" 2>&1; then
      echo "FAILED"
      tail -n 10 "$RES/fio.log" >&2
      python3 -c 'import json, sys; print("fio job error:", json.load(open(sys.argv[1]))["jobs"][0].get("error"))' \
        "$out" >&2 2>/dev/null || true
      die "fio failed on $target/$wl"
    fi
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]
if r.get("error"): sys.exit("fio job error %d" % r["error"])
rd = r["read"]
print("%10.1f MB/s %10.0f IOPS %8.1f us" % (rd["bw_bytes"] / 1e6, rd["iops"], rd["lat_ns"]["mean"] / 1e3))' "$out"
  done
}

cm_start() {   # cm_start [--no-passthrough]
  local msg
  CM_DIR=$ORIGIN
  if ! msg=$("${DAEMON_ON[@]}" "$CM" start "$ORIGIN" --cache "$CACHE" "$@" 2>&1); then
    echo "$msg" >&2; die "cachemax start $ORIGIN $* failed"
  fi
  echo "  $msg"
  [ "$(fstype_of "$ORIGIN")" = fuse.cachemax ] \
    || die "cachemax start returned but $ORIGIN is not a fuse.cachemax mount (it is '$(fstype_of "$ORIGIN")')"
  "$CM" status --json | python3 -c '
import json, sys
want = sys.argv[1]
for d in json.load(sys.stdin)["directories"]:
    if d["dir"] == want:
        print("  status: health %s, passthrough %s%s, %s threads, log %s" % (d.get("health"),
              "on" if d.get("passthrough") else "off",
              (" (" + d["passthrough_reason"] + ")") if d.get("passthrough_reason") else "",
              d.get("threads"), d.get("log")))
        print(d.get("log", ""), file=open(sys.argv[2], "w"))
' "$ORIGIN" "$RES/cm.log.path"
  CM_LOG=$(cat "$RES/cm.log.path" 2>/dev/null || true)
  # Warm the cache: one read of the file fills its cache copy (the first open of an uncached
  # file is a miss served in user space); fio's opens then hit the complete copy.
  cat "$ORIGIN/cachemax-bench.dat" > /dev/null
  sleep 1
}

cm_stop() {
  local msg
  if ! msg=$("$CM" stop "$ORIGIN" 2>&1); then
    echo "$msg" >&2; die "cachemax stop $ORIGIN failed (something still open under it?)"
  fi
  is_mounted "$ORIGIN" && die "cachemax stop returned but $ORIGIN is still mounted"
  CM_DIR=""
  return 0
}

# ---- run -----------------------------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
echo "== CacheMax mount benchmark"
echo "   date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "   kernel:    $(uname -r), $(nproc) CPUs, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   cachemax:  $CM_SRC (built $(date -u -r "$CM_SRC" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$CM_SRC" | cut -c1-12); tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted src/ changes'))"
echo "   tools:     $(fio --version), bindfs $(bindfs --version 2>/dev/null | awk '{print $2; exit}')"
echo "   origin:    $ORIGIN ($(stat -f -c %T "$ORIGIN")), file ${SIZE_MIB} MiB"
echo "   fio:       1 job, QD1, ioengine=psync, time_based ${RUNTIME} s, readonly; invalidate=1 for direct=1, 0 for buffered"
echo "   rounds:    $ROUNDS (tables show the median over rounds); CPU pinning: $PIN"
if awk -v l="$(load1)" 'BEGIN { exit !(l >= 0.5) }'; then
  echo "   WARNING:   the machine is not idle (load $(load1)): FUSE user-space numbers swing widely with"
  echo "              other load (CPU wake-ups); use --rounds 3 or more and compare runs with care"
fi

head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$DATAFILE"
sync "$DATAFILE"

for round in $(seq 1 "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "== round $round of $ROUNDS"
  echo "-- direct (nothing mounted)"
  run_fio direct "$ORIGIN" "$round"

  echo "-- cachemax, passthrough"
  cm_start
  run_fio cm-passthrough "$ORIGIN" "$round"
  cm_stop

  echo "-- cachemax, --no-passthrough"
  cm_start --no-passthrough
  run_fio cm-userspace "$ORIGIN" "$round"
  cm_stop

  echo "-- bindfs $ORIGIN $BIND_MNT"
  "${DAEMON_ON[@]}" bindfs "$ORIGIN" "$BIND_MNT" || die "bindfs $ORIGIN $BIND_MNT failed"
  is_mounted "$BIND_MNT" || die "bindfs returned but $BIND_MNT is not mounted"
  run_fio bindfs "$BIND_MNT" "$round"
  umount "$BIND_MNT" || umount -l "$BIND_MNT"
done
echo "   load average at end $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$CM_LOG" ] && [ -f "$CM_LOG" ]; then
  # anything but the daemon's info lines from this run is worth a look
  warn=$(grep -v ': info: ' "$CM_LOG" | tail -n 20 || true)
  if [ -n "$warn" ]; then
    echo "== cachemax log ($CM_LOG), non-info lines:"; echo "$warn" | sed 's/^/  /'
  fi
fi

echo
python3 - "$RES" "$WORKLOADS" "$ROUNDS" <<'PY'
import json, math, os, statistics, sys
res, workloads, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
targets = ["direct", "cm-passthrough", "cm-userspace", "bindfs"]
d = {}   # (target, workload) -> list of per-round dicts
for t in targets:
    for w in workloads:
        for r in range(1, rounds + 1):
            rd = json.load(open(os.path.join(res, f"{t}.{w}.r{r}.json")))["jobs"][0]["read"]
            pct = rd.get("clat_ns", {}).get("percentile", {})
            d.setdefault((t, w), []).append(dict(
                mbs=rd["bw_bytes"] / 1e6, iops=rd["iops"], lat=rd["lat_ns"]["mean"] / 1e3,
                p99=pct.get("99.000000", math.nan) / 1e3))

def med(t, w, k):
    return statistics.median(x[k] for x in d[t, w])

print("Results (MB/s = 10^6 B/s; latency = fio total latency per read, µs"
      + (f"; median of {rounds} rounds" if rounds > 1 else "") + ")")
print(f"{'workload':<16}{'target':<16}{'MB/s':>10}{'IOPS':>11}{'lat-mean':>10}{'lat-p99':>10}")
for w in workloads:
    for t in targets:
        print(f"{w:<16}{t:<16}{med(t, w, 'mbs'):>10.1f}{med(t, w, 'iops'):>11.0f}"
              f"{med(t, w, 'lat'):>10.1f}{med(t, w, 'p99'):>10.1f}")
    print()

def ratios(a, b, w):   # per round: both measured in the same round
    return [x["iops"] / y["iops"] if y["iops"] else math.nan for x, y in zip(d[a, w], d[b, w])]

def cell(v):
    s = f"{statistics.median(v):.2f}"
    return s + (f" ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else "")

pairs = [("pt/direct", "cm-passthrough", "direct"), ("us/direct", "cm-userspace", "direct"),
         ("us/bindfs", "cm-userspace", "bindfs")]
width = 13 if rounds == 1 else 24
print("Ratios of IOPS (= ratios of MB/s)" + (", median (min-max) over rounds" if rounds > 1 else ""))
print(f"{'workload':<16}" + "".join(f"{n:>{width}}" for n, _, _ in pairs))
for w in workloads:
    print(f"{w:<16}" + "".join(f"{cell(ratios(a, b, w)):>{width}}" for _, a, b in pairs))
print()

print("Targets")
checks = [
    ("passthrough >= 0.90 x direct, 4K random read (direct=1)", ratios("cm-passthrough", "direct", "4K-rand-direct"), 0.90),
    ("passthrough >= 0.90 x direct, 1M sequential read (direct=1)", ratios("cm-passthrough", "direct", "1M-seq-direct"), 0.90),
    ("user-space  >= 2.00 x bindfs, 4K random read (direct=1)", ratios("cm-userspace", "bindfs", "4K-rand-direct"), 2.00),
]
for name, v, goal in checks:
    m = statistics.median(v)
    print(f"  {'PASS' if m >= goal else 'MISS'}  {name:<62} {cell(v)}")
PY
