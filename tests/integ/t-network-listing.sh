#!/usr/bin/env bash
# Listings of a network original kept by the kernel within the timeouts (issue 14, target (c);
# src/fs/fs_ops.c listing_open_flags): over sshfs (no fanotify: the watch is "timeout"), an
# OPENDIR within the shorter of --entry-timeout and --attr-timeout of the read of the listing
# the kernel holds lets it keep that listing (FOPEN_KEEP_CACHE): a walk of a warm tree sends no
# READDIR. Past the window the kernel drops it and reads the original again (the network
# contract: a change by another route is seen after the timeouts). Checked:
# (i)   a second `ls -R` within the window: every directory's open counted in listings_kept,
#       and (where perf and tracefs are) no READDIR/READDIRPLUS request reached the daemon;
# (ii)  a create, an unlink and a rename made behind (in the share) are seen by the first
#       listing that starts after the window; nothing stale after it;
# (iii) a change through the mount is seen at once (the kernel drops its own listing);
# (iv)  a directory that changed less than 2 s ago is not cached at all: a long-lived handle
#       that re-reads it after rewinddir (no OPENDIR: only the kernel's mtime check guards a
#       cached listing then) sees a name added behind in the same second as the first read,
#       which sshfs's whole-second mtime cannot show (the test restores the mtime to make
#       "the same second" certain).
# (v)   a handle read partly from the kernel's cached listing, continued past the window on a
#       listing read again after a name it had passed went behind: no entry that stayed is
#       skipped or repeated (the cookies are hashes of the names; sshfs's are positions).
# (vi)  a long-lived handle opened while its directory was old, first read in the same second
#       as a change behind, re-read after rewinddir past the timeouts: sees a change made
#       later in that same second (the daemon drops such a listing at the next GETATTR).
# (vii) a directory beyond the snapshot's bound (lowered for a second mount) is read from the
#       original's stream: its listing, a partial read and seekdir are exact;
# (viii) a handle continuing, at a cookie of the kernel's cached listing, a directory grown
#       beyond the bound meanwhile: EIO, never entries read from a wrong position.
# Without the feature (i) fails; caching a young directory makes (iv) fail; positional
# cookies make (v) fail; without the drop at GETATTR (vi) fails.
. "$(dirname "$0")/lib.sh"
need_root
t_has_sshfs || skip "needs sshfs and sshd (Debian sshfs, openssh-server; make deps)"
TIMEOUT=2

S=$T_SCRATCH/share      # the share, as the server sees it
A=$T_SCRATCH/client-a   # sshfs of S, accelerated in place
mkdir -p "$S"
for d in 1 2 3 4 5; do
  mkdir "$S/d$d"
  for i in $(seq 1 40); do echo "$d $i" > "$S/d$d/f$i"; done
done
touch -d '1 hour ago' "$S"/d* "$S"
# dirlib (tests/integ/dirlib.py): libc's directory stream for the parts that read a listing
# piece by piece
export PYTHONPATH=$(cd "$(dirname "$0")" && pwd)
t_sshd_start
# A without sshfs's own caches (no kernel attribute cache, no directory cache): what the share
# holds is what A shows at once, so any staleness seen through the mount is CacheMax's.
t_sshfs "$S" "$A" -o attr_timeout=0,entry_timeout=0,negative_timeout=0,dir_cache=no
t_mount "$A" "$T_SCRATCH/cache-a" --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT >/dev/null
"$CACHEMAX" stats "$A" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["change_watch"] == "timeout", s["change_watch"]' \
  || fail "$A: the change watch over sshfs should be 'timeout', not fanotify"

counting=1
t_can_count_requests || counting=0
# readdirs CMD [COMM]: READDIR and READDIRPLUS requests A's connection got while CMD ran (from
# processes named COMM)
readdirs() {
  local r
  r=$(t_requests "$A" "$1" "${2:-}")
  echo $(( $(echo "$r" | t_request_count READDIR) + $(echo "$r" | t_request_count READDIRPLUS) ))
}

# (i) kept within the window. Counted: the second of two `ls -R` run back to back under perf,
# by a copy of ls named ls-again (perf's own start, over 2 s under load, once let the first
# listing's window pass before the second ran).
ls -R "$A" > "$T_SCRATCH/ls1" || fail "ls -R $A failed"
k0=$(t_read_counter "$A" listings_kept)
if [ $counting = 1 ]; then
  cp "$(command -v ls)" "$T_SCRATCH/ls-again"
  n=$(readdirs "ls -R '$A' > /dev/null; '$T_SCRATCH/ls-again' -R '$A' > '$T_SCRATCH/ls2'" ls-again)
  [ "$n" -eq 0 ] || fail "(i) a second ls -R within the window sent $n READDIR requests (want 0: the kernel keeps the listings)"
else
  ls -R "$A" > "$T_SCRATCH/ls2"
fi
k1=$(t_read_counter "$A" listings_kept)
[ $((k1 - k0)) -ge 6 ] || fail "(i) listings_kept moved by $((k1 - k0)) for a second ls -R of 6 directories (want >= 6)"
cmp -s "$T_SCRATCH/ls1" "$T_SCRATCH/ls2" || fail "(i) the two listings differ"

# (ii) changes behind, seen after the window
echo new > "$S/d1/new"
rm "$S/d1/f1"
mv "$S/d2/f2" "$S/d2/g2"
sleep $((TIMEOUT + 1))
ls "$A/d1" > "$T_SCRATCH/d1"
t_grep -x new "$T_SCRATCH/d1" || fail "(ii) a file created behind is not listed $((TIMEOUT + 1)) s later"
if t_grep -x f1 "$T_SCRATCH/d1"; then fail "(ii) a file deleted behind is still listed $((TIMEOUT + 1)) s later"; fi
ls "$A/d2" > "$T_SCRATCH/d2"
t_grep -x g2 "$T_SCRATCH/d2" && ! t_grep -x f2 "$T_SCRATCH/d2" \
  || fail "(ii) a rename behind is not seen $((TIMEOUT + 1)) s later: $(tr '\n' ' ' < "$T_SCRATCH/d2")"
diff <(cd "$S" && find . | sort) <(cd "$A" && find . | sort) > "$T_SCRATCH/diff" \
  || fail "(ii) the tree through the mount differs from the share: $(head -5 "$T_SCRATCH/diff")"

# (iii) through the mount: at once
ls "$A/d3" > /dev/null
echo via > "$A/d3/via"
ls "$A/d3" | t_grep -x via || fail "(iii) a file created through the mount is not listed at once"
rm "$A/d3/via"
if ls "$A/d3" | grep -qx via; then fail "(iii) a file deleted through the mount is still listed"; fi

# (iv) a young directory is not cached: a long-lived handle re-reading it after rewinddir
python3 - "$S/d4" "$A/d4" "$TIMEOUT" <<'EOF' || fail "(iv) a young directory's listing was kept: see above"
import os, sys, time
share, mnt, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
# make the directory young, at the start of a second (room for the rest within it)
while time.time() % 1 > 0.3:
    time.sleep(0.05)
os.utime(share)
st = os.stat(share)
fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
try:
    first = set(os.listdir(fd))          # a dup of fd: the same open file, rewound after
    open(os.path.join(share, "late"), "w").close()
    os.utime(share, ns=(st.st_atime_ns, st.st_mtime_ns))   # "the same second"
    time.sleep(timeout + 1)               # past the window and the attribute timeout
    second = set(os.listdir(fd))
finally:
    os.close(fd)
assert "late" not in first, "late listed before it was made"
if "late" not in second:
    sys.exit("a name added behind is missing from a re-read of a directory opened while young")
EOF

# (v) a handle read partly from the kernel's cached listing and continued, past the window, on
# a listing read again after a change behind: no entry that stayed is skipped or repeated
# (cookies are hashes of the names, not positions, which shift when an earlier name goes)
mkdir "$S/big"
for i in $(seq -w 1 1500); do : > "$S/big/name_of_equal_length_$i"; done
touch -d '1 hour ago' "$S/big"
python3 - "$S/big" "$A/big" "$TIMEOUT" <<'EOF' || fail "(v) a reader continued past the window lost or repeated entries: see above"
import os, sys, time
from dirlib import libc, rest
share, mnt, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.listdir(mnt)                          # the kernel caches the listing
h = libc.opendir(mnt.encode())           # within the window: served from that cache
got = []
while len(got) < 5:
    name = libc.readdir(h).contents.name.decode()
    if name not in (".", ".."):
        got.append(name)
os.unlink(os.path.join(share, got[0]))   # behind: one the handle has passed
time.sleep(timeout + 1.5)
os.listdir(mnt)                          # an open past the window: the kernel drops its cache
got.extend(name for name, _ in rest(h))
libc.closedir(h)
stayed = set(os.listdir(share))
missing = sorted(stayed - set(got))
repeated = len(got) - len(set(got))
print("listed", len(got), "missing", len(missing), missing[:3], "repeated", repeated)
if missing or repeated:
    sys.exit("entries that stayed were skipped or repeated")
EOF

# (vi) a long-lived handle opened while its directory was old, first read in the same second as
# a change behind, re-read after rewinddir past the timeouts: the change made later in that
# same second is seen (the kernel's mtime check cannot tell; the daemon drops the listing at
# the directory's next GETATTR)
mkdir "$S/d6"; for i in 1 2 3; do : > "$S/d6/f$i"; done
touch -d "1 hour ago" "$S/d6"
python3 - "$S/d6" "$A/d6" "$TIMEOUT" <<'EOF' || fail "(vi) a long-lived handle kept a stale listing: see above"
import os, sys, time
share, mnt, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)   # old: the kernel may cache what it reads
time.sleep(timeout + 0.5)                           # the directory's attributes expire
while time.time() % 1 > 0.2:
    time.sleep(0.02)
open(os.path.join(share, "early"), "w").close()     # young now
st = os.stat(share)
first = set(os.listdir(fd))                          # fills the kernel's cache
open(os.path.join(share, "late"), "w").close()
os.utime(share, ns=(st.st_atime_ns, st.st_mtime_ns))  # "the same second"
time.sleep(timeout + 1.5)
second = set(os.listdir(fd))                          # a rewind of the same open file
os.close(fd)
print("first has early:", "early" in first, "; second has late:", "late" in second)
if "early" not in first or "late" not in second:
    sys.exit("a change behind is missing from a long-lived handle's re-read past the timeouts")
EOF

# (vii) a directory beyond the snapshot's bound (CACHEMAX_DIR_SNAP_MAX=100 for a second mount,
# over a second sshfs client of the share): read from the original's stream with its own
# cookies and not cached by the kernel; a partial read, seekdir and a full listing are exact,
# and a directory within the bound still lists as the share does
A2=$T_SCRATCH/client-a2
t_sshfs "$S" "$A2" -o attr_timeout=0,entry_timeout=0,negative_timeout=0,dir_cache=no
CACHEMAX_DIR_SNAP_MAX=100 t_mount "$A2" "$T_SCRATCH/cache-a2" --attr-timeout $TIMEOUT --entry-timeout $TIMEOUT >/dev/null
mkdir "$S/over"; for i in $(seq 1 300); do : > "$S/over/o$i"; done
touch -d '1 hour ago' "$S/over"
python3 - "$S" "$A2" <<'EOF' || fail "(vii) a directory beyond the snapshot's bound listed wrongly: see above"
import os, sys
from dirlib import libc
share, mnt = sys.argv[1], sys.argv[2]
for sub in ("over", "d3", "over"):
    want = set(os.listdir(os.path.join(share, sub)))
    for attempt in range(2):
        got = set(os.listdir(os.path.join(mnt, sub)))
        if got != want:
            sys.exit(f"{sub}: listing differs from the share: {sorted(want ^ got)[:5]}")
h = libc.opendir(os.path.join(mnt, "over").encode())
names, mark = [], None
while True:
    if len(names) == 150:
        mark = libc.telldir(h)
    e = libc.readdir(h)
    if not e:
        break
    names.append(e.contents.name.decode())
libc.seekdir(h, mark)
again = libc.readdir(h).contents.name.decode()
libc.closedir(h)
if again != names[150] or len(names) != len(set(names)) or set(names) - {".", ".."} != set(os.listdir(os.path.join(share, "over"))):
    sys.exit(f"over: a handle's listing or seekdir is wrong ({len(names)} names, seekdir gave {again!r}, want {names[150]!r})")
EOF
[ "$(t_read_counter "$A2" listings_kept)" -ge 1 ] || fail "(vii) no listing kept on the second mount (d3, within the bound, should be)"

# (viii) a handle continuing, at a cookie of the kernel's cached listing, a directory that has
# meanwhile grown beyond the snapshot's bound: EIO (a name hash has no place in the original's
# stream), never a listing read from a wrong position; a new open lists it all
mkdir "$S/edge"
python3 -c 'import sys; [open(f"{sys.argv[1]}/e{i:03d}" + "x" * 240, "w").close() for i in range(100)]' "$S/edge"
touch -d '1 hour ago' "$S/edge"
python3 - "$S/edge" "$A2/edge" "$TIMEOUT" <<'EOF' || fail "(viii) a continuation past the snapshot's bound: see above"
import ctypes, errno, os, struct, sys, time
share, mnt, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
def getdents(fd, size):
    buf = ctypes.create_string_buffer(size)
    n = libc.syscall(217, fd, buf, size)   # getdents64
    if n < 0:
        return None, ctypes.get_errno()
    out, pos = [], 0
    while pos < n:
        _, _, reclen, _ = struct.unpack_from("QqHB", buf.raw, pos)
        out.append(buf.raw[pos + 19:pos + reclen].split(b"\0")[0].decode())
        pos += reclen
    return out, 0
a = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
while getdents(a, 32768)[0]:
    pass                                   # the kernel caches the whole listing
os.close(a)
b = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
first, _ = getdents(b, 1024)               # from the kernel's cache
open(os.path.join(share, "e999-new"), "w").close()   # 101 entries: beyond the bound of 100
time.sleep(timeout + 1)
os.close(os.open(mnt, os.O_RDONLY | os.O_DIRECTORY))  # past the window: the kernel drops it
rest, err = [], 0
while True:
    part, err = getdents(b, 1024)
    if not part:
        break
    rest += part
os.close(b)
names = [n for n in first + rest if n not in (".", "..")]
print("first", len(first), "then", len(rest), "error", errno.errorcode.get(err, err))
if err != errno.EIO:
    sys.exit("want EIO for a cookie the stream cannot place")
if len(names) != len(set(names)) or not set(names) <= set(os.listdir(share)):
    sys.exit("entries repeated or invented before the EIO")
if set(os.listdir(mnt)) != set(os.listdir(share)):
    sys.exit("a new open does not list the directory as the share does")
EOF


echo "PASS: listings kept within the timeouts (listings_kept +$((k1 - k0)), perf counting: $counting); changes behind seen after them; young directories not cached"
