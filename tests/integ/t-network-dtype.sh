#!/usr/bin/env bash
# Entry types of a network original's listings (issue 14, target (c); src/fs/fs_ops.c
# entry_dtype): sshfs lists every entry DT_UNKNOWN, so a reader of d_type (find, fts, git's scan
# of untracked files) lstat()s every entry it gets so. Through the mount, a READDIRPLUS entry
# carries the type of the attributes its lookup read, in the default mode and with --openless
# (where an entry's attributes are valid for 0 s: each such lstat was a GETATTR that opens the
# original, and `find` of 10,000 files after a listing was read again took 10 s instead of
# 0.05). Checked, in both modes, over a private sshd (lib.sh t_sshd_start/t_sshfs):
# (i)   the first listing through the mount gives every entry its type (regular file,
#       directory, symlink) and no DT_UNKNOWN;
# (ii)  so does the listing read again from the original once the window of the first has
#       passed (--attr-timeout/--entry-timeout 1: a new snapshot of each directory);
# (iii) where perf and tracefs are: `find` over that re-read listing sends no GETATTR.
# Without entry_dtype the default mode fails (i) (32 of 33 entries DT_UNKNOWN) and --openless
# (ii) (its first listing was typed, the one read again 32 of 33 DT_UNKNOWN). (sshfs itself
# lists types when it reads the server and DT_UNKNOWN from its own directory cache.)
. "$(dirname "$0")/lib.sh"
need_root
t_has_sshfs || skip "needs sshfs and sshd (Debian sshfs, openssh-server; make deps)"

S=$T_SCRATCH/share
mkdir -p "$S"
for d in 1 2 3; do
  mkdir -p "$S/d$d/sub"
  for i in $(seq 1 30); do echo "$d $i" > "$S/d$d/f$i"; done
  ln -s f1 "$S/d$d/link"
done
# old times: no directory is within the 2 s in which listings are not cached at all
touch -h -d '1 hour ago' "$S"/d*/* "$S"/d* "$S"
export PYTHONPATH=$(cd "$(dirname "$0")" && pwd)
cat > "$T_SCRATCH/dtypes.py" <<'EOF'
# dtypes.py DIR...: for each DIR "unknown=N wrong=N" (d_type from libc's readdir, against lstat)
import os, stat, sys
from dirlib import libc, rest   # tests/integ/dirlib.py
want = {stat.S_IFREG: 8, stat.S_IFDIR: 4, stat.S_IFLNK: 10}
for d in sys.argv[1:]:
    h = libc.opendir(d.encode())
    if not h:
        sys.exit("opendir %s failed" % d)
    types = dict(rest(h))
    libc.closedir(h)
    unknown = sum(1 for t in types.values() if t == 0)
    wrong = sum(1 for n, t in types.items()
                if t != 0 and t != want.get(stat.S_IFMT(os.lstat(os.path.join(d, n)).st_mode)))
    print("unknown=%d wrong=%d" % (unknown, wrong))
EOF
t_sshd_start
counting=1
t_can_count_requests || counting=0

check_mode() {   # check_mode LABEL [start options...]
  local label=$1 m r n line; shift
  m=$T_SCRATCH/client-$label
  t_sshfs "$S" "$m"
  t_mount "$m" "$T_SCRATCH/cache-$label" --attr-timeout 1 --entry-timeout 1 "$@" >/dev/null
  # (i) the first listing
  for d in 1 2 3; do
    line=$(python3 "$T_SCRATCH/dtypes.py" "$m/d$d")
    [ "$line" = "unknown=0 wrong=0" ] || fail "(i) $label: the first listing of d$d through the mount: $line (want every entry typed)"
  done
  # (ii) read again from the original past the window (stat the files meanwhile, as a reader
  # would: the kernel knows every node then)
  cat "$m"/d*/f* > /dev/null
  sleep 1.5
  for d in 1 2 3; do
    line=$(python3 "$T_SCRATCH/dtypes.py" "$m/d$d")
    [ "$line" = "unknown=0 wrong=0" ] || fail "(ii) $label: a listing of d$d read again past the window: $line (want every entry typed)"
  done
  # (iii) find over a listing read again sends no GETATTR for its files
  if [ $counting = 1 ]; then
    sleep 1.5
    r=$(t_requests "$m" "find '$m' > /dev/null")
    n=$(echo "$r" | t_request_count GETATTR)
    [ "$n" -le 10 ] || fail "(iii) $label: find of 3 directories of 33 entries over listings read again sent $n GETATTR (want <= 10, the 7 directories' at most: d_type says which entries are files)"
    echo "$label: find over re-read listings: $(echo "$r" | awk '{printf "%s=%s ", $2, $1}')"
  fi
  "$CACHEMAX" stop "$m" >/dev/null
}
check_mode default
check_mode openless --openless
echo "PASS: t-network-dtype"
