#!/usr/bin/env bash
# Kept objects (engine_kept, docs/ARCHITECTURE.md "Kept objects"): after the last close of a
# read-only hit on a small file, its cache object (record, fingerprint, data fd) and backing id
# stay in memory, so that its next open reads no record and registers no backing file. They
# must never serve an old copy: each open still checks the object against the origin's
# attributes. Proven here, with the fanotify watch and without it (the options' timeouts):
# - a reopen is a hit counted exactly once, and uses the kept view (the record removed from
#   the cache device by hand is not read again: the reopen is still a hit, with the right bytes);
# - an append, a same-size rewrite with the old mtime put back, a chmod and a setfattr made
#   behind the cache after the view was kept are all seen through the mount (within 1 s), and the
#   bytes served are always the original's;
# - a kept copy goes at once when it must: evict, and the file's deletion;
# - two opens at once of a kept file (the kept backing id reused by the first, joined by the
#   second) read right, and the last close keeps it again;
# - kept objects hold no fd of the daemon (their copies are parked: the kernel's backing files
#   keep them open): with the daemon's fd limit at 256, 1,000 small files read again are
#   reopened from their kept objects, and the daemon holds no fd on their copies.
. "$(dirname "$0")/lib.sh"
need_root
t_shm kept

get() { python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
counter() { get "$("$CACHEMAX" stats "$D" --json)" "s['stats']['counters']['$1']"; }
hits() { counter passthrough_opens_cache; }
# same REL: the bytes read through the mount equal the original's
same() { cmp -s "$D/$1" "$B/$1"; }
mode_is() { [ "$(stat -c %a "$D/$1")" = "$2" ]; }
xattr_is() { [ "$(getfattr --only-values -n "$2" "$D/$1" 2>/dev/null)" = "$3" ]; }
# settle WHAT CMD...: CMD must succeed within 1 s
settle() {
  local what=$1; shift
  for _ in $(seq 1 20); do "$@" && return 0; sleep 0.05; done
  fail "$what not seen through the mount within 1 s ($MODE)"
}
# cached REL: wait until REL's copy is complete (a read-only open then passes through to it)
cached() {
  for _ in $(seq 1 100); do
    cat "$D/$1" >/dev/null
    local before; before=$(hits)
    cat "$D/$1" >/dev/null
    [ "$(hits)" -gt "$before" ] && return 0
    sleep 0.05
  done
  fail "$1 never became a hit ($MODE)"
}

# copy_of REL: the data file of REL's copy in the cache (empty: none); found by the original's
# inode number, so also after the file's deletion
copy_of() { find "$C" -name "*-$(printf %016x "${INO[$1]}").data"; }
declare -A INO

run() {  # run MODE [CACHEMAX_FAULT]
  MODE=$1
  D=$SHM/$MODE/data B=$SHM/$MODE/back C=$SHM/$MODE/cache
  mkdir -p "$D" "$C"
  head -c 3000 /dev/urandom > "$D/f"
  head -c 2000 /dev/urandom > "$D/g"
  head -c 1500 /dev/urandom > "$D/h"
  for x in f g h; do INO[$x]=$(stat -c %i "$D/$x"); done
  t_backdoor "$D" "$B"
  if [ -n "${2:-}" ]; then
    CACHEMAX_FAULT=$2 t_mount "$D" "$C" --attr-timeout 0.3 --entry-timeout 0.3
  else
    t_mount "$D" "$C"
  fi

  # A reopen of a kept object is a hit, counted once per open.
  cached f
  h0=$(hits)
  for _ in 1 2 3; do same f || fail "f read wrong ($MODE)"; done
  [ "$(hits)" = $((h0 + 3)) ] || fail "3 reopens counted $(( $(hits) - h0 )) hits, expected 3 ($MODE)"

  # The kept view is used: h's record removed from the cache device is not read again.
  cached h
  h0=$(hits)
  meta_h=$(python3 - "$C" "$(stat -c %i "$B/h")" <<'EOF'
import os, sys
root, ino = sys.argv[1], int(sys.argv[2])
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".meta") and int(f.split("-")[1].split(".")[0], 16) == ino:
            print(os.path.join(d, f))
EOF
)
  [ -n "$meta_h" ] || fail "no record of h in the cache ($MODE): $(find "$C" -name '*.meta')"
  rm -f "$meta_h"
  same h || fail "h read wrong after its record was removed ($MODE)"
  [ "$(hits)" = $((h0 + 1)) ] || fail "the reopen of kept h was not a hit: the record was read again ($MODE)"

  # Changes behind the cache after the view was kept.
  cached f
  printf 'appended behind\n' >> "$B/f"
  settle "an append behind" same f
  cached f
  m=$(stat -c %y "$B/f")
  python3 - "$B/f" <<'EOF'
import os, sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
data[0:16] = bytes(b ^ 0xff for b in data[0:16])
with open(p, "r+b") as f:
    f.write(data)
EOF
  touch -d "$m" "$B/f"
  [ "$(stat -c %y "$B/f")" = "$m" ] || fail "touch -d did not put the mtime back"
  settle "a same-size rewrite behind (old mtime)" same f
  cached f
  chmod 600 "$B/f"
  settle "a chmod behind" mode_is f 600
  same f || fail "f read wrong after a chmod behind ($MODE)"
  cached f
  if setfattr -n user.kept -v yes "$B/f" 2>/dev/null; then
    settle "a setfattr behind" xattr_is f user.kept yes
  else
    echo "($MODE: the original takes no user xattrs here: a setfattr behind is not checked)"
  fi
  same f || fail "f read wrong after a setfattr behind ($MODE)"

  # Two opens at once of a kept file: the first reuses the kept backing id, the second joins.
  cached g
  exec 3<"$D/g"
  same g || fail "g read wrong while another open held it ($MODE)"
  cmp -s - "$B/g" <&3 || fail "g read wrong through the first open ($MODE)"
  exec 3<&-
  h0=$(hits)
  same g || fail "g read wrong after both closed ($MODE)"
  [ "$(hits)" = $((h0 + 1)) ] || fail "g not a hit after both closed ($MODE)"

  # A kept object lets go of its copy when the copy must go: evict, and the file's deletion.
  cached g
  [ -n "$(copy_of g)" ] || fail "no copy of kept g ($MODE)"
  "$CACHEMAX" evict "$D" "$D/g" >/dev/null
  [ -z "$(copy_of g)" ] || fail "the evicted copy of kept g is still there ($MODE)"
  same g || fail "g read wrong after its eviction ($MODE)"
  cached f
  [ -n "$(copy_of f)" ] || fail "no copy of kept f ($MODE)"
  rm "$D/f"
  for _ in $(seq 1 20); do [ -z "$(copy_of f)" ] && break; sleep 0.05; done
  [ -z "$(copy_of f)" ] || fail "the copy of kept f outlived the file ($MODE)"
  t_unmount "$D"
  echo "ok: kept objects ($MODE)"
}

# Kept objects beyond the fd limit: a daemon whose fd limit is 256 keeps the objects of 1,000
# files (each held a data fd before: 32 of them at most, an eighth of the limit), and 600
# empty files' besides.
many() {
  local D=$SHM/many/data C=$SHM/many/cache n=1000 k0 pid data_fds out
  mkdir -p "$D" "$C"
  python3 - "$D" "$n" <<'EOF'
import os, sys
for i in range(int(sys.argv[2])):
    d = os.path.join(sys.argv[1], "d%d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(os.urandom(1000 + i))
# Empty files (__init__.py, .gitkeep): their copies have nothing to sync and must park too
# (each kept one held a data fd, and past the fd limit every open went to the original).
os.makedirs(os.path.join(sys.argv[1], "empty"))
for i in range(600):
    open(os.path.join(sys.argv[1], "empty", "e%d" % i), "wb").close()
EOF
  CACHEMAX_FD_LIMIT=256 t_mount "$D" "$C"
  # first reads pass through to the original and fill behind; then every copy is complete
  for _ in $(seq 1 50); do
    find "$D" -type f -exec cat {} + >/dev/null
    [ "$(find "$C" -name '*.meta' | wc -l)" -ge "$n" ] && break
    sleep 0.1
  done
  find "$D" -type f -exec cat {} + >/dev/null   # hits: each copy kept at its close
  k0=$(counter kept_reopens)
  find "$D" -type f -exec cat {} + >/dev/null
  [ $(( $(counter kept_reopens) - k0 )) -ge $((n * 8 / 10)) ] \
    || fail "$n files read again under an fd limit of 256: $(( $(counter kept_reopens) - k0 )) reopens of kept objects, want >= $((n * 8 / 10))"
  pid=$(get "$("$CACHEMAX" stats "$D" --json)" "s['pid']")
  data_fds=$(find "/proc/$pid/fd" -lname '*.data' 2>/dev/null | wc -l)
  [ "$data_fds" -le 8 ] || fail "the daemon holds $data_fds fds on cache copies with nothing open (kept objects must hold none)"
  # warm --verify opens every kept object's copy and reads it: closed again after (parked).
  out=$("$CACHEMAX" warm "$D" --verify --jobs 1 2>&1) || fail "warm --verify of kept copies failed: $(tail -n 3 <<<"$out")"
  grep -q "verified $((n + 600)), 0 mismatches" <<<"$out" || fail "warm --verify of kept copies failed: $(tail -n 3 <<<"$out")"
  data_fds=$(find "/proc/$pid/fd" -lname '*.data' 2>/dev/null | wc -l)
  [ "$data_fds" -le 8 ] || fail "warm --verify left $data_fds fds on kept cache copies"
  k0=$(counter kept_reopens)
  find "$D" -type f -exec cat {} + >/dev/null
  [ $(( $(counter kept_reopens) - k0 )) -ge $((n * 8 / 10)) ] || fail "the objects were not kept through warm --verify"
  t_unmount "$D"
  echo "ok: $n kept objects under an fd limit of 256 ($data_fds fds on copies)"
}

run fanotify
run timeout "fanotify_init:1:EPERM"
many
echo "PASS: kept objects"
