# shellcheck shell=bash
# bench/lib.sh — helpers shared by the hand-run benchmarks.
# Sourced, not run. Every function is prefixed bench_; the caller sets BENCH_NAME (used in
# messages) before sourcing.

: "${BENCH_NAME:=bench}"

bench_die() { echo "$BENCH_NAME: $*" >&2; exit 2; }

# bench_traps FUNC: FUNC runs at every exit; Ctrl-C, TERM and HUP exit through it (130/143/129)
bench_traps() {
  trap "$1" EXIT
  trap 'echo; echo "$BENCH_NAME: interrupted" >&2; exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# usage text = the comment block at the top of the calling script (line 2 up to `set -euo`)
bench_usage() { sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; }

bench_is_mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }
bench_fstype_of() { awk -v p="$1" '$2 == p { t = $3 } END { print t }' /proc/mounts; }

# bench_umount PATH: unmount PATH (plain, then lazy, then fusermount); 1 if still mounted
bench_umount() {
  bench_is_mounted "$1" || return 0
  umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || fusermount -uz "$1" 2>/dev/null || true
  local _
  for _ in 1 2 3 4 5 6 7 8 9 10; do bench_is_mounted "$1" || return 0; sleep 0.2; done
  return 1
}

# bench_wait_mounted PATH FSTYPE-PATTERN SECONDS: wait for a mount to appear (rclone --daemon)
bench_wait_mounted() {
  local _ n=$(( $3 * 5 ))
  for _ in $(seq 1 "$n"); do
    # shellcheck disable=SC2254  # $2 is a glob on purpose
    case "$(bench_fstype_of "$1")" in $2) return 0;; esac
    sleep 0.2
  done
  return 1
}

bench_drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

bench_load1() { cut -d' ' -f1 /proc/loadavg; }

# bench_disk_of PATH: "DEVICE (fstype, rotational|non-rotational, model)" of PATH's file system
bench_disk_of() {
  local src fst dev base rot model
  src=$(findmnt -n -o SOURCE --target "$1" 2>/dev/null | head -n1)
  fst=$(findmnt -n -o FSTYPE --target "$1" 2>/dev/null | head -n1)
  dev=${src#/dev/}
  base=$dev
  [ -e "/sys/class/block/$dev" ] && [ -e "/sys/class/block/$dev/partition" ] \
    && base=$(basename "$(readlink -f "/sys/class/block/$dev/..")")
  if [ -r "/sys/block/$base/queue/rotational" ]; then
    rot=$(cat "/sys/block/$base/queue/rotational")
    [ "$rot" = 0 ] && rot=non-rotational || rot=rotational
    model=$(cat "/sys/block/$base/device/model" 2>/dev/null | tr -s ' ' || true)
    [ -n "$model" ] || { [ -d "/sys/block/$base/device" ] && grep -q virtio "/sys/block/$base/device/modalias" 2>/dev/null && model=virtio-blk; }
    echo "$src ($fst, $rot${model:+, $model})"
  else
    echo "$src ($fst)"
  fi
}

# bench_machine_header: the machine, one line each (the caller prints its own title first)
bench_machine_header() {
  echo "   machine:   $(nproc) vCPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), RAM $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
  echo "   load:      $(cut -d' ' -f1-3 /proc/loadavg) at start"
  if awk -v l="$(bench_load1)" 'BEGIN { exit !(l >= 0.5) }'; then
    echo "   WARNING:   the machine is not idle (load $(bench_load1)): numbers will be noisy; use --rounds 3"
  fi
}

# bench_fio_line JSON DIR(read|write): "MB/s IOPS mean-µs p99-µs" of fio's first job
bench_fio_line() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]
if r.get("error"): sys.exit("fio job error %d" % r["error"])
d = r[sys.argv[2]]
p = d.get("clat_ns", {}).get("percentile", {}).get("99.000000", 0) / 1e3
print("%10.1f MB/s %10.0f IOPS %9.1f us %9.1f p99" % (d["bw_bytes"] / 1e6, d["iops"], d["lat_ns"]["mean"] / 1e3, p))
PY
}

# bench_fio_or_die OUT LOG ARGS...: run fio with JSON output to OUT; on failure show why and die
bench_fio_or_die() {
  local out=$1 log=$2; shift 2
  if ! fio "$@" --output-format=json --output="$out" >"$log" 2>&1; then
    echo "FAILED" >&2
    tail -n 10 "$log" >&2
    python3 -c 'import json, sys; print("fio job error:", json.load(open(sys.argv[1]))["jobs"][0].get("error"))' \
      "$out" >&2 2>/dev/null || true
    bench_die "fio failed: fio $*"
  fi
}

# bench_two_trees KIND: two equal trees, A and B, made by the caller's make_tree DIR, on the
# local disk (KIND local: /var/tmp, removed at exit) or each behind its own sshfs mount of a
# private sshd on 127.0.0.1 (KIND sshfs); sets A and B. Needs tests/integ/lib.sh sourced
# (T_SCRATCH, T_REMOVE, t_sshd_start, t_sshfs) and BENCH_NAME.
bench_two_trees() {
  if [ "$1" = local ]; then
    local p
    p=$(mktemp -d "/var/tmp/$BENCH_NAME.XXXXXX"); T_REMOVE+=("$p")
    make_tree "$p/A"; cp -a "$p/A" "$p/B"; A=$p/A B=$p/B
  else
    mkdir -p "$T_SCRATCH/remote"; make_tree "$T_SCRATCH/remote/A"
    cp -a "$T_SCRATCH/remote/A" "$T_SCRATCH/remote/B"
    t_sshd_start
    t_sshfs "$T_SCRATCH/remote/A" "$T_SCRATCH/sA"; t_sshfs "$T_SCRATCH/remote/B" "$T_SCRATCH/sB"
    A=$T_SCRATCH/sA B=$T_SCRATCH/sB
  fi
}
