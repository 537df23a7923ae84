#!/usr/bin/env bash
# Kernel caching stays coherent (issue 14): while fanotify watches the original, the kernel keeps
# names (also absent ones), attributes and directory listings until the daemon invalidates them.
# On a local original (tmpfs and ext4), every change made behind the cache (through a bind mount
# of the original made before the start) -- create, unlink, rename, chmod, utimens, append,
# replace by rename, mkdir, rmdir, hard link, symlink -- shows through the mount within 1 s: in
# the listing of a directory that was just listed, the attributes of a file whose attributes
# were just read, a name just looked up and found absent, and the bytes; an open reader's size
# and bytes never disagree. A watcher queue overflow (the queue made 64 events long) makes
# everything fresh too. Without fanotify, the options' timeouts still apply (1 s). The same
# checks run on a tmpfs original with start --openless, where the kernel keeps file pages
# across opens too.
. "$(dirname "$0")/lib.sh"
need_root
t_shm coherence

# checker.py MOUNT BACK LABEL: make each change in BACK after reading the mount's view, and wait
# (at most 1 s) until the mount's view equals the original's.
cat > "$T_SCRATCH/checker.py" <<'EOF'
import hashlib, mmap, os, stat, sys, time
mnt, back, label = sys.argv[1], sys.argv[2], sys.argv[3]
LIMIT = 1.0
worst = 0.0

def view(root, rel):
    """What a program sees of rel under root: a listing (each name's type, mode, size, nlink,
    mtime, and bytes or link target) or a stat of one name. A name that vanishes while it is
    read (a change in progress) is shown as such: the caller looks again."""
    try:
        return view_of(root, rel)
    except FileNotFoundError as e:
        return "vanished while read: %s" % e

def view_of(root, rel):
    p = os.path.join(root, rel)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return "absent"
    out = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, st.st_mtime_ns,
           st.st_uid, st.st_gid, xattrs(p))
    if stat.S_ISDIR(st.st_mode):
        return (out, tuple(sorted((n, view_of(root, os.path.join(rel, n))) for n in os.listdir(p))))
    if stat.S_ISLNK(st.st_mode):
        return (out, os.readlink(p))
    with open(p, "rb") as f:
        data = f.read()
    return (out, st.st_size, hashlib.sha1(data).hexdigest())

def xattrs(p):
    """Its xattrs, and the answers for the two names `ls -l` asks every file for (the daemon
    answers those from what it knows of an inode with none: fs_xattr.c)."""
    out = []
    try:
        for n in sorted(os.listxattr(p, follow_symlinks=False)):
            out.append((n, os.getxattr(p, n, follow_symlinks=False)))
    except OSError as e:
        out.append(("listxattr", e.errno))
    for n in ("security.selinux", "system.posix_acl_access"):
        try:
            out.append((n, os.getxattr(p, n, follow_symlinks=False)))
        except OSError as e:
            out.append((n, e.errno))
    return tuple(out)

def settle(what, rels):
    global worst
    t0 = time.monotonic()
    while True:
        diff = [r for r in rels if view(mnt, r) != view(back, r)]
        if not diff:
            dt = time.monotonic() - t0
            worst = max(worst, dt)
            print("%-8s %-34s %4d ms" % (label, what, dt * 1000))
            return
        if time.monotonic() - t0 > LIMIT:
            r = diff[0]
            short = lambda v: repr(v)[:600]
            sys.exit("%s: %s: after %.1f s the mount shows %s for %s, the original %s"
                     % (label, what, LIMIT, short(view(mnt, r)), r, short(view(back, r))))
        time.sleep(0.01)

def change(what, rels, fn):
    """Read rels through the mount (the kernel caches them), change behind, wait."""
    for r in rels:
        view(mnt, r)
    fn(lambda r: os.path.join(back, r))
    settle(what, rels)

def write(path, data):
    with open(path, "wb") as f:
        f.write(data)

def append(path, data):
    with open(path, "ab") as f:
        f.write(data)

def mmap_write(path, data):
    """Write through a shared mapping (no FAN_MODIFY; the writer's close is FAN_CLOSE_WRITE)."""
    fd = os.open(path, os.O_RDWR)
    try:
        with mmap.mmap(fd, 0) as m:
            m[:len(data)] = data
    finally:
        os.close(fd)

def replace(path, data):
    write(path + ".tmp", data)
    os.rename(path + ".tmp", path)

os.makedirs(os.path.join(back, "d/sub"))
write(os.path.join(back, "d/a"), b"a" * 1000)
write(os.path.join(back, "d/b"), b"b" * 2000)
settle("tree made behind", ["d"])
change("create", ["d", "d/new"], lambda b: write(b("d/new"), b"new file"))
change("unlink", ["d", "d/new"], lambda b: os.unlink(b("d/new")))
change("create after absent lookup", ["d/absent", "d"], lambda b: write(b("d/absent"), b"x"))
change("rename", ["d", "d/a", "d/a2"], lambda b: os.rename(b("d/a"), b("d/a2")))
change("rename into subdirectory", ["d", "d/a2", "d/sub"],
       lambda b: os.rename(b("d/a2"), b("d/sub/a3")))
change("chmod", ["d/b"], lambda b: os.chmod(b("d/b"), 0o600))
change("chown", ["d/b"], lambda b: os.chown(b("d/b"), 1234, 5678))
change("setxattr", ["d/b"], lambda b: os.setxattr(b("d/b"), "user.k", b"v1"))
change("setxattr, a new value", ["d/b"], lambda b: os.setxattr(b("d/b"), "user.k", b"value 2"))
change("removexattr", ["d/b"], lambda b: os.removexattr(b("d/b"), "user.k"))
change("setxattr on a directory", ["d"], lambda b: os.setxattr(b("d"), "user.d", b"D"))
change("removexattr on a directory", ["d"], lambda b: os.removexattr(b("d"), "user.d"))
change("trusted xattr", ["d/b"], lambda b: os.setxattr(b("d/b"), "trusted.t", b"T"))
change("ACL", ["d/b"], lambda b: os.setxattr(b("d/b"), "system.posix_acl_access",
       # version 2; user::rw-, user:1234:r--, group::r--, mask::r--, other::---
       bytes.fromhex("02000000" "01000600ffffffff" "02000400d2040000" "04000400ffffffff"
                     "10000400ffffffff" "20000000ffffffff")))
change("ACL removed", ["d/b"], lambda b: os.removexattr(b("d/b"), "system.posix_acl_access"))
change("utimens", ["d/b"], lambda b: os.utime(b("d/b"), ns=(10**18, 1234567890123456789)))
change("append", ["d/b"], lambda b: append(b("d/b"), b"appended" * 100))
change("write through a shared mapping", ["d/b"], lambda b: mmap_write(b("d/b"), b"MAPPED"))
change("truncate", ["d/b"], lambda b: os.truncate(b("d/b"), 10))
change("replace by rename", ["d", "d/b"], lambda b: replace(b("d/b"), b"replaced" * 300))
change("mkdir", ["d"], lambda b: os.mkdir(b("d/newdir")))
change("file in a new directory", ["d"], lambda b: write(b("d/newdir/f"), b"f"))
change("rmdir", ["d"], lambda b: (os.unlink(b("d/newdir/f")), os.rmdir(b("d/newdir"))))
change("hard link", ["d", "d/b"], lambda b: os.link(b("d/b"), b("d/b-link")))
change("unlink one of two links", ["d", "d/b"], lambda b: os.unlink(b("d/b-link")))
change("symlink", ["d"], lambda b: os.symlink("b", b("d/ln")))
change("chmod a directory", ["d/sub"], lambda b: os.chmod(b("d/sub"), 0o700))
change("rename a directory", ["d"], lambda b: os.rename(b("d/sub"), b("d/sub2")))
change("many creates", ["d"], lambda b: [write(b("d/m%03d" % i), b"m") for i in range(200)])
change("many unlinks", ["d"], lambda b: [os.unlink(b("d/m%03d" % i)) for i in range(200)])

# An open reader: the size it sees and the bytes it reads agree at all times.
p = os.path.join(back, "d/open")
write(p, b"o" * 5000)
settle("open reader's file", ["d/open"])
fd = os.open(os.path.join(mnt, "d/open"), os.O_RDONLY)
for step, fn in (("append", lambda: append(p, b"p" * 3000)),
                 ("truncate", lambda: os.truncate(p, 100)),
                 ("rewrite", lambda: (os.truncate(p, 0), append(p, b"q" * 9000)))):
    fn()
    want = open(p, "rb").read()
    t0 = time.monotonic()
    while True:
        size = os.fstat(fd).st_size
        got = os.pread(fd, 1 << 20, 0)
        if len(got) == size and got == want[:size] and size == len(want):
            break
        if len(got) != size and got[:len(want)] != want[:len(got)]:
            sys.exit("%s: open reader, %s: size %d but %d bytes that differ" % (label, step, size, len(got)))
        if time.monotonic() - t0 > LIMIT:
            sys.exit("%s: open reader, %s: after 1 s size %d, %d bytes; the original has %d"
                     % (label, step, size, len(got), len(want)))
        time.sleep(0.01)
    print("%-8s %-34s %4d ms" % (label, "open reader: " + step, (time.monotonic() - t0) * 1000))
os.close(fd)
print("%s: worst %d ms" % (label, worst * 1000))
EOF

# count_requests MOUNT DIR: the LOOKUP, GETATTR, READDIR(PLUS) and OPENDIR requests MOUNT's
# connection gets during `find DIR` and a stat of every file (perf + tracefs); their names on
# stderr. Fails without perf or tracefs.
count_requests() {
  local conn
  grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts || return 1
  command -v perf > /dev/null || return 1
  conn=$(mountpoint -d "$1") && [ "${conn%%:*}" = 0 ] || return 1
  perf record -q -a -e fuse:fuse_request_send -o "$T_SCRATCH/perf.data" -- \
    sh -c "find '$2' > /dev/null; find '$2' -type f -print0 | xargs -0 stat > /dev/null" > /dev/null 2>&1 || return 1
  perf script -i "$T_SCRATCH/perf.data" 2>/dev/null |
    grep "connection ${conn#*:} " | grep -o 'FUSE_\(LOOKUP\|GETATTR\|READDIR\|READDIRPLUS\|OPENDIR\)\b' |
    sort | uniq -c >&2 || true
  perf script -i "$T_SCRATCH/perf.data" 2>/dev/null |
    grep "connection ${conn#*:} " | grep -c 'FUSE_\(LOOKUP\|GETATTR\|READDIR\|READDIRPLUS\|OPENDIR\)\b' || true
}

# tracefs for the request counts: mounted for this test if it is not (unmounted at exit)
if ! grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
  T_BINDS+=(/sys/kernel/tracing)
fi

# watcher_idle DIR: wait (at most 10 s) until the watcher of DIR has acted on every change
# (changes_behind still for 0.3 s)
watcher_idle() {
  local last=-1 now i
  for i in $(seq 1 33); do
    now=$(t_read_counter "$1" changes_behind)
    [ "$now" = "$last" ] && return 0
    last=$now
    sleep 0.3
  done
}

# overflows DIR: how often DIR's watcher lost events (the fanotify queue overflowed: everything
# is invalidated then, so a walk across one is cold again)
overflows() {
  t_read_counter "$1" watch_overflows
}

# openless: tmpfs with start --openless, where the kernel also keeps file pages across opens
# (fs_openless.h), so every byte read back checks an invalidation of the watcher's too.
for fs in tmpfs ext4 openless; do
  case $fs in tmpfs) D=$SHM/data;; ext4) D=$T_SCRATCH/data;; openless) D=$SHM/data-openless;; esac
  BACK=$T_SCRATCH/back-$fs C=$T_SCRATCH/cache-$fs more=()
  [ $fs = openless ] && more=(--openless)
  t_backdoor "$D" "$BACK"
  # Long option timeouts: only the watcher can make the kernel see these changes in time.
  t_mount "$D" "$C" --attr-timeout 600 --entry-timeout 600 "${more[@]+"${more[@]}"}"
  "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["change_watch"] == "fanotify", s.get("change_watch_why")' \
    || fail "$fs: the change watcher is not active"
  python3 "$T_SCRATCH/checker.py" "$D" "$BACK" "$fs" || fail "$fs: a change behind the cache did not show within 1 s"
  # Warm metadata is the kernel's: a second walk sends no lookup, getattr or readdir.
  mkdir -p "$BACK/walk"
  for i in $(seq 1 300); do printf x > "$BACK/walk/f$i"; done
  watcher_idle "$D"  # lookups racing the watcher's invalidations get the short timeout
  # The cold walk, counted too: the control that the probe sees this mount's requests at all
  # (a probe that counts nothing would pass the warm check below).
  # Another program writing much on the same file system (the mark covers all of it) can
  # overflow the watcher's queue, which rightly drops every cached name: such a pair of walks
  # is measured again (at most 3 times), and said.
  for try in 1 2 3; do
    o0=$(overflows "$D")
    counted=0
    cold=$(count_requests "$D" "$D/walk") && n=$(count_requests "$D" "$D/walk") && counted=1
    [ "$(overflows "$D")" = "$o0" ] && break
    echo "$fs: the watcher's queue overflowed during the walks (another writer on this file system): again"
    t_unmount "$D"
    t_mount "$D" "$C" --attr-timeout 600 --entry-timeout 600 "${more[@]+"${more[@]}"}"
  done
  if [ "$counted" = 1 ]; then
    echo "$fs: find + stat of 300 files sent $cold LOOKUP/GETATTR/READDIR/OPENDIR requests cold, $n warm"
    [ "$cold" -ge 50 ] || fail "$fs: the probe counted only $cold requests for a cold walk of 300 files (READDIRPLUS answers most lookups; measured: 103)"
    [ "$n" -le 5 ] || fail "$fs: a warm walk still asks the daemon ($n requests)"
  else
    echo "$fs: (no perf or tracefs: request count not checked)"
  fi
  # ls -l asks every file for two xattrs; those of files with none are answered by the daemon
  # without the original (fs_xattr.c) from the second time on: at least one per file.
  ls -l "$D/walk" > /dev/null
  x0=$(t_read_counter "$D" xattr_absent_answers)
  ls -l "$D/walk" > /dev/null
  x1=$(t_read_counter "$D" xattr_absent_answers)
  echo "$fs: a second ls -l of 300 files: $((x1 - x0)) xattr requests answered without the original"
  [ $((x1 - x0)) -ge 300 ] || fail "$fs: a second ls -l of 300 files with no xattrs answered only $((x1 - x0)) xattr requests without the original"
  t_unmount "$D"
  umount "$BACK"
done

# Overflow: a queue of 64 events (the sysctl is read when the group is made, then put back) and
# 500 files created and changed behind at once: the watcher loses events, invalidates
# everything, and the mount still shows the original within 1 s.
Q=/proc/sys/fs/fanotify/max_queued_events
if [ -w $Q ]; then
  D=$SHM/over BACK=$T_SCRATCH/back-over C=$T_SCRATCH/cache-over
  mkdir -p "$D/dir"
  for i in $(seq 1 50); do printf old > "$D/dir/f$i"; done
  t_backdoor "$D" "$BACK"
  old_q=$(cat $Q)
  T_RESTORE+=("$Q=$old_q")
  echo 64 > $Q
  t_mount "$D" "$C"
  echo "$old_q" > $Q
  ls -l "$D/dir" > /dev/null; cat "$D"/dir/f* > /dev/null
  python3 - "$BACK/dir" <<'EOF'
import os, sys
d = sys.argv[1]
for i in range(1, 51):
    with open(os.path.join(d, "f%d" % i), "w") as f:
        f.write("new contents %d" % i)
for i in range(500):
    open(os.path.join(d, "n%d" % i), "w").close()
EOF
  cat > "$T_SCRATCH/same.py" <<'EOF'
import os, sys, time
m, b = sys.argv[1], sys.argv[2]
def view(root):
    return sorted((n, os.lstat(os.path.join(root, n)).st_size, open(os.path.join(root, n), "rb").read())
                  for n in os.listdir(root))
t0 = time.monotonic()
while view(m) != view(b):
    if time.monotonic() - t0 > 1.0:
        sys.exit("after an overflow the mount still differs from the original after 1 s")
    time.sleep(0.02)
print("overflow: the mount shows the original after %d ms" % ((time.monotonic() - t0) * 1000))
EOF
  python3 "$T_SCRATCH/same.py" "$D/dir" "$BACK/dir" || fail "overflow: stale names or contents"
  ov=$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"]["watch_overflows"])')
  [ "$ov" -gt 0 ] || fail "overflow: the watcher saw no overflow with a 64-event queue (watch_overflows = 0)"
  echo "overflow: watch_overflows = $ov"
  t_unmount "$D"
else
  echo "(no $Q: overflow not tested)"
fi

# Without fanotify (as on a network original): the options' timeouts (1 s here) bound staleness.
D=$SHM/nowatch BACK=$T_SCRATCH/back-nowatch C=$T_SCRATCH/cache-nowatch
t_backdoor "$D" "$BACK"
CACHEMAX_FAULT="fanotify_init:1:EPERM" t_mount "$D" "$C" --attr-timeout 0.3 --entry-timeout 0.3
"$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["change_watch"] == "timeout", s' \
  || fail "fanotify refused: the watch should be 'timeout'"
python3 "$T_SCRATCH/checker.py" "$D" "$BACK" timeout || fail "timeout: a change behind the cache did not show within 1 s"
t_unmount "$D"
echo "PASS"
