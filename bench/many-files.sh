#!/usr/bin/env bash
# many-files: how the daemon scales with the number of inodes. Builds a tree of empty files on
# tmpfs (INODES, default 10 million: about 2 KiB of kernel memory each with the FUSE inode, so
# 20 GiB of RAM), walks it with `find -printf '%s'` (a stat of every inode, so that the kernel
# holds a node for each) on the original and through the mount (alternating, ROUNDS times), and
# prints in one run: the daemon's RSS growth per node, its peak fds, and find time
# mount ÷ original.
# Targets (issue "Real directories"): <= 200 bytes per node, <= 4,096 fds.
#   bench/many-files.sh [INODES] [ROUNDS]       (run by hand as root; not part of make check)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHEMAX=${CACHEMAX:-$ROOT/build/cachemax}
INODES=${1:-10000000}
ROUNDS=${2:-2}
PER_DIR=1000
[ "$(id -u)" -eq 0 ] || { echo "many-files: needs root" >&2; exit 1; }
[ -x "$CACHEMAX" ] || { echo "many-files: build first (make)" >&2; exit 1; }

W=$(mktemp -d /dev/shm/cm-many.XXXXXX)
ORIG=$W/orig      # the directory to accelerate
BACK=$W/back      # the same directory, reached behind the mount
cleanup() {
  "$CACHEMAX" stop "$ORIG" --lazy >/dev/null 2>&1 || true
  umount -l "$BACK" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$ORIG" "$BACK" "$W/cache"

echo "building $INODES inodes ($PER_DIR per directory) on tmpfs ..."
t0=$(date +%s)
python3 - "$ORIG" "$INODES" "$PER_DIR" <<'EOF'
import os, sys
base, total, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
made, d = 0, 0
while made < total:
    top = f'{base}/t{d // 1000:04d}'
    if d % 1000 == 0:
        os.mkdir(top); made += 1
    p = f'{top}/d{d % 1000:03d}'
    os.mkdir(p); made += 1
    for f in range(min(per, total - made)):
        os.close(os.open(f'{p}/f{f:04d}', os.O_CREAT | os.O_WRONLY, 0o644))
    made += min(per, total - made)
    d += 1
EOF
echo "built in $(( $(date +%s) - t0 )) s"
mount --bind "$ORIG" "$BACK"
"$CACHEMAX" start "$ORIG" --cache "$W/cache" --exclude '*' --entry-timeout 3600 --attr-timeout 3600 >/dev/null
stats() { "$CACHEMAX" stats "$ORIG" --json; }
key() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
j=$(stats); pid=$(key "$j" pid); rss0=$(key "$j" rss_bytes); nodes0=$(key "$j" nodes)
peakf=$W/peak; echo 0 > "$peakf"
( max=0; while kill -0 "$pid" 2>/dev/null; do
    n=$(ls /proc/"$pid"/fd 2>/dev/null | wc -l); [ "$n" -gt "$max" ] && { max=$n; echo "$max" > "$peakf"; }
    sleep 0.5; done ) &
sampler=$!

secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  o=$(secs find "$BACK" -printf '%s\n'); m=$(secs find "$ORIG" -printf '%s\n')
  ratios+=("$(echo "scale=2; $m / $o" | bc)")
  echo "round $r: find original ${o}s, through the mount ${m}s"
done
j=$(stats); kill "$sampler" 2>/dev/null || true
nodes=$(key "$j" nodes); rss=$(key "$j" rss_bytes)
echo
echo "inodes $INODES; nodes held $nodes; daemon RSS $rss0 -> $rss bytes"
echo "RSS per node: $(( (rss - rss0) / (nodes - nodes0 > 0 ? nodes - nodes0 : 1) )) B (target <= 200);" \
     "node table $(key "$j" node_bytes) B"
echo "peak daemon fds: $(cat "$peakf") (target <= 4096); fd-cache misses $(key "$j" fd_cache_misses)"
echo "find mount / original per round: ${ratios[*]} (1 = as fast as the original)"
