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
# - --openless on it starts, and keeps pages for the attribute timeout only: a change behind
#   a file whose pages the kernel holds, which moves only its ctime, shows within 3 s; a read
#   and a stat within the timeout send nothing (perf); with one worker thread, revalidations
#   beside an mmap reader do not hang;
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
# (src/fs/fs_openless.h, "Timed"). A file whose pages the kernel holds (read through the mount
# first; its times settled) is rewritten behind with the same size and its mtime set back:
# only its ctime moves, which the kernel's own check (FUSE_AUTO_INVAL_DATA: size and mtime)
# does not see -- only the daemon's compare of the version its pages came from does. The new
# bytes must show within 3 s (timeout 0.5 s). Then, with a 30 s timeout, a read, a stat and
# a stat of a name that is not there send no OPEN, READ, GETATTR or LOOKUP (perf: nothing but
# the kernel's pages, attributes and negative entry). Last, with one
# worker thread, revalidations that drop pages beside an mmap reader whose page faults wait
# for that worker (the invalidation is sent off the workers: it hung for good when a worker
# sent it), 8 s of it must end.
D=$SHM/openless/data
B=$SHM/openless/back
mkdir -p "$D"
make_tree "$D" "$B"
head -c 1048576 /dev/urandom > "$D/big"
CACHEMAX_ORIGIN_FS_TYPE=$NFS t_mount "$D" "$T_SCRATCH/cache-openless" --openless \
  --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT > /dev/null || fail "--openless did not start on an NFS original"
s=$(stats "$D")
[ "$(get "$s" "s['change_watch']")" = timeout ] || fail "openless over NFS: change_watch is not timeout"
[ "$(get "$s" "s['openless']['on']")" = True ] || fail "openless over NFS: stats do not say openless"
sleep 2.1   # its ctime (touch's) settled: pages of a racy version would be dropped at any GETATTR
for _ in 1 2 3; do cat "$D/f" > /dev/null; done
python3 - "$D/f" "$B/f" <<'PY' || fail "openless over NFS: a change behind that only moved ctime was not seen in time"
import os, sys, time
mnt, back = sys.argv[1], sys.argv[2]
old, st = open(mnt, "rb").read(), os.stat(back)
fd = os.open(back, os.O_WRONLY)
os.pwrite(fd, os.urandom(len(old)), 0)
os.close(fd)
os.utime(back, ns=(st.st_atime_ns, st.st_mtime_ns))   # size and mtime as before: ctime moved
want, after = open(back, "rb").read(), os.stat(back)
if want == old or after.st_mtime_ns != st.st_mtime_ns or after.st_ctime_ns == st.st_ctime_ns:
    sys.exit("the change behind was not made as meant")
t0 = time.monotonic()
while open(mnt, "rb").read() != want:   # open and read only: pages kept across opens
    if time.monotonic() - t0 > 3.0:
        sys.exit("the mount's bytes are still the old ones 3 s after the change (attr timeout 0.5 s)")
    time.sleep(0.05)
print("openless, a change behind an NFS-classified original that moved only ctime: bytes seen after %d ms"
      % ((time.monotonic() - t0) * 1000))
PY
t_unmount "$D"
if t_can_count_requests; then
  CACHEMAX_ORIGIN_FS_TYPE=$NFS t_mount "$D" "$T_SCRATCH/cache-openless" --openless \
    --attr-timeout 30 --entry-timeout 30 > /dev/null || fail "--openless did not start on an NFS original"
  sleep 2.1   # the change's times settled (above)
  cat "$D/f" "$D/f" > /dev/null; stat "$D/f" > /dev/null; stat "$D/nothing" 2> /dev/null || true
  req=$(t_requests "$D" "cat '$D/f' > /dev/null; stat '$D/f' > /dev/null; stat '$D/nothing' 2> /dev/null || true")
  for op in OPEN READ GETATTR LOOKUP; do
    [ "$(echo "$req" | t_request_count $op)" = 0 ] \
      || fail "openless over NFS: a read, a stat and a stat of a missing name within the timeout sent $op: $req"
  done
  t_unmount "$D"
else
  echo "(no perf or tracefs: the requests of a warm read not counted)"
fi
CACHEMAX_ORIGIN_FS_TYPE=$NFS t_mount "$D" "$T_SCRATCH/cache-openless" --openless --threads 1 \
  --no-io-uring --attr-timeout 0.01 --entry-timeout 0.01 > /dev/null || fail "--openless did not start with one thread"
dev=$(mountpoint -d "$D")   # now: a hung mount would not answer it
python3 - "$D/big" "$B/big" > "$T_SCRATCH/stress.out" 2>&1 <<'PY' &
import mmap, os, sys, threading, time
mnt, back = sys.argv[1], sys.argv[2]
end = time.monotonic() + 8
done = {"mappings": 0, "stats": 0, "changes": 0}
def faults():
    while time.monotonic() < end:
        fd = os.open(mnt, os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        for off in range(0, len(m), 4096):
            m[off]
        m.close(); os.close(fd); done["mappings"] += 1
def stats():
    while time.monotonic() < end:
        os.stat(mnt); done["stats"] += 1
def changes():
    i = 0
    while time.monotonic() < end:
        fd = os.open(back, os.O_WRONLY); os.pwrite(fd, b"%08d" % i, (i * 4096) % 1048576); os.close(fd)
        i += 1; done["changes"] += 1; time.sleep(0.002)
ts = [threading.Thread(target=f) for f in (faults, stats, changes)]
for t in ts: t.start()
for t in ts: t.join()
print("one worker, revalidations beside mmap faults for 8 s: %s" % done)
PY
stress=$!
for _ in $(seq 1 300); do kill -0 $stress 2>/dev/null || break; sleep 0.1; done
if kill -0 $stress 2>/dev/null; then
  # Hung: abort the connection (fusectl) so that the stuck threads and the cleanup can end.
  mkdir -p "$T_SCRATCH/fusectl"
  if mount -t fusectl none "$T_SCRATCH/fusectl"; then
    echo 1 > "$T_SCRATCH/fusectl/${dev#*:}/abort"; umount "$T_SCRATCH/fusectl"
  fi
  wait $stress || true   # SIGBUS once aborted
  fail "openless over NFS, one worker: revalidations beside mmap faults still ran 22 s after their 8 s (a hang)"
fi
wait $stress || fail "openless over NFS, one worker: the stress failed: $(cat "$T_SCRATCH/stress.out")"
cat "$T_SCRATCH/stress.out"
t_unmount "$D"
echo "PASS"
