#!/usr/bin/env bash
# bench/openless-tradeoff.sh — what start --openless costs for large files: the same reads
# through a default mount and an --openless mount, alternating, in one run. Hand-run, as root.
#
# Usage: bench/openless-tradeoff.sh [--rounds R] [--size MiB] [--runtime SEC] [--dir PARENT]
#   --rounds R      alternating rounds (default 3); the median ratio is printed
#   --size MiB      the large file (default 512)
#   --runtime SEC   seconds per random-read run (default 5)
#   --dir PARENT    where the two originals are made (default /var/tmp: the VM's disk); the
#                   caches are on /dev/shm (tmpfs, the "fast device")
# Workloads (fio, 1 job, psync), each on both mounts in turn (the order alternating per round),
# the page cache dropped before each run:
#   seq-cached    1M sequential buffered read of the whole file, its cache copy complete
#                 (default: passthrough to the copy; openless: READs served from the copy)
#   rand-direct   4K random O_DIRECT reads of the cached file for --runtime seconds
#   rand-buffered 4K random buffered reads of the cached file for --runtime seconds
#   seq-uncached  1M sequential buffered read after `cachemax evict` (default: passthrough to
#                 the original, filled behind; openless: through the daemon, filling)
# Prints per workload: default and openless (MB/s or IOPS, medians) and openless ÷ default.
set -euo pipefail
BENCH_NAME=openless-tradeoff
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
CACHEMAX=${CACHEMAX:-$ROOT/build/cachemax}
ROUNDS=3 SIZE=512 RUNTIME=5 PARENT=/var/tmp
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --runtime) RUNTIME=$2; shift 2;;
    --dir) PARENT=$2; shift 2;;
    -h|--help) bench_usage "$0"; exit 0;;
    *) bench_die "unknown argument '$1' (see --help)";;
  esac
done
[ "$(id -u)" -eq 0 ] || bench_die "needs root (it mounts)"
[ -x "$CACHEMAX" ] || bench_die "no $CACHEMAX: run make all"
command -v fio >/dev/null || bench_die "needs fio (apt-get install fio)"

W=$(mktemp -d "$PARENT/openless-tradeoff.XXXXXX") S=$(mktemp -d /dev/shm/openless-tradeoff.XXXXXX)
cleanup() {
  for m in default openless; do "$CACHEMAX" stop "$W/$m" --lazy >/dev/null 2>&1 || true; done
  rm -rf "$W" "$S"
}
bench_traps cleanup
mkdir -p "$W/default" "$W/openless"
dd if=/dev/urandom of="$W/default/big.dat" bs=1M count="$SIZE" status=none
cp "$W/default/big.dat" "$W/openless/big.dat"
"$CACHEMAX" start "$W/default" --cache "$S/cache-default" >/dev/null
"$CACHEMAX" start "$W/openless" --cache "$S/cache-openless" --openless >/dev/null

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# fio_run FILE RW BS DIRECT [timed]: prints MB/s (sequential) or IOPS (random)
fio_run() {
  local args=(--name=t --filename="$1" --rw="$2" --bs="$3" --direct="$4" --ioengine=psync
              --size="${SIZE}M" --readonly --output-format=json)
  [ "${5:-}" = timed ] && args+=(--time_based --runtime="$RUNTIME")
  fio "${args[@]}" | python3 -c 'import json, sys; j = json.load(sys.stdin)["jobs"][0]["read"]
print("%.1f" % (j["bw_bytes"] / 1e6 if sys.argv[1] == "seq" else j["iops"]))' "${2%%read}"
}
warm() { "$CACHEMAX" warm "$1" big.dat >/dev/null; }
med() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for m in default openless; do cat "$W/$m/big.dat" >/dev/null; warm "$W/$m"; done
declare -A A B R
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="default openless"; else order="openless default"; fi
  for w in seq-cached rand-direct rand-buffered seq-uncached; do
    for m in $order; do
      f=$W/$m/big.dat
      case $w in
        seq-cached) warm "$W/$m"; drop; v=$(fio_run "$f" read 1m 0);;
        rand-direct) warm "$W/$m"; drop; v=$(fio_run "$f" randread 4k 1 timed);;
        rand-buffered) warm "$W/$m"; drop; v=$(fio_run "$f" randread 4k 0 timed);;
        seq-uncached) "$CACHEMAX" evict "$W/$m" big.dat >/dev/null; drop; v=$(fio_run "$f" read 1m 0);;
      esac
      if [ $m = default ]; then A[$w]+="$v "; else B[$w]+="$v "; fi
    done
    a=${A[$w]% }; b=${B[$w]% }
    R[$w]+="$(awk -v a="${a##* }" -v b="${b##* }" 'BEGIN { printf "%.2f", b / a }') "
  done
  echo "round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
done
printf '%-14s %12s %12s %9s   %s\n' workload default openless ratio "(unit; ratios per round)"
for w in seq-cached rand-direct rand-buffered seq-uncached; do
  unit=MB/s; case $w in rand-*) unit=IOPS;; esac
  # shellcheck disable=SC2086  # lists of numbers
  printf '%-14s %12s %12s %9s   (%s; %s)\n' "$w" "$(med ${A[$w]})" "$(med ${B[$w]})" "$(med ${R[$w]})" "$unit" "${R[$w]% }"
done
