#!/usr/bin/env bash
# A network original is never counted as watched (issue 14; src/fs/fs_type.h, fs_watch.c's
# prepare). On NFS, SMB, Ceph, 9p... fanotify can mark the file system but reports only this
# machine's changes: were it counted as watching, the kernel would keep names and attributes
# for a day and opens would be deferred, and another client's change would stay unseen. NFS is
# not available here, so the original (tmpfs) is classified as NFS through the test knob
# CACHEMAX_ORIGIN_FS_TYPE=0x6969, and a change without any local event stands for another
# client's: a write through a shared mapping behind the cache (no FAN_MODIFY; it moves mtime).
# - the same original without the knob is watched (fanotify): else nothing here could fail;
# - with it: stats and status say "timeout" and name NFS, the catalog's seal says not watched,
#   no open past the attribute timeout is deferred (it opens the original: close-to-open), and the mmap write behind
#   shows through the mount (stat's mtime, then the bytes) within the 0.5 s attribute timeout
#   (checked within 3 s; watched, that mtime stays for a day);
# - --openless on it starts, and keeps pages for the attribute timeout only: the mmap write
#   behind a file whose pages the kernel holds shows within 3 s; a read and a stat within the
#   timeout send nothing (perf);
# - a real FUSE original (bindfs, as sshfs) is classified by its own type: "timeout", FUSE.
. "$(dirname "$0")/lib.sh"
need_root
t_shm netorig
NFS=0x6969
TIMEOUT=0.5

get() { python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
stats() { "$CACHEMAX" stats "$1" --json; }
status_of() {
  "$CACHEMAX" status --json | python3 -c 'import json, sys
for d in json.load(sys.stdin)["directories"]:
    if d["dir"] == sys.argv[1]: print(d[sys.argv[2]])' "$1" "$2"
}

# make_tree DIR BACK: a settled file (its times an hour old, so its cache copy is kept) and a
# directory, reachable behind the mount at BACK
make_tree() {
  mkdir -p "$1/dir"
  head -c 4000 /dev/urandom > "$1/f"
  for i in 1 2 3; do echo "$i" > "$1/dir/n$i"; done
  touch -d '1 hour ago' "$1/f" "$1/dir"
  t_backdoor "$1" "$2"
}

# --- the control: the same kind of original without the knob is watched -------------------
D=$SHM/local/data B=$SHM/local/back
make_tree "$D" "$B"
t_mount "$D" "$T_SCRATCH/cache-local" --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT
[ "$(get "$(stats "$D")" "s['change_watch']")" = fanotify ] \
  || skip "fanotify does not watch a tmpfs original here: a forced network type changes nothing"
t_unmount "$D"

# --- classified as NFS --------------------------------------------------------------------
D=$SHM/nfs/data B=$SHM/nfs/back C=$T_SCRATCH/cache-nfs
make_tree "$D" "$B"
CACHEMAX_ORIGIN_FS_TYPE=$NFS t_mount "$D" "$C" --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT --meta-catalog
s=$(stats "$D")
[ "$(get "$s" "s['change_watch']")" = timeout ] \
  || fail "an NFS original counts as watched: change_watch $(get "$s" "s['change_watch']") (want timeout)"
get "$s" "s['change_watch_why']" | t_grep "NFS" || fail "change_watch_why does not name NFS: $(get "$s" "s['change_watch_why']")"
get "$s" "s['meta_catalog']['seal']" | t_grep "not watched" \
  || fail "the catalog's seal over an NFS original: $(get "$s" "s['meta_catalog']['seal']") (want: not watched)"
[ "$(status_of "$D" change_watch)" = timeout ] || fail "status: change_watch $(status_of "$D" change_watch) (want timeout)"
status_of "$D" change_watch_reason | t_grep "NFS" || fail "status does not say why: $(status_of "$D" change_watch_reason)"
"$CACHEMAX" status | t_grep "changes: *seen at the attribute timeout (the original's file system is NFS" \
  || fail "status (text) does not say NFS: $("$CACHEMAX" status | grep changes:)"

# Opens: the copy gets cached; an open past the attribute timeout of the last open that
# opened the original opens it again (close-to-open; within the timeout it may be deferred:
# t-network-deferred-open).
deferred() { get "$(stats "$D")" "s['stats']['counters'].get('origin_opens_deferred', 0)"; }
for _ in 1 2 3 4; do cat "$D/f" > /dev/null; ls "$D/dir" > /dev/null; done
sleep 0.7
d=$(deferred)
cat "$D/f" > /dev/null
[ "$(deferred)" = "$d" ] \
  || fail "an open of an NFS original 0.7 s after the last (attribute timeout $TIMEOUT s) was deferred"

# Another client's change, without a local event: an mmap write behind (same size).
python3 - "$D/f" "$B/f" <<'PY' || fail "a change behind an NFS original with no local event was not seen in time"
import mmap, os, sys, time
mnt, back = sys.argv[1], sys.argv[2]
# Attributes cached by the kernel from here on (a read through the mount would drop its atime
# and make the next stat ask the daemon: none until the mtime is seen).
before = os.stat(mnt)
fd = os.open(back, os.O_RDWR)
m = mmap.mmap(fd, 4000)
m[0:4000] = os.urandom(4000)
m.close()
os.close(fd)
after = os.stat(back)
if after.st_mtime_ns == before.st_mtime_ns:
    sys.exit("the mmap write did not move the original's mtime on this kernel: nothing to see")
t0 = time.monotonic()
while os.stat(mnt).st_mtime_ns != after.st_mtime_ns:   # stat only: no open to refresh anything
    if time.monotonic() - t0 > 3.0:
        sys.exit("the mount's mtime is still the old one 3 s after the change (attr timeout 0.5 s)")
    time.sleep(0.05)
seen = time.monotonic() - t0
want = open(back, "rb").read()
while open(mnt, "rb").read() != want:
    if time.monotonic() - t0 > 3.0:
        sys.exit("the mount's bytes are still the old ones 3 s after the change")
    time.sleep(0.05)
print("mmap write behind an NFS-classified original: mtime seen after %d ms, bytes after %d ms"
      % (seen * 1000, (time.monotonic() - t0) * 1000))
PY
t_unmount "$D"

# --- a real FUSE original (bindfs): classified by its own statfs type, no knob ---------------
if command -v bindfs > /dev/null; then
  mkdir -p "$T_SCRATCH/bind-src" "$T_SCRATCH/bind"
  echo x > "$T_SCRATCH/bind-src/f"
  bindfs "$T_SCRATCH/bind-src" "$T_SCRATCH/bind"; T_BINDS+=("$T_SCRATCH/bind")
  t_mount "$T_SCRATCH/bind" "$T_SCRATCH/cache-bind" --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT
  s=$(stats "$T_SCRATCH/bind")
  [ "$(get "$s" "s['change_watch']")" = timeout ] || fail "a FUSE original counts as watched"
  get "$s" "s['change_watch_why']" | t_grep "file system is FUSE" \
    || fail "a FUSE original's change_watch_why does not say FUSE: $(get "$s" "s['change_watch_why']")"
  t_unmount "$T_SCRATCH/bind"
else
  echo "(no bindfs: a real FUSE original not checked)"
fi

# --- --openless on it: pages kept for the attribute timeout, then checked -----------------
# (src/fs/fs_openless.h, "Timed"): the same mmap write behind a file whose pages the kernel
# holds (read through the mount first; its times settled, so only the fingerprint's compare
# can tell) shows, bytes and mtime, within 3 s; a read within the timeout sends no OPEN, READ
# or GETATTR (perf, with a 30 s timeout: nothing but the pages).
D=$SHM/openless/data
B=$SHM/openless/back
mkdir -p "$D"
make_tree "$D" "$B"
CACHEMAX_ORIGIN_FS_TYPE=$NFS t_mount "$D" "$T_SCRATCH/cache-openless" --openless \
  --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT > /dev/null || fail "--openless did not start on an NFS original"
s=$(stats "$D")
[ "$(get "$s" "s['change_watch']")" = timeout ] || fail "openless over NFS: change_watch is not timeout"
[ "$(get "$s" "s['openless']['on']")" = True ] || fail "openless over NFS: stats do not say openless"
sleep 2.1   # its ctime (touch's) settled: pages of a racy version would be dropped at any GETATTR
for _ in 1 2 3; do cat "$D/f" > /dev/null; done
python3 - "$D/f" "$B/f" <<'PY' || fail "openless over NFS: a change behind with no local event was not seen in time"
import mmap, os, sys, time
mnt, back = sys.argv[1], sys.argv[2]
old = open(mnt, "rb").read()
fd = os.open(back, os.O_RDWR)
m = mmap.mmap(fd, 4000)
m[0:4000] = os.urandom(4000)
m.close()
os.close(fd)
want, after = open(back, "rb").read(), os.stat(back)
if want == old:
    sys.exit("the mmap write changed nothing")
t0 = time.monotonic()
while open(mnt, "rb").read() != want:   # open and read only: pages kept across opens
    if time.monotonic() - t0 > 3.0:
        sys.exit("the mount's bytes are still the old ones 3 s after the change (attr timeout 0.5 s)")
    time.sleep(0.05)
if os.stat(mnt).st_mtime_ns != after.st_mtime_ns:
    sys.exit("the bytes are new but the mtime is the old one")
print("openless, mmap write behind an NFS-classified original: bytes seen after %d ms"
      % ((time.monotonic() - t0) * 1000))
PY
t_unmount "$D"
if t_can_count_requests; then
  CACHEMAX_ORIGIN_FS_TYPE=$NFS t_mount "$D" "$T_SCRATCH/cache-openless" --openless \
    --attr-timeout 30 --entry-timeout 30 > /dev/null || fail "--openless did not start on an NFS original"
  sleep 2.1   # the mmap write's times settled (above)
  cat "$D/f" "$D/f" > /dev/null; stat "$D/f" > /dev/null
  req=$(t_requests "$D" "cat '$D/f' > /dev/null; stat '$D/f' > /dev/null")
  for op in OPEN READ GETATTR LOOKUP; do
    [ "$(echo "$req" | t_request_count $op)" = 0 ] \
      || fail "openless over NFS: a read and a stat within the timeout sent $op: $req"
  done
  t_unmount "$D"
else
  echo "(no perf or tracefs: the requests of a warm read not counted)"
fi
echo "PASS"
