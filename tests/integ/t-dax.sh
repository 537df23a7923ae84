#!/usr/bin/env bash
# DAX detection (issue 16 item 6): `status`, `status --json` and `stats --json` say whether the
# cache directory is on DAX and why. There is no pmem on this machine, so the answer must be
# "no" with the cache's file system named: a cache on tmpfs and one on /tmp's file system.
# (The positive cases, the mount options dax, dax=always, dax=inode, are tests/unit/test_cache_dax.c's.)
. "$(dirname "$0")/lib.sh"
need_root
t_shm dax
TMP_FS=$(stat -f -c %T /tmp)

check() {  # check DIR CACHE FSTYPE: the three views agree on "no" and name FSTYPE
  local dir=$1 cache=$2 fstype=$3 text block json stats
  text=$("$CACHEMAX" status)
  block=$(grep -A3 "^$dir\$" <<< "$text") || fail "status does not list $dir: $text"
  grep -qE "^  cache dax: +no \(.*$fstype.* without dax" <<< "$block" \
    || fail "status does not say the cache of $dir is not DAX on $fstype: $text"
  json=$("$CACHEMAX" status --json)
  python3 - "$json" "$dir" "$fstype" <<'EOF' || fail "status --json: $json"
import json, sys
doc, d, fstype = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
entries = [e for e in doc["directories"] if e["dir"] == d]
assert len(entries) == 1, entries
e = entries[0]
assert e["cache_dax"] is False, e
assert fstype in e["cache_dax_reason"] and "without dax" in e["cache_dax_reason"], e
EOF
  stats=$("$CACHEMAX" stats "$dir" --json)
  python3 - "$stats" "$fstype" <<'EOF' || fail "stats --json of $dir: $stats"
import json, sys
s, fstype = json.loads(sys.argv[1]), sys.argv[2]
assert s["cache_dax"] is False, s["cache_dax"]
assert fstype in s["cache_dax_why"] and "without dax" in s["cache_dax_why"], s["cache_dax_why"]
EOF
  echo "$dir: cache $cache on $fstype: not DAX in status, status --json and stats --json"
}

mkdir -p "$SHM/data" "$T_SCRATCH/data"
echo a > "$SHM/data/a"
echo b > "$T_SCRATCH/data/b"
t_mount "$SHM/data" "$SHM/cache"
t_mount "$T_SCRATCH/data" "$T_SCRATCH/cache"
check "$SHM/data" "$SHM/cache" tmpfs
case $TMP_FS in
  ext2/ext3) TMP_FS=ext4 ;;   # stat -f names ext4 by its magic number's old name
esac
check "$T_SCRATCH/data" "$T_SCRATCH/cache" "$TMP_FS"
t_unmount "$SHM/data"
t_unmount "$T_SCRATCH/data"
