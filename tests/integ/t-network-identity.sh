#!/usr/bin/env bash
# The identity of a file on an original without stable inode numbers (issue 14): sshfs numbers
# its nodes in lookup order (libfuse: st_ino is the node id, taken from a counter that starts
# again at every mount), so after the kernel evicts an inode or after a remount the same path
# has another st_ino, and after a remount a number goes to another file. SFTP carries mtime in
# whole seconds and no ctime, so two files of one size and one mtime differ in nothing of a
# fingerprint but (dev, ino). A cache keyed by (st_dev, st_ino) then serves one file's copy for
# another, and loses every copy at each remount.
#
# The remote directory R (served by a private sshd on 127.0.0.1) holds set/f01..f50, keep/k1..k5
# and filler/x01..x10: all of one size and one old mtime (settled: cached at once), each with
# its own bytes. Before CacheMax accelerates the sshfs mount S in place, every file is looked up
# through the bare sshfs (stat) in a chosen order, which gives it its number; every read through
# the mount is compared with R, and the daemon's counters say where each was served from.
# Both modes, the default and --openless --attr-timeout 30 --entry-timeout 30, each with a fresh
# cache directory (a mode's second round then finds only the copies its own first round made,
# under the numbers that round saw, so a failure is that mode's): round 1 looks up and reads
# set/ f01..f50 and keep/, waits until every byte is in the cache (fill_bytes; the default mode
# then reads all again: all hits), stops; the sshfs is unmounted and mounted again (its
# numbering starts again).
# (i) Wrong data: round 2 looks up and reads f50..f01, so each file has the number its mirror
#     image had in round 1, whose copy is there: every file must show its own bytes (and be a
#     cache hit: its own copy is there too).
# (ii) The copy survives new inode numbers: in round 2 the ten filler/ files are looked up
#     before keep/, so every kN gets a number no file had in round 1 (checked, else the test
#     fails as unable to show anything): keep/ must be served from the copies: a cache hit per
#     file at least, no open or read of the original, no fill.
# (iii) The same within one sshfs mount (default mode): after round 2 CacheMax stops, the kernel
#     drops its dentries and inodes (echo 2 > drop_caches, machine-wide like t-meta-catalog's:
#     sshfs forgets its nodes and numbers them anew at the next lookup; checked), CacheMax
#     starts again: every file served from its copy.
# (iv) Files held open while sshfs renumbers them: the daemon under a small fd limit
#     (CACHEMAX_FD_LIMIT=256: its fd cache holds 64 fds) reaches 300 held files again by name
#     after drop_caches; a new number there is no sign of another file. fstat and pread of every
#     held file must work and show its bytes (--openless), and fstat of every O_PATH fd (the
#     default mode). Before, 236 of 300 failed with ESTALE in both.
# (v) The store belongs to the share, not to a device number: the --openless round 2 remounts
#     the sshfs on another device number (a decoy mount takes the freed one), which was refused
#     as "the cache of another directory" before; another share with the same cache directory
#     is still refused.
# Every problem is collected and all are reported at the end (what is wrong, in which case).
. "$(dirname "$0")/lib.sh"
need_root
t_has_sshfs || skip "needs sshfs and sshd (Debian sshfs, openssh-server; make deps)"

N=50
SIZE=8192
R=$T_SCRATCH/remote   # the share, as the server sees it
S=$T_SCRATCH/share    # its sshfs mount, accelerated in place
mkdir -p "$R"
python3 - "$R" "$N" "$SIZE" <<'PY'
import hashlib, os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def put(rel, seed):
    block = hashlib.sha256(seed.encode()).digest()
    with open(os.path.join(root, rel), "wb") as f:
        f.write((block * (size // len(block) + 1))[:size])
for d in ("set", "keep", "filler"):
    os.mkdir(os.path.join(root, d))
for i in range(1, n + 1):
    put("set/f%02d" % i, "set %d" % i)
for i in range(1, 6):
    put("keep/k%d" % i, "keep %d" % i)
for i in range(1, 11):
    put("filler/x%02d" % i, "filler %d" % i)
PY
# Old enough to be cached at their first read (engine_settle.c), and one second for all.
find "$R" -type f -exec touch -d '2026-01-01 10:00:00' {} +
SET_FWD=$(seq -f "set/f%02g" 1 $N)
SET_REV=$(seq -f "set/f%02g" $N -1 1)
KEEP=$(seq -f "keep/k%g" 1 5)
FILLER=$(seq -f "filler/x%02g" 1 10)
t_sshd_start

PROBLEMS=()
problem() { echo "PROBLEM: $*" >&2; PROBLEMS+=("$*"); }

mount_sshfs() { t_sshfs "$R" "$S"; }
remount_sshfs() { umount "$S"; mount_sshfs; }
# remount_sshfs_new_dev: the same, on another device number (a decoy sshfs mount takes the
# number the unmount freed, as any mount could between a reboot's mounts)
remount_sshfs_new_dev() {
  local dev
  dev=$(stat -c %d "$S")
  umount "$S"
  mkdir -p "$T_SCRATCH/decoy-src"
  t_sshfs "$T_SCRATCH/decoy-src" "$T_SCRATCH/decoy"
  mount_sshfs
  [ "$(stat -c %d "$S")" != "$dev" ] || fail "internal: the sshfs came back on device $dev despite the decoy"
  echo "the sshfs mount came back on device $(stat -c %d "$S"), not $dev"
}

# lookup FILE...: stat each through the bare sshfs, in the order given (this gives the numbers);
# prints "REL INO" lines
lookup() {
  local f
  t_grep " $S fuse.cachemax " /proc/mounts && fail "internal: lookup through the CacheMax mount"
  for f in "$@"; do echo "$f $(stat -c %i "$S/$f")"; done
}

# counters: "HITS MISSES FILLS FILL_BYTES" of the daemon at S: opens and reads served from the
# cache copy, opens and reads that went to the original, chunks and bytes written to the cache
counters() {
  "$CACHEMAX" stats "$S" --json | python3 -c 'import json, sys
c = json.load(sys.stdin)["stats"]["counters"]
print(c["passthrough_opens_cache"] + c["read_ops_cache"], c["passthrough_opens_origin"] + c["read_ops_origin"],
      c["fills"], c["fill_bytes"])'
}

# read_check LABEL FILE...: read each file through the mount in the order given and compare it
# with R; a problem per mismatch, naming the file whose bytes it showed
read_check() {
  local label=$1 out; shift
  out=$(python3 - "$S" "$R" "$@" <<'PY'
import os, sys
mnt, remote, files = sys.argv[1], sys.argv[2], sys.argv[3:]
want = {}
for d in ("set", "keep", "filler"):
    for n in os.listdir(os.path.join(remote, d)):
        with open(os.path.join(remote, d, n), "rb") as f:
            want[f.read()] = d + "/" + n
bad = 0
for rel in files:
    with open(os.path.join(mnt, rel), "rb") as f:
        got = f.read()
    with open(os.path.join(remote, rel), "rb") as f:
        own = f.read()
    if got != own:
        bad += 1
        if bad <= 5:
            print("  %s shows %s" % (rel, ("the bytes of " + want[got]) if got in want else "%d other bytes" % len(got)))
if bad:
    print("  %d of %d files read through the mount differ from the remote files" % (bad, len(files)))
PY
) || fail "reading through the mount failed"
  if [ -n "$out" ]; then problem "$label: wrong data:"$'\n'"$out"; fi
}

# wait_filled BYTES LABEL: until the daemon at S has written BYTES to the cache (round 1's
# copies complete: every file is filled whole, by completions or by reads through the daemon)
wait_filled() {
  local end=$((SECONDS + 10)) c
  while [ $SECONDS -lt $end ]; do
    c=$(counters); [ "${c##* }" -ge "$1" ] && return 0
    sleep 0.2
  done
  fail "$2: only ${c##* } of $1 bytes were cached within 10 s (counters hits misses fills fill_bytes: $c)"
}

# changed BEFORE AFTER: how many of the files (lines "REL INO" of lookup) have another number
changed() { join <(sort <<<"$1") <(sort <<<"$2") | awk '$2 != $3 { n++ } END { print n + 0 }'; }

# round1 MODE-LABEL CACHE OPTIONS...: look up and read set/ forward and keep/, wait for the
# copies, check they serve (default mode), stop; INO1: the numbers
round1() {
  local label=$1 cache=$2; shift 2
  local n c0 c1
  n=$(( N + 5 ))
  INO1=$(lookup $SET_FWD $KEEP)
  t_mount "$S" "$cache" "$@" > /dev/null
  read_check "$label, round 1 (fresh cache)" $SET_FWD $KEEP
  wait_filled $(( n * SIZE )) "$label, round 1"
  if [ "$label" = default ]; then   # a second read: every file from its copy
    c0=$(counters); read_check "$label, round 1, second read" $SET_FWD $KEEP; c1=$(counters)
    set -- $c0 $c1
    [ $(( $5 - $1 )) = $n ] && [ "$6" = "$2" ] ||
      fail "$label, round 1: the second read was not all hits (hits misses fills fill_bytes before: $c0, after: $c1): the copies are not complete, nothing below shows anything"
  fi
  t_unmount "$S" > /dev/null
}

# renumbered MODE-LABEL: after the remount, look up set/ in reverse, filler/, then keep/ (INO2);
# every keep/ file must have another number than in round 1
renumbered() {
  local k s
  INO2=$(lookup $SET_REV $FILLER $KEEP)
  k=$(changed "$(grep ^keep/ <<<"$INO1")" "$(grep ^keep/ <<<"$INO2")")
  [ "$k" = 5 ] || fail "$1: (ii) needs new numbers: only $k of 5 keep/ files got another st_ino after the remount (round 1: $(grep ^keep/ <<<"$INO1" | tr '\n' ' '); round 2: $(grep ^keep/ <<<"$INO2" | tr '\n' ' '))"
  s=$(changed "$(grep ^set/ <<<"$INO1")" "$(grep ^set/ <<<"$INO2")")
  echo "$1: after the sshfs remount $s of $N set/ files and 5 of 5 keep/ files have another st_ino"
}

# served LABEL FILE...: read the files through the mount (read_check), each must be served from
# its copy: as many cache hits as files (at least), no open or read of the original, no fill
served() {
  local label=$1 c0 c1; shift
  c0=$(counters)
  read_check "$label" "$@"
  c1=$(counters)
  set -- "$#" $c0 $c1
  if [ $(( $6 - $2 )) -lt "$1" ] || [ "$7" != "$3" ] || [ "$8" != "$4" ]; then
    problem "$label: not all $1 files are served from their copies: $(( $6 - $2 )) cache hits, $(( $7 - $3 )) opens or reads of the original, $(( $8 - $4 )) fills so far (want $1, 0, 0)"
  fi
}

# --- default mode ---------------------------------------------------------------------------
C=$T_SCRATCH/cache-default
mount_sshfs
round1 default "$C"
remount_sshfs
renumbered default
t_mount "$S" "$C" > /dev/null
served "(i) default mode, after the sshfs remount, set/ read in reverse" $SET_REV
served "(ii) default mode, after the sshfs remount, keep/" $KEEP
t_unmount "$S" > /dev/null

# --- (iii) the same sshfs mount, its inodes evicted -------------------------------------------
INO3=$(lookup $SET_FWD $KEEP)
sync
ok=
for _ in 1 2 3 4 5; do
  echo 2 > /proc/sys/vm/drop_caches
  sleep 0.2   # the FORGETs reach sshfs
  INO4=$(lookup $SET_FWD $KEEP)
  [ "$(changed "$INO3" "$INO4")" = $(( N + 5 )) ] && { ok=1; break; }
done
[ -n "$ok" ] || fail "(iii) needs new numbers: after drop_caches only $(changed "$INO3" "$INO4") of $(( N + 5 )) files got another st_ino"
echo "default: after drop_caches $(( N + 5 )) of $(( N + 5 )) files have another st_ino (same sshfs mount)"
t_mount "$S" "$C" > /dev/null
served "(iii) default mode, after drop_caches, set/ and keep/" $SET_FWD $KEEP
t_unmount "$S" > /dev/null

# --- openless mode ----------------------------------------------------------------------------
OPENLESS=(--openless --attr-timeout 30 --entry-timeout 30)
C=$T_SCRATCH/cache-openless
remount_sshfs
round1 openless "$C" "${OPENLESS[@]}"
remount_sshfs_new_dev
renumbered openless
t_mount "$S" "$C" "${OPENLESS[@]}" > /dev/null
served "(i) --openless, after the sshfs remount, set/ read in reverse" $SET_REV
served "(ii) --openless, after the sshfs remount, keep/" $KEEP
t_unmount "$S" > /dev/null

# (v) Another share with that cache directory is refused (it names another origin).
mkdir -p "$T_SCRATCH/other-src"
t_sshfs "$T_SCRATCH/other-src" "$T_SCRATCH/other"
if out=$("$CACHEMAX" start "$T_SCRATCH/other" --cache "$C" 2>&1); then
  T_MOUNTS+=("$T_SCRATCH/other")
  problem "(v) another sshfs share was accelerated with the cache of $S"
else
  t_grep "holds the cache of another directory" <<<"$out" || problem "(v) another share refused, but not as another directory's cache: $out"
fi

# --- (iv) held open while renumbered ----------------------------------------------------------
mkdir -p "$R/held"
for i in $(seq 1 300); do echo "file $i" > "$R/held/f$i"; done
touch -d '2026-01-01 10:00:00' "$R"/held/*
held_check() {   # LABEL OPEN-FLAGS [start options...]
  local label=$1 flags=$2 out; shift 2
  CACHEMAX_FD_LIMIT=256 t_mount "$S" "$T_SCRATCH/cache-held-$flags" "$@" > /dev/null
  out=$(python3 - "$S/held" "$flags" <<'PY'
import os, sys, time
d, flags = sys.argv[1], int(sys.argv[2])
fds = [os.open(os.path.join(d, "f%d" % i), flags) for i in range(1, 301)]
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("2")
time.sleep(0.3)   # past the attribute timeout: every fstat asks the daemon
bad = {}
for i, fd in enumerate(fds, 1):
    try:
        os.fstat(fd)
        if not flags & os.O_PATH and os.pread(fd, 100, 0) != b"file %d\n" % i:
            bad["wrong bytes"] = bad.get("wrong bytes", 0) + 1
    except OSError as e:
        bad[e.strerror] = bad.get(e.strerror, 0) + 1
print(", ".join("%d %s" % (v, k) for k, v in bad.items()))
PY
)
  [ -z "$out" ] || problem "(iv) $label: of 300 files held open while sshfs renumbered them: $out"
  t_unmount "$S" > /dev/null
}
held_check "--openless, fstat and pread" 0 "${OPENLESS[@]}" --attr-timeout 0.2 --entry-timeout 0.2
held_check "default mode, fstat of O_PATH fds" "$(python3 -c 'import os; print(os.O_PATH)')" \
  --attr-timeout 0.2 --entry-timeout 0.2

if [ ${#PROBLEMS[@]} -gt 0 ]; then
  fail "${#PROBLEMS[@]} problem(s), listed above: a copy served for another file, or not found again, once sshfs gave the files other inode numbers"
fi
echo "PASS"
