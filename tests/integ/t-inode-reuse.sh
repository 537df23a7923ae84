#!/usr/bin/env bash
# An inode number reused behind the cache does not take an open file's cache copy away
# (docs/ARCHITECTURE.md "Cache objects of reused inode numbers"). A file F, complete in the
# cache, is held open through the mount (a passthrough hit: the kernel reads the cache copy),
# opened from a sealed catalog (--meta-catalog: no fd of the daemon's on the original, so F's
# inode is freed at its delete; an ordinary open holds the node's O_PATH fd until its release,
# which keeps the number from being reused, with or without passthrough). F is deleted behind
# the cache (a bind mount of the original made before the start) and a new file G created
# behind it gets F's inode number (a tiny ext4 whose inodes are all taken, so the create must
# reuse F's; checked with stat). G opened and read through the mount gives G's bytes, and F's
# open file still gives F's bytes, as on the original (an unlinked open file keeps its data).
# G's open used to find F's cache object under the same key (dev, ino), see another
# fingerprint and reset it in place: F's reader then read G's bytes, or nothing.
. "$(dirname "$0")/lib.sh"
need_root
command -v mkfs.ext4 > /dev/null || skip "no mkfs.ext4"
t_shm reuse
D=$T_SCRATCH/orig BACK=$T_SCRATCH/back

# A tiny ext4 with 32 inodes, on a loop device (detached at exit), mounted at $D.
img=$T_SCRATCH/tiny.img
truncate -s 16M "$img"
mkfs.ext4 -q -F -N 32 -E lazy_itable_init=0,lazy_journal_init=0 "$img"
dev=$(losetup -f --show "$img")
T_LOOPS+=("$dev")
mkdir -p "$D"
mount "$dev" "$D"
T_BINDS+=("$D")
t_backdoor "$D" "$BACK"

counter() { t_read_counter "$D" "$1"; }
complete() { t_complete "$D" "$1"; }

# The reader: holds F open through the mount (F complete in the cache), deletes F behind the
# cache, creates G behind it until G has F's inode number, reads G through the mount, then
# reads F again through its open file (its page cache dropped first: the read reaches the
# cache copy).
cat > "$T_SCRATCH/reuse.py" <<'EOF'
import errno, os, sys, time
mnt, back, name_f, name_g = sys.argv[1:5]
G = os.urandom(200000)
with open(os.path.join(back, name_f), "rb") as f:
    F = f.read()
ino = os.stat(os.path.join(back, name_f)).st_ino
def read_all(fd, size):
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    out = b""
    while len(out) < size:
        b = os.pread(fd, size - len(out), len(out))
        if not b:
            break
        out += b
    return out
fd = os.open(os.path.join(mnt, name_f), os.O_RDONLY)
assert read_all(fd, len(F)) == F, "F read through the mount before the delete differs"
os.unlink(os.path.join(back, name_f))
gpath = os.path.join(back, name_g)
for attempt in range(100):
    try:
        with open(gpath, "wb") as g:
            g.write(G)
        break
    except OSError as e:   # ENOSPC: F's inode is not free yet (someone still holds it)
        if e.errno != errno.ENOSPC:
            raise
        time.sleep(0.1)
else:
    print("SKIPREUSE: no inode came free for G in 10 s"); sys.exit(3)
if os.stat(gpath).st_ino != ino:
    print("SKIPREUSE: G got inode %d, not F's %d" % (os.stat(gpath).st_ino, ino)); sys.exit(3)
print("G reuses F's inode number %d" % ino)
time.sleep(0.3)   # the watcher has seen the delete and the create
with open(os.path.join(mnt, name_g), "rb") as g:
    got = g.read()
if got != G:
    print("FAIL: G through the mount: %d bytes, %s" % (len(got), "equal" if got == G else "not G's")); sys.exit(1)
got = read_all(fd, len(F))
st = os.fstat(fd)
if got != F:
    print("FAIL: F's open file read %d bytes (fstat size %d) after G's open, not F's %d" % (len(got), st.st_size, len(F))); sys.exit(1)
with open(os.path.join(mnt, name_g), "rb") as g:   # again, once G's copy may be complete
    got = g.read()
if got != G:
    print("FAIL: G through the mount (second read) differs"); sys.exit(1)
if read_all(fd, len(F)) != F:
    print("FAIL: F's open file differs after G's second read"); sys.exit(1)
os.close(fd)
print("F's open file kept F's bytes; G read as G")
EOF

seal() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }

# F, and every other free inode taken by empty files: the next create after F's delete must
# reuse F's number.
head -c 300000 /dev/urandom > "$BACK/F"
n=0
while ( : > "$BACK/fill$n" ) 2>/dev/null; do n=$((n + 1)); done
rm -f "$BACK/fill$n"
[ "$(stat -f -c %d "$BACK")" = 0 ] || fail "free inodes left on the tiny ext4"

run() {   # run MODE [start options...]
  local mode=$1 C=$SHM/cache-$1 hits opens rc=0; shift
  sync
  sleep 2.2   # the catalog records no listing younger than 2 s (the racily-clean rule)
  # Warm-up: the listing recorded, F complete in the cache; then a clean stop seals the
  # catalog, and the next start opens F from it, without an fd on the original (the daemon's
  # fd would keep F's inode from being freed at its delete).
  t_mount "$D" "$C" --meta-catalog "$@"
  ls -lR "$D" > /dev/null
  cat "$D/F" > /dev/null; cat "$D/F" > /dev/null
  complete "$D/F"
  fsfreeze -f "$BACK" && fsfreeze -u "$BACK"
  t_unmount "$D"
  t_mount "$D" "$C" --meta-catalog "$@"
  [ "$(seal)" = valid ] || skip "no valid seal after a clean stop ($mode): '$(seal)'"
  hits=$(counter passthrough_opens_cache) opens=$(counter catalog_opens)
  python3 "$T_SCRATCH/reuse.py" "$D" "$BACK" F G || rc=$?
  [ $rc = 3 ] && skip "the inode number was not reused ($mode)"
  [ $rc = 0 ] || fail "$mode: an open file's cache copy was taken by a file reusing its inode number"
  [ "$(counter catalog_opens)" -gt "$opens" ] || fail "$mode: F was not opened from the catalog"
  [ "$(counter passthrough_opens_cache)" -gt "$hits" ] || fail "F's open was not a passthrough hit"
  t_unmount "$D"
  echo "$mode: ok"
}
run passthrough
echo "inode numbers reused behind the cache: open files keep their bytes"
