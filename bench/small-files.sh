#!/usr/bin/env bash
# bench/small-files.sh — metadata and small-file workloads through the mount ÷ on the original,
# page cache warm (issue 14, workload set (a)). Hand-run, as root; not a timed test.
#
# Usage: bench/small-files.sh [--files N] [--rounds R] [--dir PARENT] [--count-requests]
#            [--trace-syscalls] [--versus "OPTIONS"] [-- cachemax start options...]
#   --files N          small files (0.5-4 KiB) in directories of 100 (default 15000)
#   --rounds R         alternating rounds per workload; the median ratio is printed (default 3)
#   --dir PARENT       where the original tree is made (default /var/tmp; ext4 on this VM)
#   --count-requests   also count the FUSE requests each workload sends (perf, tracefs)
#   --trace-syscalls   also count the daemon's syscalls per open+read+close of a cached file
#                      (strace -f of the daemon during one more per-file pass; its FUSE
#                      workers only, the threads that reply; timings under strace are not kept)
#   --versus "OPTIONS" also a second mount of a copy of the tree started with these further
#                      options (e.g. "--openless"), timed in the same rounds (the three sides
#                      in turn, the order rotating per round): a column "ratio2" for it, and
#                      its per-file cost; --count-requests counts both
# Prints one line per workload: the median of (time through the mount ÷ time on the original,
# reached by a bind mount made before the start), measured in the same round, alternating sides.
set -euo pipefail
BENCH_NAME=small-files
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
CACHEMAX=${CACHEMAX:-$ROOT/build/cachemax}
FILES=15000 ROUNDS=3 PARENT=/var/tmp COUNT=0 TRACE=0 VERSUS=
while [ $# -gt 0 ]; do
  case $1 in
    --files) FILES=$2; shift 2;;
    --rounds) ROUNDS=$2; shift 2;;
    --dir) PARENT=$2; shift 2;;
    --count-requests) COUNT=1; shift;;
    --trace-syscalls) TRACE=1; shift;;
    --versus) VERSUS=$2; shift 2;;
    --) shift; break;;
    -h|--help) bench_usage "$0"; exit 0;;
    *) bench_die "unknown argument '$1' (see --help)";;
  esac
done
[ "$(id -u)" -eq 0 ] || bench_die "needs root (it mounts)"
[ -x "$CACHEMAX" ] || bench_die "no $CACHEMAX: run make all"
[ "$TRACE" = 0 ] || command -v strace >/dev/null || bench_die "--trace-syscalls needs strace (apt-get install strace)"

W=$(mktemp -d "$PARENT/small-files.XXXXXX")
ORIG=$W/orig BACK=$W/back CACHE=$W/cache ORIG2=$W/orig2 CACHE2=$W/cache2
cleanup() {
  "$CACHEMAX" stop "$ORIG" --lazy >/dev/null 2>&1 || true
  [ -z "$VERSUS" ] || "$CACHEMAX" stop "$ORIG2" --lazy >/dev/null 2>&1 || true
  umount -l "$BACK" 2>/dev/null || true
  rm -rf "$W"
}
bench_traps cleanup
mkdir -p "$ORIG" "$BACK" "$CACHE"
python3 - "$ORIG" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(14)
for i in range(n):
    d = os.path.join(root, "d%02d" % (i // 1000), "e%02d" % (i // 100 % 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(os.urandom(random.randint(512, 4096)))
EOF
mount --bind "$ORIG" "$BACK"
"$CACHEMAX" start "$ORIG" --cache "$CACHE" "$@" >/dev/null
if [ -n "$VERSUS" ]; then
  cp -a "$ORIG" "$ORIG2"; mkdir -p "$CACHE2"
  # shellcheck disable=SC2086  # VERSUS is a list of options
  "$CACHEMAX" start "$ORIG2" --cache "$CACHE2" "$@" $VERSUS >/dev/null
fi

declare -A WL=(
  [find]='find . >/dev/null'
  [stat]='find . -type f -print0 | xargs -0 stat >/dev/null'
  [ls-lR]='ls -lR >/dev/null'
  [du]='du -s >/dev/null'
  [cat]='find . -type f -print0 | xargs -0 cat >/dev/null'
  [tar]='tar cf - . | cat >/dev/null'
)
ORDER="find stat ls-lR du cat tar"
med() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
secs() { local t0 t1; t0=$(date +%s%N); (cd "$1" && eval "$2"); t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }

# warm both sides (page cache, dentries, the cache's copies)
for w in $ORDER; do secs "$BACK" "${WL[$w]}" >/dev/null; secs "$ORIG" "${WL[$w]}" >/dev/null; done
for w in $ORDER; do secs "$ORIG" "${WL[$w]}" >/dev/null; done
if [ -n "$VERSUS" ]; then
  for w in $ORDER; do secs "$ORIG2" "${WL[$w]}" >/dev/null; done
  for w in $ORDER; do secs "$ORIG2" "${WL[$w]}" >/dev/null; done
fi

if [ -z "$VERSUS" ]; then
  printf '%-6s %10s %10s %7s\n' workload orig_us mount_us ratio
else
  printf '%-6s %10s %10s %7s %10s %7s   (mount 2: %s)\n' workload orig_us mount_us ratio mount2_us \
    ratio2 "$VERSUS"
fi
for w in $ORDER; do
  rs=() lo=() lm=() rs2=() lm2=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ -z "$VERSUS" ]; then
      if [ $((r % 2)) -eq 1 ]; then o=$(secs "$BACK" "${WL[$w]}"); m=$(secs "$ORIG" "${WL[$w]}")
      else m=$(secs "$ORIG" "${WL[$w]}"); o=$(secs "$BACK" "${WL[$w]}"); fi
    else
      case $((r % 3)) in
        1) o=$(secs "$BACK" "${WL[$w]}"); m=$(secs "$ORIG" "${WL[$w]}"); m2=$(secs "$ORIG2" "${WL[$w]}");;
        2) m=$(secs "$ORIG" "${WL[$w]}"); m2=$(secs "$ORIG2" "${WL[$w]}"); o=$(secs "$BACK" "${WL[$w]}");;
        0) m2=$(secs "$ORIG2" "${WL[$w]}"); o=$(secs "$BACK" "${WL[$w]}"); m=$(secs "$ORIG" "${WL[$w]}");;
      esac
      rs2+=("$(awk -v m="$m2" -v o="$o" 'BEGIN { printf "%.2f", m / o }')"); lm2+=("$m2")
    fi
    rs+=("$(awk -v m="$m" -v o="$o" 'BEGIN { printf "%.2f", m / o }')"); lo+=("$o"); lm+=("$m")
  done
  if [ -z "$VERSUS" ]; then
    printf '%-6s %10s %10s %7s   (ratios: %s)\n' "$w" "$(med "${lo[@]}")" "$(med "${lm[@]}")" \
      "$(med "${rs[@]}")" "${rs[*]}"
  else
    printf '%-6s %10s %10s %7s %10s %7s   (ratios: %s; %s)\n' "$w" "$(med "${lo[@]}")" \
      "$(med "${lm[@]}")" "$(med "${rs[@]}")" "$(med "${lm2[@]}")" "$(med "${rs2[@]}")" \
      "${rs[*]}" "${rs2[*]}"
  fi
done

# Per-file cost: open + read + close of every (cached) small file, in µs per file, alternating.
cat > "$W/perfile.py" <<'PY'
import os, sys, time
root = sys.argv[1]
paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
t0 = time.perf_counter()
for p in paths:
    fd = os.open(p, os.O_RDONLY)
    os.read(fd, 65536)
    os.close(fd)
print("%.1f" % ((time.perf_counter() - t0) * 1e6 / len(paths)))
PY
python3 "$W/perfile.py" "$ORIG" >/dev/null
[ -z "$VERSUS" ] || python3 "$W/perfile.py" "$ORIG2" >/dev/null
po=() pm=() pm2=()
for r in $(seq 1 "$ROUNDS"); do
  po+=("$(python3 "$W/perfile.py" "$BACK")"); pm+=("$(python3 "$W/perfile.py" "$ORIG")")
  [ -z "$VERSUS" ] || pm2+=("$(python3 "$W/perfile.py" "$ORIG2")")
done
printf 'open+read+close of a small file: %s µs on the original, %s µs through the mount (rounds: %s / %s)\n' \
  "$(med "${po[@]}")" "$(med "${pm[@]}")" "${po[*]}" "${pm[*]}"
[ -z "$VERSUS" ] || printf '  through mount 2 (%s): %s µs (rounds: %s)\n' "$VERSUS" "$(med "${pm2[@]}")" "${pm2[*]}"

if [ "$TRACE" = 1 ]; then
  pid=$("$CACHEMAX" status --json | python3 -c 'import json, sys
for d in json.load(sys.stdin)["directories"]:
    if d["dir"] == sys.argv[1]: print(d["daemon_pid"])' "$ORIG")
  [ -n "$pid" ] || bench_die "--trace-syscalls: no daemon pid for $ORIG in cachemax status"
  strace -f -qq -o "$W/strace.txt" -p "$pid" & spid=$!
  sleep 1   # attached to every thread
  python3 "$W/perfile.py" "$ORIG" >/dev/null
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  python3 - "$W/strace.txt" "$(find "$BACK" -type f | wc -l)" <<'PY'
import collections, re, sys
per = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    m = re.match(r"(\d+) +([a-z_0-9]+)\(", line)
    if m:
        per[m.group(1)][m.group(2)] += 1
total = collections.Counter()
for calls in per.values():
    if calls["writev"]:   # a FUSE worker: it replies
        total.update(calls)
for name in ("futex", "restart_syscall"):
    total.pop(name, None)
n = int(sys.argv[2])
print("daemon syscalls per open+read+close: %.1f (%s)" % (sum(total.values()) / n,
      ", ".join("%s %.2f" % (k, v / n) for k, v in total.most_common())))
PY
fi

if [ "$COUNT" = 1 ]; then
  grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts || bench_die "--count-requests: mount tracefs on /sys/kernel/tracing"
  for side in "$ORIG" ${VERSUS:+"$ORIG2"}; do
    conn=$(mountpoint -d "$side"); conn=${conn#*:}  # this mount's connection (major 0)
    if [ "$side" = "$ORIG" ]; then echo "FUSE requests per workload (warm):"
    else echo "FUSE requests per workload (warm), mount 2 ($VERSUS):"; fi
    for w in $ORDER; do
      perf record -q -a -e fuse:fuse_request_send -o "$W/perf.data" -- bash -c "cd '$side' && ${WL[$w]}" >/dev/null 2>&1
      printf '%-6s ' "$w"
      perf script -i "$W/perf.data" 2>/dev/null | grep "connection $conn " | grep -o '(FUSE_[A-Z_]*)' | sort | uniq -c | sort -rn |
        awk '{ gsub(/[()]|FUSE_/, "", $2); printf "%s=%s ", $2, $1 } END { print "" }'
    done
  done
fi
