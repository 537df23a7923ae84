#!/usr/bin/env bash
# OPEN and GETATTR of cached files under a valid seal read nothing of the original (issue 14
# target b; docs/ARCHITECTURE.md "The metadata catalog", "File attributes"). On the HDD-like
# original of lib.sh (loop ext4, reads counted in /sys/block/loopN/stat): after a warm-up that
# completes every file's cache copy, a clean stop, a page-cache drop and a start with a valid
# seal, cat of every file and tar of the tree read the device at most 3 times in all (each open
# used to read the original's inode: open_by_handle_at of its O_PATH fd and an fstat), and give
# the original's bytes. Changes behind the mount after the start are still seen: a same-size
# overwrite at the very next open (the watcher's queue is not empty yet: the original is
# asked), an append and a chmod within a second, and a write through a shared mapping, which
# raises no FAN_MODIFY, once its writer closed the file (FAN_CLOSE_WRITE). ls -lR then reads
# the device a few times, not once per file or directory (its xattr requests answered from
# what the catalog knows: the "no xattrs" flag of files, directories and symlinks). An xattr
# set behind on a directory is seen: at once (the watcher's queue is not empty), and after a
# stop (the seal is void).
. "$(dirname "$0")/lib.sh"
need_root
t_shm metaopen
D=$T_SCRATCH/hdd BACK=$T_SCRATCH/back C=$SHM/cache
t_hdd_make 64M "$D"
# No read-ahead of inode tables: one device read per table block (16 inodes) an open of the
# original costs, instead of a 128 KiB read-ahead that takes this whole small tree in at once
# (the daemon's start reads the root's inode). Local to this file system (sysfs of its device).
echo 0 > "/sys/fs/ext4/$(basename "$T_HDD_DEV")/inode_readahead_blks"
DIRS=8 PER=60
for i in $(seq 1 $DIRS); do
  mkdir -p "$D/d$i"
  for j in $(seq 1 $PER); do printf 'file %d %d %0200d\n' "$i" "$j" 0 > "$D/d$i/f$j"; done
done
# A tree of directories: SUBS directories, each with 15 empty files after it so that no two
# directories' inodes share an inode-table block (4 inodes of 256 bytes a 1 KiB block in this
# small ext4, 16 in a 4 KiB one), and a symlink.
SUBS=48
for i in $(seq 1 $SUBS); do
  mkdir -p "$D/t/s$i"
  for j in $(seq 1 15); do : > "$D/t/s$i/e$j"; done
done
ln -s ../d1/f1 "$D/t/s1/link"
mkdir "$D/q"   # a directory the ls -lR below leave out (-I q): asked for xattrs only at the end
# Read once here: relatime updates the atime of a file at its first read, and the mount serves
# empty files without reading the original, so the cat of the original after the stop would
# write their inodes (and void the seal).
cat "$D"/t/*/e* > /dev/null
# xattrs set before the warm-up: the catalog lists these two files as having some.
setfattr -n user.tag -v kept "$D/d7/f7"
python3 - "$D/d7/f7" <<'PY'   # an access ACL: owner rw, user 65534 r, group r, mask r, other r
import os, struct, sys
e = lambda tag, perm, ident=0xffffffff: struct.pack("<HHI", tag, perm, ident)
acl = e(1, 6) + e(2, 4, 65534) + e(4, 4) + e(0x10, 4) + e(0x20, 4)
os.setxattr(sys.argv[1], "system.posix_acl_access", struct.pack("<I", 2) + acl)
PY
sync
t_backdoor "$D" "$BACK"
sleep 2.2  # the catalog records no listing younger than 2 s (the racily-clean rule)
# No CACHEMAX_SCRUB_DELAY_MS: under a valid seal the start schedules no scrub pass (it would
# read every object's inode from the original), checked below.

R() { t_hdd_reads "$T_HDD_DEV"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
counter() { t_read_counter "$D" "$1"; }
seal() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }
catall() { (cd "$1" && find . -type f | sort | xargs cat); }

t_mount "$D" "$C" --meta-catalog
# warm-up: every listing recorded, every file's copy completed (a first read fills in the
# background after the close; the fill queue may skip some: a second pass fills the rest)
ls -lR "$D" > /dev/null
for pass in 1 2 3; do catall "$D" > /dev/null; sleep 1; done
# and the fills settled (their count unchanged for 2 s; at most 30 s), then a last pass
last=$(counter fills) same=0
for i in $(seq 1 30); do
  sleep 1; now=$(counter fills)
  if [ "$now" = "$last" ]; then same=$((same + 1)); [ $same -ge 2 ] && break; else same=0; fi
  last=$now
done
catall "$D" > /dev/null
# The journal keeps the inode-table blocks it wrote (the tree, atimes of the warm-up) pinned in
# memory until a checkpoint, so no page-cache drop would make an open read them again: a freeze
# checkpoints it (written before the stop: the seal counts it).
fsfreeze -f "$BACK" && fsfreeze -u "$BACK"
t_unmount "$D"
[ -f "$C/cachemax-v1/catalog/seal" ] || fail "no seal after a clean stop"
catall "$BACK" > "$T_SCRATCH/orig"

drop
t_mount "$D" "$C" --meta-catalog
started=$(date +%s)
[ "$(seal)" = valid ] || fail "nothing changed while down, yet the seal is '$(seal)'"
files=$((DIRS * PER))
r0=$(R)
catall "$D" > "$T_SCRATCH/c1"; r1=$(R)
tar cf - -C "$D" . | wc -c > /dev/null; r2=$(R)
find "$D" -type f -exec stat -c '%s %a %Y %h' {} + > /dev/null; r3=$(R)
opens=$(counter catalog_opens)
echo "sealed start, device reads: cat of $files files $((r1 - r0)), tar $((r2 - r1)), stat after them $((r3 - r2)); catalog_opens $opens"
cmp -s "$T_SCRATCH/c1" "$T_SCRATCH/orig" || fail "the sealed cat differs from the original"
# Measured 0. Before the catalog answered OPEN, each open read the original's inode: one read
# per inode-table block here (no read-ahead), about 30.
[ $((r3 - r0)) -le 3 ] || fail "under a valid seal, cat, tar and stat of cached files read the original's device $((r3 - r0)) times"
[ "$opens" -ge "$files" ] || fail "catalog_opens is $opens, want >= $files (one per open of the cat)"
# ls -lR asks every file for two xattrs and every directory for three: the catalog knows which
# had none (fs_xattr.c seeds their state from it), so only the first real answer for each name
# and type (learned once per mount) may read the device, and the symlink's READLINK. First the
# tree of directories, whose files cat, tar and stat did not read (empty): each directory
# asked the original cost reads of its own (100 for the 48 without the directories' flag).
x0=$(counter xattr_absent_answers)
ls -lR -I q "$D/t" > /dev/null; r4=$(R)
x1=$(counter xattr_absent_answers)
echo "sealed start: ls -lR of $SUBS directories, device reads $((r4 - r3)), xattr requests answered without the original $((x1 - x0))"
[ $((r4 - r3)) -le 6 ] || fail "under a valid seal, ls -lR of $SUBS directories read the original's device $((r4 - r3)) times"
# The 15 empty files of each directory alone give 2 answers each: the directories' own (2 or 3
# each, less the first answers learned) must come on top (measured 1,582 and 1,757).
[ $((x1 - x0)) -ge $((SUBS * (15 * 2 + 2) - 10)) ] || fail "ls -lR of $SUBS directories: only $((x1 - x0)) xattr requests answered without the original"
# Then the whole tree: the 9 directories of before and every file. Without the files' flag:
# 133 reads (one listxattr per file through its O_PATH fd: open_by_handle_at reads its inode).
ls -lR -I q "$D" > /dev/null; r5=$(R)
x2=$(counter xattr_absent_answers)
echo "sealed start: ls -lR of $files files, device reads $((r5 - r4)), xattr requests answered without the original $((x2 - x1))"
[ $((r5 - r4)) -le 6 ] || fail "under a valid seal, ls -lR read the original's device $((r5 - r4)) times"
[ $((x2 - x1)) -ge $((files * 2)) ] || fail "ls -lR of $files files: only $((x2 - x1)) xattr requests answered without the original"

# The xattrs and the ACL set before the warm-up answer after the sealed start (the catalog's
# "no xattrs" flag is per file, not per listing), and an xattr set behind the mount on a file
# listed with none is seen within a second (its FAN_ATTRIB voids the kept flag).
[ "$(getfattr --only-values -n user.tag "$D/d7/f7" 2>/dev/null)" = kept ] || fail "an xattr set before the warm-up is not answered after the sealed start"
acl_of() { getfattr --only-values -e hex -n system.posix_acl_access "$1" 2>/dev/null; }
[ -n "$(acl_of "$BACK/d7/f7")" ] && [ "$(acl_of "$D/d7/f7")" = "$(acl_of "$BACK/d7/f7")" ] ||
  fail "an ACL set before the warm-up is not answered after the sealed start: '$(acl_of "$D/d7/f7")'"
getfattr -d "$D/d7/f8" > /dev/null 2>&1   # asked once with none: the answer learned for the name
setfattr -n user.behind -v seen "$BACK/d7/f8"
setfattr -n user.behind -v seen "$BACK/t/s2"   # a directory ls -lR found with none
sleep 1
[ "$(getfattr --only-values -n user.behind "$D/d7/f8" 2>/dev/null)" = seen ] || fail "an xattr set behind the sealed mount not seen after a second"
[ "$(getfattr --only-values -n user.behind "$D/t/s2" 2>/dev/null)" = seen ] || fail "an xattr set behind the sealed mount on a directory not seen after a second"
# A directory whose node the kernel holds (from the record) but whose xattrs were never asked:
# an xattr set behind is listed at once, before the watcher's 20 ms pause is over (its queue
# is not empty: the catalog's flag is not used, the original is asked).
stat "$D/q" > /dev/null
setfattr -n user.behind -v now "$BACK/q"
getfattr -d "$D/q" 2>/dev/null | t_grep '^user.behind="now"' || fail "an xattr set behind on a directory not listed at once: '$(getfattr -d "$D/q" 2>&1)'"

# A file the catalog opened (a passthrough hit: no fd on the original) and deleted behind while
# open behaves as on the original: fstat says nlink 0 (tail -f goes on; before, ESTALE: "Stale
# file handle"), fsync succeeds, its old bytes read on, and a copy_file_range from it copies
# them. A file created after the unlink that reuses the inode number: t-inode-reuse.
cp "$BACK/d6/f6" "$T_SCRATCH/f6"
python3 - "$D/d6/f6" "$BACK/d6/f6" "$T_SCRATCH/f6" "$D/d6/copy" <<'PY' || fail "a catalog-opened file deleted behind does not behave as on the original"
import os, sys, time
path, back, want, copy = sys.argv[1:]
old = open(want, "rb").read()
fd = os.open(path, os.O_RDONLY)
assert os.read(fd, 5) == old[:5]
# Made before the unlink: a file created after it may reuse the inode number (see below).
out = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.unlink(back)
time.sleep(1)  # the watcher voided the kept attributes and the kernel's
try:
    st = os.fstat(fd)
    assert st.st_nlink == 0 and st.st_size == len(old), "fstat: nlink %d size %d" % (st.st_nlink, st.st_size)
    os.fsync(fd)
    os.lseek(fd, 0, os.SEEK_SET)
    assert os.read(fd, 1 << 20) == old, "read: other bytes"
    # copy_file_range from it copies its bytes (our EXDEV: the kernel's splice fallback reads
    # the cache copy; before, ESTALE).
    done = 0
    while done < len(old):
        n = os.copy_file_range(fd, out, len(old) - done, done, done)
        assert n > 0, "copy_file_range: %d at %d" % (n, done)
        done += n
    os.close(out)
    got = open(copy, "rb").read()
    assert got == old, "copy_file_range: other bytes"
except (OSError, AssertionError) as e:
    print("deleted behind while open:", repr(e), file=sys.stderr)
    sys.exit(1)
os.close(fd)
PY
rm -f "$D/d6/copy"

# Changes behind the mount after the start. A same-size overwrite is seen at the very next
# open, before the watcher's 20 ms pause is over: its queue is not empty, so the open checks the
# original's fingerprint (without that check, the copy was served until the watcher came).
printf 'file 3 3 %0200d\n' 7 > "$BACK/d3/f3"   # same size, other bytes
cmp -s "$D/d3/f3" "$BACK/d3/f3" || fail "a same-size overwrite behind the sealed mount not seen at once"
echo appended >> "$BACK/d2/f2"
chmod 600 "$BACK/d4/f4"
sleep 1   # sizes and modes the kernel cached go with the watcher's invalidation, as ever
[ "$(stat -c %a "$D/d4/f4")" = 600 ] || fail "a chmod behind the sealed mount not seen: $(stat -c %a "$D/d4/f4")"
[ "$(stat -c %s "$D/d2/f2")" = "$(stat -c %s "$BACK/d2/f2")" ] || fail "the size after an append behind not seen"
cmp -s "$D/d2/f2" "$BACK/d2/f2" || fail "an append behind the sealed mount not seen after a second"
# A write through a shared mapping behind the mount: no FAN_MODIFY, only the writer's close.
python3 - "$BACK/d5/f5" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 0)
m[0:6] = b"MAPPED"
m.flush()
m.close()
os.close(fd)
PY
sleep 1
[ "$(head -c 6 "$D/d5/f5")" = MAPPED ] || fail "a write through a shared mapping behind the sealed mount not seen after its close: $(head -c 6 "$D/d5/f5")"
catall "$BACK" > "$T_SCRATCH/orig2"
catall "$D" > "$T_SCRATCH/c2"
cmp -s "$T_SCRATCH/c2" "$T_SCRATCH/orig2" || fail "after the changes behind, the mount's bytes differ from the original's"
# The scrub's first pass comes 10 s after a start (CACHE_SCRUB_DELAY_MS_DEFAULT), not after a
# sealed one.
while [ $(( $(date +%s) - started )) -lt 12 ]; do sleep 1; done
checked=$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["scrub_checked"])')
[ "$checked" = 0 ] || fail "the scrub examined $checked objects after a sealed start"
# An xattr set on a directory while the daemon is down (that directory listed with none): the
# next start finds the seal void, and the mount shows the xattr.
getfattr -d "$D/t/s3" > /dev/null 2>&1
t_unmount "$D"
setfattr -n user.down -v seen "$BACK/t/s3"
t_mount "$D" "$C" --meta-catalog
case $(seal) in valid) fail "an xattr was set while the daemon was down, yet the seal is valid";; esac
ls -lR "$D/t" > /dev/null
[ "$(getfattr --only-values -n user.down "$D/t/s3" 2>/dev/null)" = seen ] || fail "an xattr set on a directory while the daemon was down not seen"
t_unmount "$D"
exit 0
