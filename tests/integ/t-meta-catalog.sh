#!/usr/bin/env bash
# The metadata catalog wired in (issue 14; docs/ARCHITECTURE.md "The metadata catalog", "The
# seal"). On the HDD-like original of lib.sh (loop ext4; reads counted in /sys/block/loopN/stat):
# after a warm-up, a clean stop, a page-cache drop and a start with a valid seal, find, stat of
# every file, du and ls -R read nothing from the device, and print what the original holds; a
# change behind the mount while it runs is still seen; a chmod, a create and an append made while
# the daemon was down void the seal and are all seen; under the seal, a directory's own changes
# behind the mount and an append through it are seen. On tmpfs (no seal possible): listings come
# from the catalog after a restart where the directory did not change, and files created,
# deleted and renamed while the daemon was down are seen.
. "$(dirname "$0")/lib.sh"
need_root
t_shm meta
D=$T_SCRATCH/hdd BACK=$T_SCRATCH/back C=$SHM/cache
t_hdd_make 64M "$D"
for i in 1 2 3 4; do
  mkdir -p "$D/d$i/sub"
  for j in $(seq 1 60); do echo "file $i $j" > "$D/d$i/f$j"; done
  echo "deep $i" > "$D/d$i/sub/deep"
done
ln -s d1/f1 "$D/link"
sync
t_backdoor "$D" "$BACK"
sleep 2.2  # the catalog records no listing younger than 2 s (the racily-clean rule)
# No scrub during the walks: its reads of the device would count against the sealed limits.
export CACHEMAX_SCRUB_DELAY_MS=600000

R() { t_hdd_reads "$T_HDD_DEV"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
stats() { "$CACHEMAX" stats "$D" --json; }
seal() { stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }
hits() { stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["hits"])'; }
# what a walk prints (names, modes, sizes, links): through the mount and on the original
walk() { (cd "$1" && find . -printf '%p %M %s %n %U %G %T@ %l\n' | sort); }

# Off by default (experimental): no catalog, nothing written for it.
t_mount "$D" "$C"
on=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["on"])')
[ "$on" = False ] || fail "the catalog is on without --meta-catalog"
"$CACHEMAX" status | t_grep "metadata: *no catalog, off (experimental: start --meta-catalog)" || fail "status without --meta-catalog: $("$CACHEMAX" status | grep metadata)"
ls -lR "$D" > /dev/null
[ ! -e "$C/cachemax-v1/catalog" ] || [ -z "$(find "$C/cachemax-v1/catalog" -name '*.dir')" ] || fail "records written without --meta-catalog"
t_unmount "$D"

t_mount "$D" "$C" --meta-catalog
[ "$(seal)" = "void: no seal (first start, or the last stop was not clean)" ] || fail "first start: seal '$(seal)'"
"$CACHEMAX" status | t_grep "metadata: *catalog, seal void" || fail "status has no catalog line: $("$CACHEMAX" status)"
# warm-up: every directory listed (recorded), every file stat'ed
walk "$D" > "$T_SCRATCH/w0"; ls -lR "$D" > /dev/null
t_unmount "$D"
[ -f "$C/cachemax-v1/catalog/seal" ] || fail "no seal after a clean stop"
walk "$D" > "$T_SCRATCH/orig"
diff "$T_SCRATCH/w0" "$T_SCRATCH/orig" >/dev/null || fail "the warm walk differs from the original"

# round 1: nothing changed while down -> valid seal, no device read for metadata
drop
t_mount "$D" "$C" --meta-catalog
[ ! -f "$C/cachemax-v1/catalog/seal" ] || fail "the seal was not removed at the start"
[ "$(seal)" = valid ] || fail "nothing changed while down, yet the seal is '$(seal)'"
"$CACHEMAX" status | t_grep "metadata: *catalog, seal valid" || fail "status: $("$CACHEMAX" status | grep metadata)"
r0=$(R)
find "$D" > /dev/null; r1=$(R)
find "$D" ! -type l -exec stat {} + > /dev/null; r2=$(R)
du -s "$D" > /dev/null; r3=$(R)
ls -R "$D" > /dev/null; r4=$(R)
walk "$D" > "$T_SCRATCH/w1"; r5=$(R)
echo "sealed start, device reads: find $((r1-r0)), stat $((r2-r1)), du $((r3-r2)), ls -R $((r4-r3)), find -printf $((r5-r4))"
# Files' attributes come from the catalog, and a directory's too while its own record carries
# the same times (its own changes drop that record): nothing is read (measured 0; when
# directories were confirmed by a stat by handle, 1 to 17 reads for 9 directories, and about
# 2.5 per directory on meta-bench's tree), against one or more per file (240) without the
# catalog. A few reads are allowed for noise.
sealed_max=3
[ $((r4 - r0)) -le "$sealed_max" ] || fail "with a valid seal the metadata walk read the device $((r4 - r0)) times"
# readlink opens the symlink's inode (its target is not in the catalog): one symlink here
[ $((r5 - r4)) -le 1 ] || fail "find -printf read the device $((r5 - r4)) times (one symlink)"
diff "$T_SCRATCH/w1" "$T_SCRATCH/orig" || fail "the sealed walk differs from the original"
[ "$(hits)" -gt 0 ] || fail "no catalog hits"
a=$(R); ls -lR "$D" > /dev/null; b=$(R)
echo "ls -lR after that: $((b - a)) device reads (its getxattr of each file opens the file)"
# a change behind the mount while the seal holds: seen (the watcher drops the record)
drop
chmod 600 "$BACK/d2/f7"; echo more >> "$BACK/d3/f8"; touch "$BACK/d4/new"
sleep 1
[ "$(stat -c %a "$D/d2/f7")" = 600 ] || fail "a chmod behind the sealed mount not seen: $(stat -c %a "$D/d2/f7")"
[ "$(stat -c %s "$D/d3/f8")" = "$(stat -c %s "$BACK/d3/f8")" ] || fail "an append behind the sealed mount not seen"
[ -e "$D/d4/new" ] || fail "a create behind the sealed mount not seen"
ls "$D/d4" | t_grep -x new || fail "a create behind the sealed mount not listed"
t_unmount "$D"

# round 2: a chmod, a create and an append while down -> void seal, every change seen
drop
chmod 640 "$D/d1/f3"; touch "$D/d2/made-while-down"; echo appended >> "$D/d3/f5"
walk "$D" > "$T_SCRATCH/orig2"
sleep 2.2  # so that the walk below records every listing (none younger than 2 s)
t_mount "$D" "$C" --meta-catalog
case "$(seal)" in "void: the original's device was written while the daemon was down") ;;
  *) fail "changes while down, yet the seal is '$(seal)'";; esac
walk "$D" > "$T_SCRATCH/w2"
diff "$T_SCRATCH/w2" "$T_SCRATCH/orig2" || fail "changes made while the daemon was down not all seen"
[ "$(stat -c %a "$D/d1/f3")" = 640 ] || fail "stale mode after a chmod while down"
[ "$(cat "$D/d3/f5" | tail -1)" = appended ] || fail "stale content after an append while down"
t_unmount "$D"
# round 3: the catalog rebuilt in round 2 is sealed again
drop
t_mount "$D" "$C" --meta-catalog
[ "$(seal)" = valid ] || fail "round 3: seal '$(seal)'"
r0=$(R); find "$D" ! -type l -exec stat {} + > /dev/null; r1=$(R); walk "$D" > "$T_SCRATCH/w3"
diff "$T_SCRATCH/w3" "$T_SCRATCH/orig2" || fail "round 3 walk differs"
[ $((r1 - r0)) -le "$sealed_max" ] || fail "round 3: the sealed walk read the device $((r1 - r0)) times (seal now: $(seal))"
t_unmount "$D"

# round 4, under the seal, with nothing in the kernel's caches (a fresh start), so that every
# check below is a LOOKUP answered from a record (with the kernel's dentries kept, these checks
# once passed on code that served them stale):
# - a directory's own changes behind the mount: a chmod, a name made in it. Its attributes sit
#   in its parent's record, and its events name the directory itself, not the parent: they
#   must come from a stat of the directory (fails if directories' recorded attributes are
#   trusted under the seal: attrs_trusted without its S_ISDIR test);
# - a file appended through the mount and then forgotten by the kernel: the daemon's write goes
#   to a file it opened by handle, whose event has no name, so its directory's record keeps the
#   old size: the seal must go (fails if fs_catalog_nameless_change does nothing).
drop
t_mount "$D" "$C" --meta-catalog
[ "$(seal)" = valid ] || fail "round 4: seal '$(seal)'"
touch "$BACK/d4/another"   # an event on d4 only: the root's record, holding d4's attributes, stays
sleep 1
[ "$(seal)" = valid ] || fail "round 4: a create behind the mount voided the seal: '$(seal)'"
[ "$(stat -c %Y.%h "$D/d4")" = "$(stat -c %Y.%h "$BACK/d4")" ] || fail "a directory's mtime after a create in it, behind the sealed mount: $(stat -c %Y.%h "$D/d4") vs $(stat -c %Y.%h "$BACK/d4")"
chmod 700 "$BACK/d2"
sleep 1
[ "$(seal)" = valid ] || fail "round 4: a chmod behind the mount voided the seal: '$(seal)'"
[ "$(stat -c %a "$D/d2")" = 700 ] || fail "a directory chmod behind the sealed mount not seen: $(stat -c %a "$D/d2")"
echo through >> "$D/d1/f9"
sleep 1; drop; sleep 1; drop; sleep 0.5   # the kernel forgets d1/f9: its next stat is a LOOKUP
[ "$(stat -c %s "$D/d1/f9")" = "$(stat -c %s "$BACK/d1/f9")" ] || fail "an append through the sealed mount, after a cache drop: size $(stat -c %s "$D/d1/f9") vs $(stat -c %s "$BACK/d1/f9")"
t_unmount "$D"

# tmpfs: never sealed; listings from the catalog while their stamp holds
t_shm tmpfs
T=$SHM/orig C2=$SHM/cache2
mkdir -p "$T"
for i in 1 2 3; do mkdir "$T/d$i"; for j in $(seq 1 30); do echo "$i $j" > "$T/d$i/f$j"; done; done
sleep 2.2
t_mount "$T" "$C2" --meta-catalog
walk "$T" > /dev/null
t_unmount "$T"
touch "$T/d1/created"; rm "$T/d2/f4"; mv "$T/d3/f5" "$T/d3/renamed"; chmod 600 "$T/d3/f6"
walk "$T" > "$T_SCRATCH/torig"
t_mount "$T" "$C2" --meta-catalog
st=$("$CACHEMAX" stats "$T" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])')
case "$st" in "void: the original is not on a block device"*) ;; *) fail "tmpfs seal: '$st'";; esac
walk "$T" > "$T_SCRATCH/tw"
diff "$T_SCRATCH/tw" "$T_SCRATCH/torig" || fail "tmpfs: changes made while the daemon was down not all seen"
h=$("$CACHEMAX" stats "$T" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["hits"])')
[ "$h" -gt 0 ] || fail "tmpfs: no listing served from the catalog after the restart"
echo "tmpfs after a restart: $h catalog hits"
exit 0
