#!/usr/bin/env bash
# What the catalog's seal takes for "the same, unchanged file system" (issue 14 review;
# docs/ARCHITECTURE.md "The seal"):
# 1. Another disk given the same device numbers is not the same disk: a read-only original
#    (its device never written, so both write counters stay 0) is sealed at a stop; its loop
#    device is detached and another image attached to the same loop device; the next start
#    must not take the seal as valid (the disk's diskseq and the file system's UUID differ),
#    and lists the new disk. Before, boot, device numbers, root (ext4's is inode 2 on every
#    disk) and counters all matched, and the old disk's listings were served.
# 2. An ext4 whose journal is on another device is never sealed (syncfs commits to the journal
#    device; the original's own counters may move only later): said by status and the log.
# 3. The same for an XFS with its log on another device; an XFS with an internal log is sealed.
# 4. A start with mounts below the original (--allow-submounts) takes no seal as valid: a tmpfs
#    mounted below the original while the daemon was down wrote nothing to its device, and the
#    restarted mount served the directory it covers (its mode and names: stop 31's review, F4).
# 5. No seal while a writer of the original is still open at the stop: a Linux AIO write behind
#    (no FAN_MODIFY) whose writer closes after the stop was sealed over, and the next start
#    served the old size, mtime and bytes for good (review F2).
. "$(dirname "$0")/lib.sh"
need_root
t_shm cache
C=$SHM/cache C2=$SHM/cache2
D=$T_SCRATCH/orig
mkdir -p "$D" "$T_SCRATCH/srcA/d" "$T_SCRATCH/srcB/d"
for i in 1 2 3 4 5; do echo "a$i" > "$T_SCRATCH/srcA/d/a$i"; done
for i in 1 2 3; do echo "b$i" > "$T_SCRATCH/srcB/d/b$i"; done
mkimg() {  # mkimg IMAGE SOURCE: an ext4 image holding SOURCE's tree
  truncate -s 32M "$1"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -d "$2" "$1"
}
mkimg "$T_SCRATCH/A.img" "$T_SCRATCH/srcA"
mkimg "$T_SCRATCH/B.img" "$T_SCRATCH/srcB"
seal() { "$CACHEMAX" stats "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }

# 1. the same device numbers, another disk
L=$(losetup -f --show -r --direct-io=on "$T_SCRATCH/A.img")
T_LOOPS+=("$L")
mount -o ro,noload "$L" "$D"
T_BINDS+=("$D")
sleep 2.2  # listings younger than 2 s are not recorded
t_mount "$D" "$C" --meta-catalog
ls -lR "$D" > /dev/null
t_unmount "$D"
[ -f "$C/cachemax-v1/catalog/seal" ] || fail "no seal after a clean stop of a read-only original"
grep -q '^diskseq [1-9]' "$C/cachemax-v1/catalog/seal" || fail "the seal has no diskseq: $(cat "$C/cachemax-v1/catalog/seal")"
grep -q '^uuid [0-9a-f]\{32\}$' "$C/cachemax-v1/catalog/seal" || fail "the seal has no file system UUID"
echo "sealed: $(grep -E '^(diskseq|sectors)' "$C/cachemax-v1/catalog/seal" | tr '\n' ' ')"
umount "$D"
losetup -d "$L"
losetup -r --direct-io=on "$L" "$T_SCRATCH/B.img" 2>/dev/null || skip "$L was taken by another program meanwhile"
mount -o ro,noload "$L" "$D"
t_mount "$D" "$C" --meta-catalog
s=$(seal "$D")
[ "$s" = "void: another device or directory" ] || fail "another disk at the same device numbers: seal '$s'"
[ "$(ls "$D/d" | tr '\n' ' ')" = "b1 b2 b3 " ] || fail "another disk at the same device numbers lists '$(ls "$D/d" | tr '\n' ' ')'"
t_unmount "$D"
umount "$D"

# 2. an ext4 with an external journal
truncate -s 8M "$T_SCRATCH/J.img"
mke2fs -q -F -O journal_dev -b 4096 "$T_SCRATCH/J.img"
JL=$(losetup -f --show "$T_SCRATCH/J.img")
T_LOOPS+=("$JL")
truncate -s 32M "$T_SCRATCH/E.img"
mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0 -J device="$JL" "$T_SCRATCH/E.img"
EL=$(losetup -f --show "$T_SCRATCH/E.img")
T_LOOPS+=("$EL")
D2=$T_SCRATCH/ext
mkdir -p "$D2"
mount -o journal_path="$JL" "$EL" "$D2" 2>/dev/null || mount "$EL" "$D2" || skip "cannot mount an ext4 with an external journal here"
T_BINDS+=("$D2")
mkdir "$D2/d"; touch "$D2/d/f"; sync; sleep 2.2
t_mount "$D2" "$C2" --meta-catalog
s=$(seal "$D2")
case "$s" in "void: the original's ext4 journal is on another device"*) ;;
  *) fail "an external journal: seal '$s'";; esac
grep -q "no seal: the original's ext4 journal is on another device" "$CACHEMAX_RUN_DIR"/*.log ||
  fail "no log line says why the seal is refused"
ls -lR "$D2" > /dev/null
t_unmount "$D2"
[ ! -f "$C2/cachemax-v1/catalog/seal" ] || fail "an original with an external journal was sealed"
t_mount "$D2" "$C2" --meta-catalog
# Refused again for its own reason at the next start (not merely for want of a seal file).
s=$(seal "$D2")
case "$s" in "void: the original's ext4 journal is on another device"*) ;;
  *) fail "an external journal, second start: seal '$s'";; esac
t_unmount "$D2"

# 2b. an ext4 with 128-byte inodes: whole-second times, a change within the same second leaves
# a directory's ctime as it was (a review reproduced an ACL not enforced after a sealed
# restart): refused
truncate -s 32M "$T_SCRATCH/I.img"
mkfs.ext4 -q -F -I 128 -E lazy_itable_init=0,lazy_journal_init=0 "$T_SCRATCH/I.img" 2>/dev/null
IL=$(losetup -f --show "$T_SCRATCH/I.img")
T_LOOPS+=("$IL")
D3=$T_SCRATCH/ext128
mkdir -p "$D3"; mount "$IL" "$D3"; T_BINDS+=("$D3")
mkdir "$D3/d"; touch "$D3/d/f"; sync; sleep 2.2
t_mount "$D3" "$SHM/c3" --meta-catalog
s=$(seal "$D3")
case "$s" in "void: the original's ext file system keeps whole-second times"*) ;;
  *) fail "an ext4 with 128-byte inodes: seal '$s'";; esac
ls -lR "$D3" > /dev/null
t_unmount "$D3"
[ ! -f "$SHM/c3/cachemax-v1/catalog/seal" ] || fail "an original with whole-second times was sealed"

# 3. XFS: an internal log is sealed, an external one refused
command -v mkfs.xfs > /dev/null || { echo "no mkfs.xfs (xfsprogs): XFS not checked"; exit 0; }
grep -qw xfs /proc/filesystems || { echo "no XFS in this kernel: XFS not checked"; exit 0; }
# xfs_check LABEL SEALED MOUNT_OPTIONS: a fresh XFS (image X.img on loop $XL, log
# image XL.img on loop $LL) accelerated, listed and stopped; SEALED: yes or no
xfs_check() {
  local dir=$T_SCRATCH/xfs-$1 cache=$SHM/cache-xfs-$1
  mkdir -p "$dir"
  mount $3 "$XL" "$dir" || fail "$1: cannot mount the XFS"
  T_BINDS+=("$dir")
  mkdir "$dir/d"; touch "$dir/d/f"; sync; sleep 2.2
  t_mount "$dir" "$cache" --meta-catalog
  ls -lR "$dir" > /dev/null
  s=$(seal "$dir")
  t_unmount "$dir"
  if [ "$2" = yes ]; then
    [ -f "$cache/cachemax-v1/catalog/seal" ] || fail "$1: no seal after a clean stop (seal was '$s')"
  else
    case "$s" in "void: the original's XFS has its log on another device") ;; *) fail "$1: seal '$s'";; esac
    [ ! -f "$cache/cachemax-v1/catalog/seal" ] || fail "$1: sealed"
  fi
  umount "$dir"
}
truncate -s 320M "$T_SCRATCH/X.img"; truncate -s 80M "$T_SCRATCH/XL.img"
XL=$(losetup -f --show "$T_SCRATCH/X.img"); T_LOOPS+=("$XL")
LL=$(losetup -f --show "$T_SCRATCH/XL.img"); T_LOOPS+=("$LL")
mkfs.xfs -q -f "$XL"
xfs_check internal-log yes ""
mkfs.xfs -q -f -l logdev="$LL" "$XL"
xfs_check external-log no "-o logdev=$LL"
echo "XFS: internal log sealed, external log refused"

# 4. mounts below the original at the start: the seal is void
S=$T_SCRATCH/sub-orig
t_hdd_make 64M "$S"
mkdir -p "$S/sub"; echo under > "$S/sub/hidden_under_mount"; chmod 711 "$S/sub"; sync
t_mount "$S" "$SHM/cache-sub" --meta-catalog --allow-submounts > /dev/null
for _ in 1 2 3; do ls -laR "$S" > /dev/null; done
t_unmount "$S" > /dev/null
[ -f "$SHM/cache-sub/cachemax-v1/catalog/seal" ] || fail "(4) no seal after a clean stop with no mount below"
mount -t tmpfs -o mode=755 cmtest-sub "$S/sub"; T_BINDS+=("$S/sub"); echo on > "$S/sub/on_tmpfs"
t_mount "$S" "$SHM/cache-sub" --meta-catalog --allow-submounts > /dev/null
s=$(seal "$S")
case "$s" in "void: mounts below the original"*) ;; *) fail "(4) seal '$s' with a tmpfs mounted below the original while the daemon was down";; esac
[ "$(stat -c %a "$S/sub")" = 755 ] && [ "$(ls "$S/sub")" = on_tmpfs ] ||
  fail "(4) a tmpfs mounted below the original while the daemon was down is not what the mount shows: mode $(stat -c %a "$S/sub"), names $(ls "$S/sub" | tr '\n' ' ')"
t_unmount "$S" > /dev/null
umount "$S/sub"
echo "a mount made below the original while the daemon was down: seal void, the mount seen"

# 5. a writer open at the stop: no seal
AIO=$TOOLS/integ/aiowrite
[ -x "$AIO" ] || fail "missing $AIO (make all)"
W=$T_SCRATCH/w-orig WB=$T_SCRATCH/w-back
t_hdd_make 64M "$W"
mkdir "$W/dir"; printf 'old content 0123\n' > "$W/dir/same"; printf 'old\n' > "$W/dir/grow"; sync
t_backdoor "$W" "$WB"
t_mount "$W" "$SHM/cache-w" --meta-catalog > /dev/null
for _ in 1 2 3; do ls -lR "$W" > /dev/null; cat "$W/dir/same" "$W/dir/grow" > /dev/null; done
"$AIO" "$WB/dir/same" 0 NEW 600 & w1=$!; T_PIDS+=($w1)   # closed (killed) after the stop
"$AIO" "$WB/dir/grow" 4 appended 600 & w2=$!; T_PIDS+=($w2)
for _ in $(seq 1 100); do   # both writes done (the sizes behind moved)
  [ "$(stat -c %s "$WB/dir/grow")" = 12 ] && [ "$(head -c 3 "$WB/dir/same")" = NEW ] && break
  sleep 0.05
done
t_unmount "$W" > /dev/null
[ ! -f "$SHM/cache-w/cachemax-v1/catalog/seal" ] || fail "(5) sealed while an AIO writer of the original was open"
grep -q "metadata catalog not sealed: .*aiowrite" "$CACHEMAX_RUN_DIR"/*.log || fail "(5) the log does not say why no seal was written"
kill "$w1" "$w2"; wait "$w1" "$w2" 2>/dev/null || true
t_mount "$W" "$SHM/cache-w" --meta-catalog > /dev/null
for f in same grow; do
  [ "$(stat -c '%s %.9Y' "$W/dir/$f")" = "$(stat -c '%s %.9Y' "$WB/dir/$f")" ] && cmp -s "$W/dir/$f" "$WB/dir/$f" ||
    fail "(5) dir/$f after the restart: $(stat -c '%s %.9Y' "$W/dir/$f") where the original has $(stat -c '%s %.9Y' "$WB/dir/$f") (seal: $(seal "$W"))"
done
t_unmount "$W" > /dev/null
echo "a writer open at the stop: not sealed, its writes seen after the restart"
exit 0
