#!/usr/bin/env bash
# A change that lands while the catalog reads a directory (issue 14 review; docs/ARCHITECTURE.md
# "The metadata catalog"): nothing read before the change may be stored or served as current
# after it. CACHEMAX_CATALOG_DELAY_MS holds the daemon between reading a directory (its record,
# or the original) and storing or serving what it read; in that window a file is changed behind
# the mount. A file the kernel did not hold yet has no node for the watcher to invalidate: the
# reply that makes its node must not carry the attributes read before the change (the kernel
# would keep them for a day). Checked for a listing of the original (READDIRPLUS), and under a
# valid seal for a LOOKUP and a READDIRPLUS answered from records. Also: a name replaced
# during a listing is seen as it is after it.
. "$(dirname "$0")/lib.sh"
need_root
D=$T_SCRATCH/orig BACK=$T_SCRATCH/back
t_shm cache
C=$SHM/cache
t_hdd_make 64M "$D"
for d in x y z; do mkdir "$D/$d"; echo "$d" > "$D/$d/f"; echo b > "$D/$d/b"; done
sync
t_backdoor "$D" "$BACK"
sleep 2.2  # listings younger than 2 s are not recorded
seal() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }
# race LABEL COMMAND CHANGE: COMMAND through the mount in the background, CHANGE behind it
# while the daemon holds what it read, then the watcher's events are let in
race() {
  bash -c "$2" > /dev/null 2>&1 &
  local p=$!
  sleep 0.5
  bash -c "$3"
  wait "$p" || true   # ls may find a listed name gone: fine
  sleep 1
}
same_mode() {
  [ "$(stat -c %a "$D/$1")" = "$(stat -c %a "$BACK/$1")" ] ||
    fail "$2: $1 has mode $(stat -c %a "$D/$1") through the mount, $(stat -c %a "$BACK/$1") on the original"
}

export CACHEMAX_CATALOG_DELAY_MS=1500
t_mount "$D" "$C" --meta-catalog
# 1. a listing of the original (READDIRPLUS) while a file in it is chmod'ed
race listing "ls -l '$D/x'" "chmod 600 '$BACK/x/f'"
same_mode x/f "a chmod behind the mount during a listing of the original"
# ... and while a name in it is replaced
race rename "ls -l '$D/x'" "mv '$BACK/x/b' '$BACK/x/f'"
[ ! -e "$D/x/b" ] || fail "x/b, renamed away behind the mount during a listing, is still there"
[ "$(stat -c %i "$D/x/f")" = "$(stat -c %i "$BACK/x/f")" ] || fail "x/f, replaced during a listing, has its old inode"
# warm-up: y and z recorded, then a clean stop seals the catalog
ls -lR "$D" > /dev/null
sleep 0.5
t_unmount "$D"
sync; echo 3 > /proc/sys/vm/drop_caches
t_mount "$D" "$C" --meta-catalog
[ "$(seal)" = valid ] || fail "the seal is '$(seal)' (the test needs a valid one)"
stat "$D/y" "$D/z" > /dev/null  # their own lookups (delayed too) out of the way
# 2. under the seal: a LOOKUP answered from y's record while y/f is chmod'ed
race lookup "stat '$D/y/f'" "chmod 600 '$BACK/y/f'"
same_mode y/f "a chmod behind the sealed mount during a lookup from the catalog"
# 3. under the seal: a READDIRPLUS answered from z's record while z/f is chmod'ed
race record "ls -l '$D/z'" "chmod 600 '$BACK/z/f'"
same_mode z/f "a chmod behind the sealed mount during a listing from the catalog"
t_unmount "$D"
exit 0
