#!/usr/bin/env bash
# bench/young-listings.sh — the metadata catalog's young listings at scale (issue 14; run by
# hand as root, not part of make check):
#
#     bench/young-listings.sh [--dirs N] [--files N] [--cachemax PATH]
#
# An original on tmpfs (/dev/shm) with the cache on /tmp (another file system: the catalog's
# own record writes are no events then), accelerated with --meta-catalog. N directories of
# --files small files each are made behind the mount (a bind mount) and each is listed through
# the mount at once, so every listing is too young to record (docs/ARCHITECTURE.md "The
# metadata catalog", rule 2). Prints how many the watcher recorded late (meta_catalog
# .late_records) right after, and each second for 20 s, and how long a chmod behind the mount
# took to be seen while it re-lists them. Everything is removed at exit.
set -euo pipefail
DIRS=1000 FILES=100 CM=$(cd "$(dirname "$0")/.." && pwd)/build/cachemax
while [ $# -gt 0 ]; do
  case $1 in
    --dirs) DIRS=${2:?}; shift 2;;
    --files) FILES=${2:?}; shift 2;;
    --cachemax) CM=${2:?}; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) echo "young-listings: unknown option '$1' (see --help)" >&2; exit 2;;
  esac
done
[[ $DIRS =~ ^[1-9][0-9]*$ && $FILES =~ ^[1-9][0-9]*$ ]] || { echo "young-listings: --dirs and --files take numbers >= 1" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "young-listings: needs root (mounts)" >&2; exit 2; }
[ -x "$CM" ] || { echo "young-listings: no binary at $CM: build first (make)" >&2; exit 2; }
W=$(mktemp -d /dev/shm/cmtest-young.XXXXXX); O=$W/o B=$W/b
C=$(mktemp -d /tmp/cmtest-young-cache.XXXXXX)
cleanup() {
  "$CM" stop "$O" > /dev/null 2>&1 || umount -l "$O" 2> /dev/null || true
  umount -l "$B" 2> /dev/null || true
  rm -rf "$W" "$C"
}
trap cleanup EXIT
mkdir -p "$O" "$B"
mount --bind "$O" "$B"
export CACHEMAX_RUN_DIR=$W/run
echo probe > "$O/probe"
sleep 2.2   # the top directory old enough to be recorded at once
"$CM" start "$O" --cache "$C" --meta-catalog > /dev/null
late() { "$CM" stats "$O" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["late_records"])'; }
t0=$(date +%s.%N)
python3 - "$B" "$O" "$DIRS" "$FILES" <<'PY'
import os, sys
back, mnt, dirs, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for d in range(dirs):
    os.mkdir(f"{back}/d{d:06}")
    for f in range(files):
        with open(f"{back}/d{d:06}/f{f:05}", "w") as fh:
            fh.write("x" * 100)
    for e in os.scandir(f"{mnt}/d{d:06}"):   # listed through the mount at once: young
        e.stat(follow_symlinks=False)
PY
t1=$(date +%s.%N)
echo "made and listed $DIRS directories of $FILES files: $(echo "$t1 - $t0" | bc) s"
echo "late_records right after: $(late)"
sleep 1.8
chmod 600 "$B/probe"; t0=$(date +%s.%N)
while [ "$(stat -c %a "$O/probe")" != 600 ]; do sleep 0.01; done
t1=$(date +%s.%N)
echo "a chmod behind the mount seen after $(echo "$t1 - $t0" | bc) s (late_records then $(late))"
for i in $(seq 1 20); do
  sleep 1; n=$(late); echo "t+$i s: late_records $n"
  [ "$n" -ge "$DIRS" ] && break
done
