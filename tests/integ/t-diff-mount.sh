#!/usr/bin/env bash
# The differential test: one long seeded random sequence of operations replayed on the mount and
# on a plain directory; every result must agree. 100,000 operations each with passthrough and
# with the user-space path (tmpfs origin), a shorter run over an ext4 origin, and one with a
# 1 MiB cache (eviction under pressure), one with the daemon's fd limit at 256, two that make
# changes behind the cache between operations (--behind), one with --openless, and a short one
# of the user-space path with --behind.
# Reproduce a failure with the seed and op count it prints.
. "$(dirname "$0")/lib.sh"
need_root
DIFFTEST=$TOOLS/diff/difftest
[ -x "$DIFFTEST" ] || fail "missing $DIFFTEST (make all)"
OPS=${DIFF_OPS:-100000}

t_shm diff

run() {  # run BASE LABEL SEED OPS [start options]
  local base=$1 label=$2 seed=$3 ops=$4; shift 4
  local mnt=$base/mnt-$label plain=$base/plain-$label behind=()
  mkdir -p "$mnt" "$plain"
  if [ -n "${BEHIND:-}" ]; then  # the original reached behind the mount, for --behind
    t_backdoor "$mnt" "$T_SCRATCH/back-$label"
    behind=(--behind "$T_SCRATCH/back-$label" --behind-pct "$BEHIND")
  fi
  t_mount "$mnt" "$T_SCRATCH/cache-$label" "$@"
  if ! "$DIFFTEST" --seed "$seed" --ops "$ops" "${behind[@]+"${behind[@]}"}" "$mnt" "$plain"; then
    fail "$label: the mount and a plain directory disagree (seed $seed)"
  fi
  t_unmount "$mnt"
}

run "$SHM" tmpfs-passthrough 1 "$OPS"
run "$SHM" tmpfs-userspace 2 "$OPS" --no-passthrough
run "$T_SCRATCH" ext4-passthrough 3 $((OPS / 5))
# A cache far smaller than the data: eviction, refused fills and background completion all
# happen while the operations run.
run "$SHM" tmpfs-small-cache 4 $((OPS / 2)) --size 1M --complete-max 256K
# First reads through the daemon (the default passes them through to the origin).
run "$SHM" tmpfs-first-read-fill 5 $((OPS / 5)) --first-read fill
# The daemon under a small fd limit (its fd cache keeps 64 origin fds): nodes are reached by
# file handle, and running out of fds never shows.
CACHEMAX_FD_LIMIT=256 run "$T_SCRATCH" ext4-fd-limit-256 6 $((OPS / 5))
# Changes behind the cache (issue 14): 10% of the steps rename, unlink, link, chmod, chown,
# utimens, truncate, mkdir or rmdir on the original through a bind mount made before the start
# (the kernel holds names, attributes and listings until the watcher invalidates them); the
# mount must show each within 1 s, and every other result must still agree.
BEHIND=10 run "$SHM" tmpfs-behind 7 $((OPS / 5))
BEHIND=10 run "$T_SCRATCH" ext4-behind 8 $((OPS / 5))
# start --openless: the kernel opens files without OPEN and keeps their pages across opens,
# and every request of a file it opened comes with fh 0 (fs_openless.h). (With --behind, some
# seeds disagree within the watcher's 20-50 ms: an fstat of a file whose link count changed
# behind, a name; t-coherence and t-openless check changes behind an openless mount.)
run "$SHM" tmpfs-openless 9 $((OPS / 5)) --openless
# Reads served in user space while a listing shows a truncate behind before the watcher's event
# does: the open file's object must be in step before the listing's attributes are (lookup_at;
# this seed read 0 bytes of a file the listing said had 13,938).
BEHIND=10 run "$SHM" tmpfs-userspace-behind 11 9298 --no-passthrough
echo ok
