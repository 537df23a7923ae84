#!/usr/bin/env bash
# cachemax warm and verify (issue #16 items 2 and 3).
#   1. warm completes every file's copy: each file read afterwards is a passthrough hit (the
#      counters show only cache opens, no origin open or read), and the bytes read are the
#      original's; a glob picks files as --pin does; a second warm copies nothing.
#   2. warm resumes after SIGINT and a restart: the second run copies only what the first did
#      not (fill_bytes of both daemons add up to the set's size, not more).
#   3. a set larger than the cache keeps is refused before anything is copied.
#   4. verify finds a copy corrupted behind the daemon's back, names it, exits 1, drops it, and
#      the mount then reads the original bytes; warm --verify checks each copy it completes;
#      an --exclude'd file is counted and left alone.
# The origin is on the disk (/tmp), the cache on tmpfs.
. "$(dirname "$0")/lib.sh"
need_root
t_shm warm
D=$T_SCRATCH/data BACK=$T_SCRATCH/back C=$SHM/cache
t_backdoor "$D" "$BACK"
counter() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"][sys.argv[1]])' "$1"; }
gauge() { "$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# settle: until the daemon's background fills stop moving (fill_bytes the same for 1 s)
settle() {
  local a b
  a=$(counter fill_bytes)
  for _ in $(seq 1 50); do sleep 1; b=$(counter fill_bytes); [ "$a" = "$b" ] && return 0; a=$b; done
  fail "background fills did not settle"
}

FILES=12 MIB=2
mkdir -p "$D/a/b" "$D/c"
for i in $(seq 1 $FILES); do
  case $((i % 3)) in 0) dir=$D ;; 1) dir=$D/a/b ;; *) dir=$D/c ;; esac
  head -c ${MIB}M /dev/urandom > "$dir/f$i.bin"
done
head -c 100K /dev/urandom > "$D/c/one.iso"
head -c 300K /dev/urandom > "$D/a/two.iso"
: > "$D/empty"
TOTAL=$(( FILES * MIB * 1048576 + 400 * 1024 ))
NFILES=$((FILES + 3))
# --complete-max 0: nothing but warm completes a file in the background.
t_mount "$D" "$C" --size 64M --complete-max 0

# --- 1. warm: every file a passthrough hit ---------------------------------------------------
out=$("$CACHEMAX" warm "$D" '*.iso' --json) || fail "warm of the globs failed: $out"
[ "$(field "$out" files)" = 2 ] || fail "'*.iso' picked $(field "$out" files) files, expected 2: $out"
[ "$(field "$out" bytes_copied)" = $((400 * 1024)) ] || fail "warm '*.iso' copied: $out"
out=$("$CACHEMAX" warm "$D" 2>&1) || fail "warm failed: $out"
echo "$out" | t_grep "^warm: $NFILES of $NFILES files complete in the cache" || fail "warm said: $out"
echo "$out" | t_grep "3 already were" || fail "warm did not see the two .iso copies (and the empty file) complete: $out"
[ "$(counter fill_bytes)" = "$TOTAL" ] || fail "warm filled $(counter fill_bytes) bytes, expected $TOTAL"
[ "$(counter read_ops_origin)" = 0 ] || fail "warm read the origin for an application"
opens=$(counter passthrough_opens_cache) origin_opens=$(counter passthrough_opens_origin) reads=$(counter read_ops_origin)
while IFS= read -r -d '' f; do
  cmp -s "$f" "$BACK/${f#"$D"/}" || fail "'$f' read through the mount differs from the original"
done < <(find "$D" -type f -print0)
[ "$(counter passthrough_opens_cache)" = $((opens + NFILES)) ] \
  || fail "after warm, $(( $(counter passthrough_opens_cache) - opens )) of $NFILES opens were cache hits"
[ "$(counter passthrough_opens_origin)" = "$origin_opens" ] || fail "an open after warm went to the origin"
[ "$(counter read_ops_origin)" = "$reads" ] || fail "a read after warm went to the origin"
[ "$(counter first_reads)" = 0 ] || fail "a read after warm was a first read"
# A second warm copies nothing.
out=$("$CACHEMAX" warm "$D" --json) || fail "second warm failed: $out"
[ "$(field "$out" bytes_copied)" = 0 ] && [ "$(field "$out" already_complete)" = "$NFILES" ] \
  || fail "a second warm copied again: $out"
[ "$(counter fill_bytes)" = "$TOTAL" ] || fail "a second warm filled $(( $(counter fill_bytes) - TOTAL )) bytes"

# --- 2. resume after SIGINT and a restart -----------------------------------------------------
"$CACHEMAX" evict "$D" >/dev/null
t_unmount "$D"
# Each background job waits 300 ms before its first origin read: warm takes > 3.6 s for 12 files.
CACHEMAX_FILL_DELAY_MS=300 t_mount "$D" "$C" --complete-max 0
"$CACHEMAX" warm "$D" --jobs 1 --json > "$T_SCRATCH/warm1" &
pid=$!
sleep 1.5
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc = 130 ] || fail "warm interrupted by SIGINT exited $rc, expected 130: $(cat "$T_SCRATCH/warm1")"
[ "$(field "$(cat "$T_SCRATCH/warm1")" interrupted)" = True ] || fail "warm did not say it was interrupted"
settle
first=$(counter fill_bytes)
[ "$first" -gt 0 ] && [ "$first" -lt "$TOTAL" ] || fail "the interrupted warm filled $first of $TOTAL bytes"
t_unmount "$D"
t_mount "$D" "$C" --complete-max 0
out=$("$CACHEMAX" warm "$D" --json) || fail "the resumed warm failed: $out"
second=$(counter fill_bytes)
[ $((first + second)) = "$TOTAL" ] \
  || fail "resumed warm: $first + $second bytes filled, expected $TOTAL in all (copied twice?)"
[ "$(field "$out" already_complete)" -ge 1 ] || fail "the resumed warm found nothing complete: $out"
[ "$(field "$out" complete)" = "$NFILES" ] || fail "the resumed warm did not complete every file: $out"
echo "t-warm: interrupted run filled $first bytes, resumed run $second (set $TOTAL)"

# --- 3. a set larger than the cache keeps is refused before copying ---------------------------
"$CACHEMAX" evict "$D" >/dev/null
t_unmount "$D"
t_mount "$D" "$C" --size 8M --complete-max 0
out=$("$CACHEMAX" warm "$D" 2>&1) && fail "warm of $TOTAL bytes into an 8 MiB cache succeeded: $out"
echo "$out" | t_grep "more than the cache of '$D' keeps (capacity 8.00 MiB" || fail "refusal said: $out"
echo "$out" | t_grep "nothing was copied" || fail "refusal said: $out"
[ "$(counter fill_bytes)" = 0 ] || fail "a refused warm filled $(counter fill_bytes) bytes"
# A subset that fits is fine.
"$CACHEMAX" warm "$D" a/b/f1.bin c/f2.bin >/dev/null || fail "warm of a subset that fits failed"
t_unmount "$D"

# --- 4. verify --------------------------------------------------------------------------------
# An excluded file is counted, not copied, and no error.
t_mount "$D" "$C" --size 64M --complete-max 0 --exclude one.iso
out=$("$CACHEMAX" warm "$D" --verify 2>&1) || fail "warm --verify failed: $out"
echo "$out" | t_grep "verified $((NFILES - 1)), 0 mismatches" || fail "warm --verify said: $out"
echo "$out" | t_grep "1 excluded (--exclude)" || fail "warm did not count the excluded file: $out"
victim=c/f2.bin
ino=$(stat -c %i "$BACK/$victim")
obj=$(find "$C" -name "*-$(printf %016x "$ino").data")
[ -f "$obj" ] || fail "no cache object for $victim"
printf 'CORRUPTED' | dd of="$obj" bs=1 seek=70000 conv=notrunc status=none
out=$("$CACHEMAX" verify "$D" 2>&1) && fail "verify of a corrupted copy exited 0: $out"
echo "$out" | t_grep "^mismatch: '$victim': the cache copy" || fail "verify did not name $victim: $out"
[ "$(echo "$out" | grep -c '^mismatch:')" = 1 ] || fail "verify named more than one file: $out"
echo "$out" | t_grep "$((NFILES - 2)) match, 1 mismatch (dropped); 1 file not complete" || fail "verify summary: $out"
cmp -s "$D/$victim" "$BACK/$victim" || fail "after verify, $victim read through the mount is not the original"
out=$("$CACHEMAX" verify "$D" a "$victim" --json) || fail "verify after the drop failed: $out"
[ "$(field "$out" mismatch)" = 0 ] || fail "verify after the drop: $out"
# A file open for writing over its cache copy (a reader first, then a writer: both pass through
# to the copy, whose mapping writes reach the original later) is not judged.
exec 4<"$D/a/b/f1.bin" 3>>"$D/a/b/f1.bin"
out=$("$CACHEMAX" verify "$D" a/b/f1.bin 2>&1) || fail "verify of a file open for writing failed: $out"
echo "$out" | t_grep "0 match, 0 mismatches (dropped); 0 files not complete in the cache (not checked), 1 changed while hashed or open for writing" \
  || fail "verify of a file open for writing said: $out"
exec 3>&- 4<&-
# Not a file of DIR, not there: clear messages.
out=$("$CACHEMAX" verify "$D" /etc/hostname 2>&1) && fail "verify outside DIR succeeded"
echo "$out" | t_grep "is not inside" || fail "verify outside DIR said: $out"
out=$("$CACHEMAX" warm "$D" nosuchfile 2>&1) && fail "warm of a missing file succeeded"
echo "$out" | t_grep "cannot find 'nosuchfile'" || fail "warm of a missing file said: $out"
# evict of a directory drops every copy below it.
out=$("$CACHEMAX" evict "$D" a 2>&1) || fail "evict of a directory failed: $out"
[ "$out" = "evicted $((FILES / 3 + 1)) cache copies" ] || fail "evict DIR a said: $out"
t_unmount "$D"
echo "PASS"
