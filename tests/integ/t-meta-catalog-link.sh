#!/usr/bin/env bash
# A hard link made in a run that started without a seal (the first start; any start after a
# crash) must not be sealed over (fs_catalog_nameless_change; stop 31's review, F3). --meta-catalog
# on ext4: dir/'s listing is recorded, then a link to dir/f is made in other/ -- behind the mount
# (its FAN_ATTRIB names no directory), and in a second case through it. At the clean stop no
# seal may be written; after the next start dir/f shows 2 links and its new ctime, and after a
# rewrite through its other name (an event naming other/, not dir/) and two more restarts, its
# new size and bytes. Before, the stop sealed, and the restarted mount said 1 link with the old
# ctime, and later the old size and bytes.
. "$(dirname "$0")/lib.sh"
need_root
D=$T_SCRATCH/data BACK=$T_SCRATCH/back
t_hdd_make 64M "$D"
mkdir "$D/dir" "$D/other" "$D/dir2" "$D/other2"
printf 'linked file\n' > "$D/dir/f"
printf 'old bytes\n' > "$D/dir2/f"
sync
t_backdoor "$D" "$BACK"
seal() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta_catalog"]["seal"])'; }
same() {  # same LABEL PATH: PATH's links, size, ctime, mtime and bytes as on the original
  local want got
  want=$(stat -c '%h %s %.9Z %.9Y' "$BACK/$2"; sha1sum < "$BACK/$2")
  got=$(stat -c '%h %s %.9Z %.9Y' "$D/$2"; sha1sum < "$D/$2")
  [ "$got" = "$want" ] || fail "$1: $2 through the mount: $(echo $got) where the original has $(echo $want) (seal: $(seal))"
}

t_mount "$D" "$T_SCRATCH/cache" --meta-catalog > /dev/null          # run 1: no seal yet
for _ in 1 2 3; do ls -lR "$D" > /dev/null; cat "$D/dir/f" "$D/dir2/f" > /dev/null; done
ln "$BACK/dir/f" "$BACK/other/f_link"                               # behind
ln "$D/dir2/f" "$D/other2/f_link"                                   # through the mount
sleep 1
t_unmount "$D" > /dev/null
t_mount "$D" "$T_SCRATCH/cache" --meta-catalog > /dev/null          # run 2
s=$(seal)
case $s in valid*) fail "run 2 started on a seal written over two hard links made in a run without one: $s";; esac
same "run 2" dir/f
same "run 2" dir2/f
printf 'NEW BYTES, longer\n' > "$BACK/other2/f_link"                # behind, by the other name
sleep 1
t_unmount "$D" > /dev/null
t_mount "$D" "$T_SCRATCH/cache" --meta-catalog > /dev/null          # run 3
same "run 3" dir/f
same "run 3" dir2/f
t_unmount "$D" > /dev/null
echo "ok: no seal over hard links made in an unsealed run (run 2 seal: $s)"
