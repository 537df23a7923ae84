#!/usr/bin/env bash
# POSIX ACLs through the mount (FUSE_POSIX_ACL, src/fs/fs.h): the kernel checks permissions with
# the original's ACLs, as the original does. Before, under default_permissions the kernel read
# the mode bits alone: a user an ACL entry denies read the file through the mount (the group
# bits, which hold the ACL's mask, put it in "other"), and one an entry admits was refused.
# Checked as user nobody, each outcome compared with the same access on the original:
# - reads and writes of files whose ACL denies or admits nobody, a directory an ACL opens or
#   closes to it (lookup through it);
# - an ACL set, changed and removed behind the cache (the kernel caches ACLs: each must apply
#   within 1 s, with the watcher, and within the attribute timeout without it);
# - an ACL set and removed through the mount (applies at once), a chmod of a file with an ACL
#   (the original moves the mask: both sides read the same ACL and mode);
# - a file and a directory created through the mount in a directory with a default ACL get
#   the ACL and mode the original gives to the same creation (umask 022).
. "$(dirname "$0")/lib.sh"
need_root
t_shm acl
command -v setpriv > /dev/null || skip "no setpriv"

# acl.py PATH OWNER ENTRIES GROUP MASK OTHER [default]: set an access (or default) ACL from
# octal digits; ENTRIES: comma-separated u:UID:P / g:GID:P ("" for none).
cat > "$T_SCRATCH/acl.py" <<'EOF'
import os, struct, sys
def e(tag, perm, ident=0xffffffff):
    return struct.pack("<HHI", tag, perm, ident)
path, owner, entries, group, mask, other = sys.argv[1:7]
name = "system.posix_acl_default" if len(sys.argv) > 7 else "system.posix_acl_access"
ents = [e(1, int(owner))]
for x in filter(None, entries.split(",")):
    t, ident, p = x.split(":")
    ents.append(e({"u": 2, "g": 8}[t], int(p), int(ident)))
ents += [e(4, int(group)), e(0x10, int(mask)), e(0x20, int(other))]
os.setxattr(path, name, struct.pack("<I", 2) + b"".join(ents))
EOF
acl() { python3 "$T_SCRATCH/acl.py" "$@"; }
NOBODY=$(id -u nobody) || skip "no user nobody"
SYSPY=/usr/bin/python3  # one nobody may run (root's python3 may be a private shim)
[ -x "$SYSPY" ] || skip "no /usr/bin/python3"
chmod 755 "$SHM" "$T_SCRATCH"  # nobody walks to the files on both sides

# as_nobody OP PATH: "ok" or "refused" for nobody's read (cat), write (append) or stat
as_nobody() {
  local cmd
  case $1 in
    read) cmd="cat '$2' > /dev/null";;
    write) cmd="printf w >> '$2'";;
    stat) cmd="stat '$2' > /dev/null";;
  esac
  if setpriv --reuid="$NOBODY" --regid="$(id -g nobody)" --clear-groups sh -c "$cmd" 2>/dev/null; then
    echo ok
  else
    echo refused
  fi
}

# same OP REL: nobody gets the same answer through the mount as on the original (behind)
same() {
  local m o
  m=$(as_nobody "$1" "$D/$2") o=$(as_nobody "$1" "$BACK/$2")
  [ "$m" = "$o" ] || fail "$MODE: nobody's $1 of $2: $m through the mount, $o on the original"
  echo "$MODE: $1 $2: $m (same as the original)"
}

# settles OP REL WANT: within 1 s nobody's OP of REL through the mount gives WANT, and the
# original gives it too
settles() {
  local i got
  [ "$(as_nobody "$1" "$BACK/$2")" = "$3" ] || fail "$MODE: the original does not give $3 for $1 $2"
  for i in $(seq 1 20); do
    got=$(as_nobody "$1" "$D/$2")
    [ "$got" = "$3" ] && { echo "$MODE: $1 $2: $3 after $((i * 50)) ms at most"; return 0; }
    sleep 0.05
  done
  fail "$MODE: nobody's $1 of $2 through the mount: $got 1 s after the change behind, want $3"
}

acl_of() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null | od -An -tx1 | tr -d ' \n'; }

for MODE in watched timeout; do
  D=$SHM/data-$MODE BACK=$T_SCRATCH/back-$MODE C=$T_SCRATCH/cache-$MODE
  t_backdoor "$D" "$BACK"
  chmod 755 "$D"
  for f in deny grant plain; do printf data > "$D/$f"; done
  chmod 646 "$D/deny"; acl "$D/deny" 6 "u:$NOBODY:0" 4 6 6       # other may; nobody may not
  chmod 640 "$D/grant"; acl "$D/grant" 6 "u:$NOBODY:6" 4 6 0      # other may not; nobody may
  chmod 644 "$D/plain"
  mkdir -m 700 "$D/open-dir" "$D/shut-dir"; printf x > "$D/open-dir/f"; printf x > "$D/shut-dir/f"
  chmod 755 "$D/shut-dir"; acl "$D/shut-dir" 7 "u:$NOBODY:0" 5 5 5
  acl "$D/open-dir" 7 "u:$NOBODY:5" 0 5 0
  if [ $MODE = watched ]; then
    t_mount "$D" "$C" --attr-timeout 600 --entry-timeout 600
  else
    CACHEMAX_FAULT="fanotify_init:1:EPERM" t_mount "$D" "$C" --attr-timeout 0.3 --entry-timeout 0.3
  fi

  for op in read write; do same $op deny; same $op grant; done
  same read plain; same write plain
  same stat open-dir/f; same stat shut-dir/f
  [ "$(as_nobody read "$D/deny")" = refused ] || fail "$MODE: an ACL entry that denies nobody let it read through the mount"
  [ "$(as_nobody read "$D/grant")" = ok ] || fail "$MODE: an ACL entry that admits nobody was refused through the mount"

  # Behind the cache: the kernel's cached ACL must go.
  acl "$BACK/grant" 6 "u:$NOBODY:0" 4 4 0; settles read grant refused
  acl "$BACK/grant" 6 "u:$NOBODY:4" 4 4 0; settles read grant ok
  setfattr -x system.posix_acl_access "$BACK/grant"; settles read grant refused
  acl "$BACK/plain" 6 "u:$NOBODY:0" 4 4 4; settles read plain refused
  acl "$BACK/shut-dir" 7 "" 5 5 5; settles stat shut-dir/f ok

  # Through the mount: applies at once.
  acl "$D/plain" 6 "u:$NOBODY:4" 4 4 0
  [ "$(as_nobody read "$D/plain")" = ok ] || fail "$MODE: an ACL set through the mount did not admit nobody"
  same read plain
  setfattr -x system.posix_acl_access "$D/plain"
  [ "$(as_nobody read "$D/plain")" = refused ] || fail "$MODE: the ACL removed through the mount still admits nobody (mode $(stat -c %a "$D/plain"))"
  same read plain

  # chmod of a file with an ACL: the original moves the mask; both sides read the same.
  chmod 600 "$D/deny"
  [ "$(acl_of system.posix_acl_access "$D/deny")" = "$(acl_of system.posix_acl_access "$BACK/deny")" ] ||
    fail "$MODE: the ACL after chmod differs between the mount and the original"
  [ "$(stat -c %a "$D/deny")" = "$(stat -c %a "$BACK/deny")" ] || fail "$MODE: the mode after chmod differs"
  same read deny

  # An owner outside the file's group sets an access ACL on its setgid file: a local file system
  # clears the setgid bit (FUSE_SETXATTR_ACL_KILL_SGID; the daemon sets the ACL as root, which
  # would keep it). nobody owns both files; their group is root's, which nobody is not in.
  for side in "$D" "$BACK"; do
    printf s > "$side/sgid-${side##*/}"; chown "$NOBODY:0" "$side/sgid-${side##*/}"
    chmod 2775 "$side/sgid-${side##*/}"
  done
  setpriv --reuid="$NOBODY" --regid="$(id -g nobody)" --clear-groups \
    "$SYSPY" "$T_SCRATCH/acl.py" "$D/sgid-${D##*/}" 7 "u:$NOBODY:5" 7 7 5 ||
    fail "$MODE: nobody could not set an ACL on its own file through the mount"
  setpriv --reuid="$NOBODY" --regid="$(id -g nobody)" --clear-groups \
    "$SYSPY" "$T_SCRATCH/acl.py" "$BACK/sgid-${BACK##*/}" 7 "u:$NOBODY:5" 7 7 5 ||
    fail "$MODE: nobody could not set an ACL on its own file on the original"
  m=$(stat -c %a "$BACK/sgid-${D##*/}") o=$(stat -c %a "$BACK/sgid-${BACK##*/}")
  [ "$m" = "$o" ] || fail "$MODE: an ACL set by an owner outside the group: mode $m through the mount, $o on the original"
  echo "$MODE: ACL set by an owner outside the group: mode $m, as on the original"

  # Default ACL inheritance: the same creation through the mount and on the original.
  mkdir "$BACK/inherit-m" "$BACK/inherit-o"
  for d in inherit-m inherit-o; do acl "$BACK/$d" 7 "u:$NOBODY:6" 5 7 0 default; done
  sleep 0.4  # past the timeout mode's attribute timeout
  (umask 022; printf n > "$D/inherit-m/new"; mkdir "$D/inherit-m/sub"
   printf n > "$BACK/inherit-o/new"; mkdir "$BACK/inherit-o/sub")
  for x in new sub; do
    [ "$(stat -c %a "$BACK/inherit-m/$x")" = "$(stat -c %a "$BACK/inherit-o/$x")" ] ||
      fail "$MODE: $x made through the mount has mode $(stat -c %a "$BACK/inherit-m/$x"), made directly $(stat -c %a "$BACK/inherit-o/$x")"
    [ "$(acl_of system.posix_acl_access "$BACK/inherit-m/$x")" = "$(acl_of system.posix_acl_access "$BACK/inherit-o/$x")" ] ||
      fail "$MODE: $x made through the mount has another access ACL than one made directly"
  done
  [ -n "$(acl_of system.posix_acl_default "$BACK/inherit-m/sub")" ] || fail "$MODE: sub did not inherit the default ACL"
  same write inherit-m/new
  echo "$MODE: default ACL inherited as on the original"
  t_unmount "$D"
done
echo PASS
