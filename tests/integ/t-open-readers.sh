#!/usr/bin/env bash
# Open readers see changes made behind the cache (issue 12 item 4): a process holding a file
# open through the mount while the original is appended, overwritten and truncated by another
# route (a bind mount of the original, made before start) sees a size and bytes that agree
# with the original within a second -- with and without passthrough, the file complete in the
# cache first (a passthrough reader of the cache copy, or user-space reads of the object) or
# not (a passthrough reader of the original, or user-space misses). `tail -f` prints lines
# appended behind the cache and through it. Attributes are cached for 30 s and names for 600 s,
# so only the change watcher (fanotify) can make the kernel see the changes in time.
. "$(dirname "$0")/lib.sh"
need_root
t_shm readers
D=$T_SCRATCH/data BACK=$T_SCRATCH/back C=$SHM/cache
t_backdoor "$D" "$BACK"
counter() { t_read_counter "$D" "$1"; }
complete() { t_complete "$D" "$1"; }

# The reader: holds MOUNT_FILE open for its whole run, changes BACK_FILE, and after each change
# waits (at most LIMIT s) until fstat's size and the bytes read through its open file equal the
# original's; prints the time each change took to show.
cat > "$T_SCRATCH/reader.py" <<'EOF'
import os, sys, time
mnt, back, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(mnt, os.O_RDONLY)
def agree(what):
    with open(back, "rb") as f:
        want = f.read()
    t0 = time.monotonic()
    while True:
        size = os.fstat(fd).st_size
        got = os.pread(fd, len(want) + 65536, 0)
        if size == len(want) and got == want:
            print("%-28s %4d ms" % (what, (time.monotonic() - t0) * 1000))
            return
        if time.monotonic() - t0 > limit:
            sys.exit("%s: after %.1f s the reader sees size %d and %d bytes (%s), the original has %d"
                     % (what, limit, size, len(got), "equal" if got == want[:len(got)] else "different",
                        len(want)))
        time.sleep(0.01)
def change(what, fn):
    with open(back, "r+b") as f:
        fn(f)
    agree(what)
agree("at open")
os.pread(fd, 1 << 20, 0)
change("append", lambda f: (f.seek(0, 2), f.write(b"appended line\n" * 50)))
change("overwrite", lambda f: (f.seek(1000), f.write(b"X" * 3000)))
change("truncate shorter", lambda f: f.truncate(5000))
change("append after truncate", lambda f: (f.seek(0, 2), f.write(b"y" * 70000)))
change("truncate to 0 and rewrite", lambda f: (f.truncate(0), f.write(b"z" * 20000)))
change("overwrite, same size", lambda f: (f.seek(0), f.write(b"w" * 20000)))
EOF

# file_for NAME: a 200 KiB file of lines in the original
file_for() { python3 -c 'import sys; sys.stdout.write("".join("line %06d of the original\n" % i for i in range(7500)))' > "$D/$1"; }

# readers LABEL [LIMIT]: the cached and uncached cases on the current mount
readers() {
  local label=$1 limit=${2:-1.0}
  file_for "cached-$label"
  file_for "uncached-$label"
  complete "$D/cached-$label"
  echo "== $label, file complete in the cache"
  python3 "$T_SCRATCH/reader.py" "$D/cached-$label" "$BACK/cached-$label" "$limit" || fail "$label, cached: the open reader did not see the changes in time"
  echo "== $label, file not cached"
  python3 "$T_SCRATCH/reader.py" "$D/uncached-$label" "$BACK/uncached-$label" "$limit" || fail "$label, uncached: the open reader did not see the changes in time"
}

# tail_f LABEL: tail -f of a log appended behind the cache and through it
tail_f() {
  local label=$1 log=$D/log-$1 out=$T_SCRATCH/tail-$1.out pid
  printf 'first\n' > "$log"
  cat "$log" > /dev/null
  sleep 0.3
  tail -f -s 0.1 "$log" > "$out" 2>/dev/null &
  pid=$!
  T_PIDS+=("$pid")
  sleep 0.5
  printf 'behind the cache\n' >> "$BACK/log-$label"
  for _ in $(seq 1 30); do grep -q 'behind the cache' "$out" && break; sleep 0.05; done
  grep -q 'behind the cache' "$out" || { kill "$pid"; fail "$label: tail -f did not print a line appended behind the cache within 1.5 s"; }
  printf 'through the mount\n' >> "$log"
  for _ in $(seq 1 30); do grep -q 'through the mount' "$out" && break; sleep 0.05; done
  grep -q 'through the mount' "$out" || { kill "$pid"; fail "$label: tail -f did not print a line appended through the mount within 1.5 s"; }
  printf 'behind again\n' >> "$BACK/log-$label"
  for _ in $(seq 1 30); do grep -q 'behind again' "$out" && break; sleep 0.05; done
  grep -q 'behind again' "$out" || { kill "$pid"; fail "$label: tail -f missed a second line appended behind the cache"; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "== $label: tail -f printed the lines appended behind and through the mount"
}

# within SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS
within() {
  local end; end=$(( $(date +%s%N) + ${1%.*} * 1000000000 )); shift
  until "$@"; do [ "$(date +%s%N)" -lt "$end" ] || return 1; sleep 0.02; done
}
gone() { ! stat "$1" > /dev/null 2>&1; }
size_is() { [ "$(stat -c %s "$2" 2>/dev/null)" = "$1" ]; }

# names LABEL: names created, deleted, replaced and moved behind the cache show through lookup
# within a second, although the kernel may keep names for 600 s and attributes for 30 s.
names() {
  local n=$D/names-$1 b=$BACK/names-$1
  mkdir -p "$n/sub"
  printf a > "$n/gone"; printf bb > "$n/replaced"; printf c > "$n/sub/moved"
  stat "$n/gone" "$n/replaced" "$n/sub/moved" > /dev/null   # the kernel now holds these names
  gone "$n/new" || fail "$1: names: new exists too early"
  rm "$b/gone"
  printf 'new content' > "$b/replaced.tmp"; mv "$b/replaced.tmp" "$b/replaced"
  mv "$b/sub/moved" "$b/sub/moved2"
  printf n > "$b/new"
  within 1 gone "$n/gone" || fail "$1: a file deleted behind the cache is still there after 1 s"
  within 1 size_is 11 "$n/replaced" || fail "$1: a file replaced behind the cache still shows the old one after 1 s"
  within 1 gone "$n/sub/moved" || fail "$1: a file moved away behind the cache is still there after 1 s"
  within 1 size_is 1 "$n/sub/moved2" || fail "$1: a file moved behind the cache does not show under its new name"
  [ "$(cat "$n/new")" = n ] || fail "$1: a file created behind the cache does not show"
  echo "== $1: names changed behind the cache show through lookup"
}

TIMEOUTS=(--attr-timeout 30 --entry-timeout 600 --complete-max 1M)

t_mount "$D" "$C" "${TIMEOUTS[@]}"
readers passthrough
tail_f passthrough
names passthrough
"$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["change_watch"] == "fanotify", s["change_watch_why"]' \
  || fail "the change watcher is not active"
[ "$(counter changes_behind)" -gt 0 ] || fail "changes_behind stayed 0"
[ "$(counter kernel_invalidations)" -gt 0 ] || fail "kernel_invalidations stayed 0"
t_unmount "$D"

t_mount "$D" "$C" "${TIMEOUTS[@]}" --no-passthrough
readers no-passthrough
tail_f no-passthrough
t_unmount "$D"

# Without fanotify (as on a network file system): revalidated at the attribute timeout.
CACHEMAX_FAULT="fanotify_init:1:EPERM" t_mount "$D" "$C" --attr-timeout 0.5 --complete-max 1M
readers timeout 2.0
"$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["change_watch"] == "timeout" and "fanotify" in s["change_watch_why"], s' \
  || fail "without fanotify, stats do not say that changes are seen at the timeout"
t_unmount "$D"
echo "PASS"
