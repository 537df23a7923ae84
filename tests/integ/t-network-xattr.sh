#!/usr/bin/env bash
# xattrs on an original whose file system has none (issue 14, target (c); src/fs/fs_xattr.c,
# "an original whose file system has no xattrs"): over sshfs the daemon answers GETXATTR and
# LISTXATTR with ENOSYS, so that the kernel answers them itself from then on (EOPNOTSUPP, and a
# NULL ACL for the two ACL names) instead of sending one GETXATTR per file at every `ls -l`.
# A private sshd on 127.0.0.1 serves the share S; A is an sshfs mount of S, reached behind the
# CacheMax mount at B (a bind of A made before the start). Checked:
# (i)   what ls -l, getfattr -d/-n, getfacl, setfattr, setfacl and getxattr/listxattr of every
#       name ls, cp -a and tar ask (on a directory, a file and a symlink) answer through the
#       mount equals what they answer on the sshfs mount itself: output, exit status, errno;
# (ii)  a warm `ls -lR` of N files through the mount sends at most a handful of GETXATTRs
#       (perf on fuse:fuse_request_send; without perf and tracefs, not counted); before the
#       change it sent N + 2 per directory + 1;
# (iii) with a file system that has xattrs mounted below the original (--allow-submounts), the
#       requests go to the original as before: an xattr set on the submount reads back;
# (iv)  an unprivileged write, root's chown(-1, -1) and an unprivileged fallocate (which sshfs
#       lacks) through the mount leave the set-id bits as on sshfs (the kernel no longer sends the capability probe that told a write apart,
#       so such a mount does without FUSE_HANDLE_KILLPRIV_V2).
. "$(dirname "$0")/lib.sh"
need_root
t_has_sshfs || skip "needs sshfs and sshd (Debian sshfs, openssh-server; make deps)"
command -v getfacl > /dev/null && command -v getfattr > /dev/null || skip "needs getfacl and getfattr (Debian acl, attr; make deps)"
N=300

S=$T_SCRATCH/share A=$T_SCRATCH/sshfs B=$T_SCRATCH/behind
mkdir -p "$S/d1" "$S/d2/sub"
for i in $(seq 1 $((N / 3))); do echo "$i" > "$S/d1/f$i"; echo "$i" > "$S/d2/g$i"; echo "$i" > "$S/d2/sub/h$i"; done
ln -s f1 "$S/d1/link"
t_sshd_start
t_sshfs "$S" "$A"
t_backdoor "$A" "$B"
t_mount "$A" "$T_SCRATCH/cache" --attr-timeout 30 --entry-timeout 30 > /dev/null

# answers ROOT: every answer the tools and the xattr calls give under ROOT, paths relative.
answers() (
  cd "$1"
  r() { "$@" 2>&1; echo "rc=$?"; }
  r ls -l d1
  r getfattr -d d1/f1; r getfattr -d d1; r getfattr -h -d d1/link; r getfattr -n user.x d1/f1
  r getfacl d1/f1; r getfacl d1; r getfacl -d d1
  r setfattr -n user.x -v 1 d1/f1; r setfattr -x user.x d1/f1
  r setfacl -m u:nobody:r d1/f1; r setfacl -d -m u:nobody:r d1
  python3 - <<'PY'
import os
for p in ["d1", "d1/f1", "d1/link"]:
    for n in ["security.selinux", "system.posix_acl_access", "system.posix_acl_default",
              "user.x", "trusted.x", "security.capability", "system.nfs4_acl"]:
        for follow in (False, True):
            try:
                print(p, n, follow, "value", os.getxattr(p, n, follow_symlinks=follow))
            except OSError as e:
                print(p, n, follow, "errno", e.errno)
    try:
        print(p, "list", os.listxattr(p, follow_symlinks=False))
    except OSError as e:
        print(p, "list errno", e.errno)
PY
)
# (i) twice through the mount: the first asks before the kernel learned anything (its first
# GETXATTR and LISTXATTR get the ENOSYS), the second after
want=$(answers "$B")
got=$(answers "$A")
[ "$got" = "$want" ] || fail "answers through the mount differ from sshfs's: $(diff <(echo "$want") <(echo "$got"))"
echo "$want" | t_grep "system.posix_acl_access False errno 61" || fail "sshfs: an ACL name should be ENODATA: $want"
echo "$want" | t_grep "user.x False errno 95" || fail "sshfs: a user.* name should be EOPNOTSUPP: $want"
got=$(answers "$A")
[ "$got" = "$want" ] || fail "answers through the mount, asked again, differ: $(diff <(echo "$want") <(echo "$got"))"
[ "$(cd "$A" && ls -lR)" = "$(cd "$B" && ls -lR)" ] || fail "ls -lR through the mount differs from sshfs's"
[ "$(t_read_counter "$A" xattr_absent_answers)" -ge 1 ] || fail "no GETXATTR was answered ENOSYS (xattr_absent_answers 0)"

# (ii) GETXATTRs of a warm ls -lR
if t_can_count_requests; then
  ls -lR "$A" > /dev/null
  n=$(t_requests "$A" "ls -lR '$A'" | t_request_count GETXATTR)
  echo "warm ls -lR of $N files: $n GETXATTR"
  [ "$n" -le 4 ] || fail "a warm ls -lR of $N files on sshfs sent $n GETXATTRs to the daemon (want <= 4)"
else
  echo "(no perf or tracefs: the GETXATTRs of ls -lR not counted)"
fi

# (iv) the kernel no longer asks for security.capability before a write (it answers the
# GETXATTR itself), yet an unprivileged write still clears the set-user-ID bit through the
# mount, as the sshfs mount's own kernel does (a SETATTR mode to sshfs)
chmod 755 "$T_SCRATCH" "$B"; chmod 777 "$S"
echo a > "$S/suid-b"; echo a > "$S/suid-a"; chmod 4777 "$S/suid-b" "$S/suid-a"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo x >> '$B/suid-b'" || fail "(iv) nobody's write on sshfs failed"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo x >> '$A/suid-a'" || fail "(iv) nobody's write through the mount failed"
[ "$(stat -c %a "$S/suid-b")" = 777 ] || fail "(iv) sshfs itself kept the set-user-ID bit after nobody's write: $(stat -c %a "$S/suid-b")"
[ "$(stat -c %a "$S/suid-a")" = 777 ] || fail "(iv) a write by nobody through the mount left the set-user-ID bit: $(stat -c %a "$S/suid-a") (sshfs clears it)"
echo a > "$S/chown-b"; echo a > "$S/chown-a"; chmod 6777 "$S/chown-b" "$S/chown-a"
python3 -c 'import os, sys; [os.chown(p, -1, -1) for p in sys.argv[1:]]' "$B/chown-b" "$A/chown-a"
[ "$(stat -c %a "$S/chown-a")" = "$(stat -c %a "$S/chown-b")" ] \
  || fail "(iv) root's chown(-1, -1) of a 6777 file: $(stat -c %a "$S/chown-a") through the mount, $(stat -c %a "$S/chown-b") on sshfs"
# fallocate, which sshfs lacks: after a first call on each mount, a second one by nobody fails
# alike and leaves the set-group-ID bit alike (the kernels stop asking after an ENOSYS)
echo a > "$S/falloc-b"; echo a > "$S/falloc-a"; chown 65534 "$S/falloc-b" "$S/falloc-a"
for round in 1 2; do
  chmod 2755 "$S/falloc-b" "$S/falloc-a"
  eb=$( (setpriv --reuid=65534 --regid=65534 --clear-groups fallocate -l 16384 "$B/falloc-b" 2>&1 || true) | sed 's|.*: ||')
  ea=$( (setpriv --reuid=65534 --regid=65534 --clear-groups fallocate -l 16384 "$A/falloc-a" 2>&1 || true) | sed 's|.*: ||')
  [ "$ea" = "$eb" ] || fail "(iv) fallocate $round: '$ea' through the mount, '$eb' on sshfs"
  [ "$(stat -c %a "$S/falloc-a")" = "$(stat -c %a "$S/falloc-b")" ] \
    || fail "(iv) fallocate $round by nobody: mode $(stat -c %a "$S/falloc-a") through the mount, $(stat -c %a "$S/falloc-b") on sshfs"
done
t_unmount "$A"

# (iii) a submount that has xattrs: the daemon keeps asking the original
mount -t tmpfs -o size=1m tmpfs "$A/d2/sub"
T_BINDS+=("$A/d2/sub")
echo x > "$A/d2/sub/t"
t_mount "$A" "$T_SCRATCH/cache" --attr-timeout 30 --entry-timeout 30 --allow-submounts > /dev/null
getfattr -d "$A/d1/f1" > /dev/null 2>&1 && fail "getfattr on sshfs through the mount succeeded"
setfattr -n user.x -v 42 "$A/d2/sub/t" || fail "setfattr on a tmpfs submount through the mount failed"
getfattr -n user.x --only-values "$A/d2/sub/t" | t_grep -x 42 || fail "user.x on the submount does not read back"
echo "ok"
