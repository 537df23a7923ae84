#!/usr/bin/env bash
# Safe on a multi-user machine (issue #11). As user nobody (65534): cannot evict, stop, warm or
# ask anything but read-only verbs, and cannot point root's CLI at a record or socket of its
# own. The daemon's run directory, records and socket are root's and not writable by others.
# A cache directory owned by another user, writable by others, or under a directory another
# user can write to is refused; one the start creates is root's, mode 0700. A directory with a
# tmpfs mounted below it is refused (and listed) and accepted with --allow-submounts, the tmpfs
# then served through the mount; an accelerated directory below an accelerated one can still
# be stopped; "x/.." is the kernel's parent of x; /, /proc, /sys, /dev, /run are refused.
. "$(dirname "$0")/lib.sh"
need_root
id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null || skip "needs user nobody and setpriv"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

expect() {  # expect RC PATTERN command...: exit code and a message matching PATTERN
  local want=$1 pat=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want: $out"
  echo "$out" | t_grep -iE -- "$pat" || fail "'$*' said '$out', expected /$pat/"
}
# ask USER-PREFIX... SOCKET REQUEST: one raw request line, the reply on stdout
ask() {
  local sock=${*: -2:1} req=${*: -1}
  "${@:1:$#-2}" /usr/bin/python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect: %s" % e.strerror); sys.exit(0)
s.sendall(sys.argv[2].encode()+b"\n"); print(s.makefile().readline().strip())' "$sock" "$req"
}

# The scratch directory is root's 0700; nobody must be able to look inside for this test.
chmod 755 "$T_SCRATCH"
D=$T_SCRATCH/data C=$T_SCRATCH/cache
mkdir -p "$D/private"
echo secret > "$D/private/f"; chmod 700 "$D/private"
echo data > "$D/x"

# --- 1. control socket and state --------------------------------------------------------------
t_mount "$D" "$C"
run_mode=$(stat -c '%U %a' "$CACHEMAX_RUN_DIR")
[ "$run_mode" = "root 755" ] || fail "run directory is '$run_mode', expected 'root 755'"
rec=$(ls "$CACHEMAX_RUN_DIR"/*.state); sock=$(ls "$CACHEMAX_RUN_DIR"/*.sock)
[ "$(stat -c '%U %a' "$rec")" = "root 644" ] || fail "state record: $(stat -c '%U %a' "$rec")"
[ "$(stat -c '%U %a' "$sock")" = "root 600" ] || fail "socket: $(stat -c '%U %a' "$sock")"
[ "$(stat -c '%U %a' "$C")" = "root 700" ] || fail "created cache directory: $(stat -c '%U %a' "$C")"
cat "$D/x" >/dev/null
# status is for everyone (records are 0644); the rest is root's
"${NOBODY[@]}" "$CACHEMAX" status | t_grep "^$D\$" || fail "nobody cannot run status"
expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" evict "$D"
expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" evict "$D" "$D/private/f"
expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" stop "$D"
expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" warm "$D"
expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" verify "$D"
expect 1 "permission denied" "${NOBODY[@]}" "$CACHEMAX" stats "$D"
# the socket itself: nobody cannot even connect
ask "${NOBODY[@]}" "$sock" "evict" | t_grep "connect: Permission denied" || fail "nobody could connect to the 0600 socket"
grep -q " $D fuse.cachemax " /proc/mounts || fail "nobody stopped the mount"
# nobody cannot write a record or socket of its own into the run directory
"${NOBODY[@]}" sh -c "echo dir=/x > '$CACHEMAX_RUN_DIR/evil.state'" 2>/dev/null && fail "nobody wrote into the run directory"
"${NOBODY[@]}" sh -c "echo >> '$rec'" 2>/dev/null && fail "nobody changed the state record"
# malformed requests (root): refused without reaching the handler
[ "$(ask "$sock" "evict ../../etc/passwd")" = '{"error": "malformed argument"}' ] || fail "'..' in evict accepted"
[ "$(ask "$sock" "defrag x")" = '{"error": "unknown request"}' ] || fail "unknown verb: $(ask "$sock" "defrag x")"
[ "$(ask "$sock" "warm")" = '{"error": "malformed argument"}' ] || fail "warm without a path: $(ask "$sock" "warm")"
[ "$(ask "$sock" "stats x")" = '{"error": "malformed argument"}' ] || fail "stats with an argument: $(ask "$sock" "stats x")"
ask "$sock" "stats" | t_grep '"pid"' || fail "root cannot read stats"
t_unmount "$D"

# --public-stats: read-only verbs for everyone, changes still root's (SO_PEERCRED)
t_mount "$D" "$C" --public-stats
sock=$(ls "$CACHEMAX_RUN_DIR"/*.sock)
[ "$(stat -c '%a' "$sock")" = 666 ] || fail "--public-stats socket mode $(stat -c '%a' "$sock")"
"${NOBODY[@]}" "$CACHEMAX" stats "$D" --json | t_grep '"pid"' || fail "nobody cannot read stats with --public-stats"
for req in evict "evict x" "evict private/f" "warm x" "verify x" "stop" "config set x 1"; do
  out=$(ask "${NOBODY[@]}" "$sock" "$req")
  [[ $out == *"permission denied"* ]] || fail "nobody sent '$req' and got '$out'"
done
ask "$sock" "evict x" | t_grep '"evicted"' || fail "root cannot evict: $(ask "$sock" "evict x")"

# The CLI refuses records and sockets that are not root's (a redirect to nobody's socket).
fake=$T_SCRATCH/fake; mkdir -p "$fake"; chown 65534 "$fake"
"${NOBODY[@]}" /usr/bin/python3 -c '
import socket,sys,os
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$fake/evil.sock"
[ -S "$fake/evil.sock" ] || fail "could not make nobody's socket"
mv "$rec" "$T_SCRATCH/saved.state"
sed "s|^socket=.*|socket=$fake/evil.sock|" "$T_SCRATCH/saved.state" > "$rec"
expect 1 "not a socket owned by root" "$CACHEMAX" stats "$D"
expect 1 "not a socket owned by root" "$CACHEMAX" evict "$D"
chown 65534 "$rec"
expect 1 "owner uid 65534.*rm $rec" "$CACHEMAX" status
expect 1 "refusing to trust" "$CACHEMAX" stats "$D"
chown 0 "$rec"; chmod 666 "$rec"
expect 1 "mode 0666" "$CACHEMAX" status
mv "$T_SCRATCH/saved.state" "$rec"
"$CACHEMAX" status | t_grep "health: *ok" || fail "status after the record was put back"
t_unmount "$D"

# --- 2. the cache directory must be root's all the way down --------------------------------------
U=$T_SCRATCH/userdir; mkdir -p "$U/cache"; chown -R 65534:65534 "$U"
expect 1 "'$U' is owned by uid 65534.*chown root" "$CACHEMAX" start "$D" --cache "$U/cache"
chown 0:0 "$U/cache"
expect 1 "'$U' is owned by uid 65534" "$CACHEMAX" start "$D" --cache "$U/cache"
expect 1 "'$U' is owned by uid 65534" "$CACHEMAX" start "$D" --cache "$U/new"
[ ! -e "$U/new" ] || fail "a refused start created a cache directory under nobody's directory"
W=$T_SCRATCH/open; mkdir -p "$W/cache"; chmod 777 "$W"; chmod 700 "$W/cache"
expect 1 "'$W' is writable by every user.*chmod go-w" "$CACHEMAX" start "$D" --cache "$W/cache"
chmod 775 "$W"
expect 1 "'$W' is writable by its group" "$CACHEMAX" start "$D" --cache "$W/cache"
chmod 755 "$W"; chmod 777 "$W/cache"
expect 1 "cache directory '$W/cache' is not safe.*plant" "$CACHEMAX" start "$D" --cache "$W/cache"
chmod 1777 "$W/cache"
expect 1 "plant" "$CACHEMAX" start "$D" --cache "$W/cache"
# a sticky world-writable parent (like /tmp, /dev/shm) is fine under a root-owned 0700 cache
chmod 1777 "$W"; chmod 700 "$W/cache"
t_mount "$D" "$W/cache"
t_unmount "$D"
# ...but not a cache directory someone else made there first (the README's /dev/shm case)
t_shm sec; chmod 1777 "$SHM"; mkdir "$SHM/cmcache"; chown 65534 "$SHM/cmcache"
expect 1 "owned by uid 65534" "$CACHEMAX" start "$D" --cache "$SHM/cmcache"
# a store inside the cache directory made by someone else is refused by the daemon
S2=$T_SCRATCH/c2; mkdir -p "$S2/cachemax-v1"; chmod 700 "$S2"; chown 65534 "$S2/cachemax-v1"
expect 1 "another user" "$CACHEMAX" start "$D" --cache "$S2"
grep -q " $D fuse.cachemax " /proc/mounts && fail "a refused start left a mount"

# --- 3. mounts below, pseudo file systems, resolved paths ---------------------------------------
for sys in / /proc /sys /dev /run /proc/sys /sys/kernel /dev/pts; do
  expect 1 "cannot accelerate '$sys'" "$CACHEMAX" start "$sys" --cache "$C"
done
mkdir -p "$D/sub"; echo under > "$D/sub/under"
mount -t tmpfs -o size=1m cmtest-sec "$D/sub"; T_BINDS+=("$D/sub")
echo intmpfs > "$D/sub/t"
expect 1 "1 file system is mounted below it: $D/sub \(tmpfs\)" "$CACHEMAX" start "$D" --cache "$C"
expect 1 "mounted below it: $D/sub" "$CACHEMAX" start "$D/sub/.." --cache "$C"
grep -q " $D fuse.cachemax " /proc/mounts && fail "a refused start left a mount"
t_mount "$D" "$C" --allow-submounts
[ "$(cat "$D/sub/t")" = intmpfs ] || fail "the tmpfs below is not served through the mount"
echo new > "$D/sub/new"
[ "$(cat "$D/x")" = data ] || fail "the directory itself is not served"
# an accelerated directory below an accelerated one: started before, stopped while covered
mkdir -p "$T_SCRATCH/inner-cache"
t_unmount "$D"
[ "$(cat "$D/sub/new")" = new ] || fail "a write through the mount did not reach the tmpfs"
N=$D/sub/nested; mkdir -p "$N"; echo inner > "$N/f"
t_mount "$N" "$T_SCRATCH/inner-cache"
t_mount "$D" "$C" --allow-submounts
[ "$(cat "$N/f")" = inner ] || fail "the accelerated directory below is not served through the mount"
expect 0 "stopped $N" "$CACHEMAX" stop "$N"
grep -q " $N fuse.cachemax " /proc/mounts && fail "stop of the covered $N left its mount"
[ "$(cat "$N/f")" = inner ] || fail "$N after its stop"
t_unmount "$D"
echo ok
