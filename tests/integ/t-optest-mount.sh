#!/usr/bin/env bash
# Every operation applications use behaves on the mount exactly as on a plain directory:
# optest's transcript over a mounted origin must equal its transcript on a plain directory of
# the same file-system type, with passthrough and with the user-space path, on tmpfs and ext4,
# and with --openless on tmpfs.
. "$(dirname "$0")/lib.sh"
need_root
OPTEST=$TOOLS/integ/optest
[ -x "$OPTEST" ] || fail "missing $OPTEST (make all)"

t_shm opt

run_pair() {  # run_pair BASE LABEL [start options]
  local base=$1 label=$2; shift 2
  local plain=$base/plain-$label mnt=$base/mnt-$label
  mkdir -p "$plain" "$mnt"
  "$OPTEST" "$plain" > "$T_SCRATCH/plain-$label.txt" 2>&1 || fail "optest on plain dir failed"
  t_mount "$mnt" "$T_SCRATCH/cache-$label" "$@"
  "$OPTEST" "$mnt" > "$T_SCRATCH/mnt-$label.txt" 2>&1 || fail "optest on the mount exited $?"
  t_unmount "$mnt"
  if ! diff -u "$T_SCRATCH/plain-$label.txt" "$T_SCRATCH/mnt-$label.txt" > "$T_SCRATCH/diff-$label"; then
    head -n 80 "$T_SCRATCH/diff-$label"
    fail "$label: the mount behaves differently from a plain directory"
  fi
  echo "$label: $(wc -l < "$T_SCRATCH/plain-$label.txt") transcript lines identical"
}

run_pair "$SHM" tmpfs-passthrough
run_pair "$SHM" tmpfs-userspace --no-passthrough
run_pair "$T_SCRATCH" ext4-passthrough
run_pair "$T_SCRATCH" ext4-userspace --no-passthrough
# The kernel opens files itself, every file request comes with fh 0 (fs_openless.h).
run_pair "$SHM" tmpfs-openless --openless
echo ok
