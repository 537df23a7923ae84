#!/usr/bin/env bash
# An original whose file system gives no usable file handles (bindfs: FUSE without export
# support, like sshfs): nodes are reached again by parent and name, so the daemon's fds stay
# bounded. With the daemon's fd limit at 256 (its fd cache keeps 64), a tree of 3,000 inodes is
# walked, stat'ed and read with no error; files and directories renamed or deleted through the
# mount, and renamed behind it, still work as on the original.
. "$(dirname "$0")/lib.sh"
need_root
command -v bindfs >/dev/null || skip "bindfs is not installed"
t_shm nohandles
S=$SHM/src; D=$SHM/data
mkdir -p "$S" "$D"
for d in $(seq -w 1 30); do
  mkdir "$S/d$d"
  for f in $(seq -w 1 99); do echo "d$d f$f" > "$S/d$d/f$f"; done
done
bindfs "$S" "$D"; T_BINDS+=("$D")
want=$(find "$D" | wc -l)

json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
CACHEMAX_FD_LIMIT=256 t_mount "$D" "$T_SCRATCH/cache" --entry-timeout 600 --attr-timeout 600
j=$("$CACHEMAX" stats "$D" --json)
[ "$(json "$j" file_handles)" = False ] || fail "bindfs should give no usable handles"
echo "reached by name: $(json "$j" file_handles_why)"
"$CACHEMAX" status | t_grep "inodes: *reached by parent and name (the original is a FUSE" \
  || fail "status does not say how inodes are reached: $("$CACHEMAX" status)"
pid=$(json "$j" pid)

errs=$T_SCRATCH/errs
bash -c "ulimit -n 1024; cd '$D'
  find . -printf '%s %m\n' > '$T_SCRATCH/stat.out'
  cat */* > '$T_SCRATCH/cat.out'
  find . -type f -exec cat {} + > /dev/null" 2> "$errs" || fail "walk failed: $(head -5 "$errs")"
[ ! -s "$errs" ] || fail "errors during the walk: $(head -5 "$errs")"
[ "$(wc -l < "$T_SCRATCH/stat.out")" -eq "$want" ] || fail "stat saw $(wc -l < "$T_SCRATCH/stat.out") of $want"
cmp -s "$T_SCRATCH/cat.out" <(cd "$S" && cat */*) || fail "bytes read through the mount differ"
fds=$(ls /proc/"$pid"/fd | wc -l)
j=$("$CACHEMAX" stats "$D" --json)
echo "nodes $(json "$j" nodes), fds $fds (cached $(json "$j" fds_cached), pinned $(json "$j" fds_pinned)), misses $(json "$j" fd_cache_misses)"
[ "$fds" -le 128 ] || fail "the daemon holds $fds fds for $(json "$j" nodes) nodes"
[ "$(json "$j" nodes)" -gt 1000 ] || fail "too few nodes held to show anything"
[ "$(json "$j" fd_cache_misses)" -gt 0 ] || fail "no fd was ever reopened by name: the cache was never full"

# Renames and deletes through the mount: the nodes keep their fds (pinned) and stay right.
exec 7< "$D/d01/f01"
mv "$D/d02" "$D/d02-moved"
mv "$D/d03/f05" "$D/d04/f05-moved"
rm "$D/d01/f01"
grep -q "d01 f01" <&7 || fail "a file deleted through the mount while open reads wrong"
exec 7<&-
# Push the moved nodes' neighbours out of the fd cache, then use the moved ones again.
find "$D" -type f -exec cat {} + > /dev/null
grep -q "d02 f07" "$D/d02-moved/f07" || fail "a file in a directory renamed through the mount reads wrong"
grep -q "d03 f05" "$D/d04/f05-moved" || fail "a file renamed through the mount reads wrong"
stat "$D/d02-moved" > /dev/null || fail "stat of a directory renamed through the mount"

# Renamed behind the cache (in the directory under bindfs, which no watch of the FUSE original
# sees): the new names are found at once; an old name the kernel still caches lives out the
# entry timeout (600 s here), as on any original without change watching (docs/ARCHITECTURE.md).
mv "$S/d05/f03" "$S/d05/f03-behind"
mv "$S/d06" "$S/d06-behind"
grep -q "d05 f03" "$D/d05/f03-behind" || fail "a file renamed behind the cache is not found by its new name"
grep -q "d06 f02" "$D/d06-behind/f02" || fail "a directory renamed behind the cache is not found by its new name"
grep -q "d06 f09" "$D/d06-behind/f09" || fail "a file in a directory renamed behind the cache reads wrong"
grep -qi "AddressSanitizer\|runtime error" "$CACHEMAX_RUN_DIR"/*.log && fail "sanitizer report"
t_unmount "$D"
