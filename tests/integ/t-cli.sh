#!/usr/bin/env bash
# The command line refuses bad input with a clear message and the documented exit code, and a
# normal start/status/stop cycle leaves the directory exactly as it was plus the writes made.
. "$(dirname "$0")/lib.sh"
need_root

D=$T_SCRATCH/data C=/dev/shm/cmtest-$CMTEST_RUN-cache-$$
T_MOUNTS+=("$D")
T_REMOVE+=("$C")
mkdir -p "$D/sub"
echo original > "$D/x"

expect() {  # expect RC PATTERN command...: exit code and a message matching PATTERN
  local want=$1 pat=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want: $out"
  echo "$out" | t_grep -iE -- "$pat" || fail "'$*' said '$out', expected /$pat/"
}

expect 2 "usage" "$CACHEMAX"
expect 2 "unknown command" "$CACHEMAX" frobnicate
for cmd in help "start --help" "stop -h" "stats /x --help"; do
  # shellcheck disable=SC2086  # the command and its options, split on purpose
  expect 0 "^usage: cachemax" "$CACHEMAX" $cmd
  # shellcheck disable=SC2086
  out=$("$CACHEMAX" $cmd)
  [[ $out != *%%* ]] || fail "'cachemax $cmd' prints a printf escape (%%)"
done
# Each command's own help: its usage line and options, not another command's.
for cmd in "start --help" "help start" "start /x --cache -h"; do
  # shellcheck disable=SC2086
  expect 0 "^usage: cachemax start DIR" "$CACHEMAX" $cmd
  # shellcheck disable=SC2086
  out=$("$CACHEMAX" $cmd)
  [[ $out == *--first-read* && $out != *--lazy* && $out != *--listen* ]] \
    || fail "'cachemax $cmd' is not start's help alone: $out"
done
for c in stop status stats evict warm verify bench web version help enable disable systemd-generator; do
  [ "$("$CACHEMAX" "$c" --help)" = "$("$CACHEMAX" help "$c")" ] || fail "'$c --help' and 'help $c' differ"
  expect 0 "^usage: cachemax $c" "$CACHEMAX" help "$c"
done
expect 0 "--lazy" "$CACHEMAX" stop --help
expect 2 "unknown command 'frobnicate'" "$CACHEMAX" help frobnicate
expect 2 "unknown command 'frobnicate'" "$CACHEMAX" frobnicate --help
[[ $("$CACHEMAX" help) == *--count-syscalls*--listen* ]] || fail "'cachemax help' does not list every option"
# The version: the build's git describe (or the Makefile's fallback), the same both ways.
expect 0 "^cachemax [0-9A-Za-z][-.+0-9A-Za-z]*$" "$CACHEMAX" --version
[ "$("$CACHEMAX" version)" = "$("$CACHEMAX" --version)" ] || fail "'version' and '--version' differ"
expect 2 "no arguments" "$CACHEMAX" version extra
expect 2 "needs --cache" "$CACHEMAX" start "$D"
# A bad option: one message naming it, not getopt's followed by a contradicting one of ours.
one_message() {  # one_message PATTERN command...: exit 2, PATTERN, and no second complaint
  local pat=$1 out; shift
  out=$("$@" 2>&1) && fail "'$*' succeeded"
  if [ "$(echo "$out" | grep -c "^cachemax: ")" -ne 1 ] || echo "$out" | t_grep -E "requires an argument|unrecognized"; then
    fail "'$*' said more than one thing: $out"
  fi
  echo "$out" | t_grep -E -- "$pat" || fail "'$*' said '$out', expected /$pat/"
}
one_message "'start': option '--cache' needs a value" "$CACHEMAX" start "$D" --cache
one_message "'start': unknown option '--frobnicate'" "$CACHEMAX" start "$D" --frobnicate
one_message "'stop': option '--lazy' takes no value" "$CACHEMAX" stop "$D" --lazy=yes
one_message "'stats': option '--watch' needs a value" "$CACHEMAX" stats "$D" --watch
one_message "'web': option '--listen' needs a value" "$CACHEMAX" web --listen
one_message "'bench': unknown option '--frobnicate'" "$CACHEMAX" bench "$D" --frobnicate
# A relative --cache would land wherever start happened to run: refused, nothing created.
(cd "$T_SCRATCH" && expect 2 "--cache takes an absolute path.*'relcache'" "$CACHEMAX" start "$D" --cache relcache)
[ ! -e "$T_SCRATCH/relcache" ] || fail "a refused relative --cache was created"
expect 2 "--cache takes an absolute path" "$CACHEMAX" bench "$D" --cache relcache
expect 2 "exactly one directory" "$CACHEMAX" start --cache "$C"
expect 2 "--threads" "$CACHEMAX" start "$D" --cache "$C" --threads 0
expect 1 "No such file" "$CACHEMAX" start "$T_SCRATCH/missing" --cache "$C"
expect 1 "not a directory" "$CACHEMAX" start "$D/x" --cache "$C"
expect 1 "inside" "$CACHEMAX" start "$D" --cache "$D/sub/cache"
expect 1 "inside the cache" "$CACHEMAX" start "$D/sub" --cache "$D"
expect 1 "not a directory" "$CACHEMAX" start "$D/sub" --cache "$D/x"
expect 1 "cannot accelerate '/'" "$CACHEMAX" start / --cache "$C"
expect 1 "not accelerated" "$CACHEMAX" stop "$D"
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  expect 1 "must run as root" setpriv --reuid=65534 --regid=65534 --clear-groups "$CACHEMAX" start "$D" --cache "$C"
fi
[ ! -e "$D/sub/cache" ] || fail "a refused start created the cache directory inside DIR"
# --size beyond the whole cache file system (a million T on a tmpfs) is refused, naming both sizes.
fs_size=$(df -B1 --output=size /dev/shm | tail -1)
expect 1 "--size 977 PiB is larger than the cache's file system \([0-9.]+ [KMGT]iB in all, at '/dev/shm'\): give at most [0-9]+M" \
  "$CACHEMAX" start "$D" --cache "$C" --size 1000000T
[ ! -e "$C" ] || fail "a start refused for its --size created the cache directory"
[ "$fs_size" -gt $((2 << 20)) ] && expect 1 "larger than the cache's file system" \
  "$CACHEMAX" start "$D" --cache "$C" --size $((fs_size + (1 << 20)))

before=$(cd "$D" && find . -printf '%p %m %s\n' | sort)
t_mount "$D" "$C"
[ -d "$C" ] || fail "start did not create the cache directory"
expect 1 "already accelerated" "$CACHEMAX" start "$D" --cache "$C"
[ "$(cat "$D/x")" = original ] || fail "content differs through the mount"
# evict: a PATH that is not absolute is relative to DIR (like --pin), wherever evict runs;
# an error is not followed by "evicted 0".
out=$(cd / && "$CACHEMAX" evict "$D" x 2>&1) || fail "evict DIR x from /: $out"
[[ $out =~ ^evicted\ [01]\ cache\ cop ]] || fail "evict DIR x said: $out"
out=$(cd / && "$CACHEMAX" evict "$D" "$D/x" 2>&1) || fail "evict DIR DIR/x: $out"
expect 1 "'../elsewhere' is not inside '$D'" "$CACHEMAX" evict "$D" ../elsewhere
expect 1 "'/etc/hostname' is not inside" "$CACHEMAX" evict "$D" /etc/hostname
out=$("$CACHEMAX" evict "$D" /etc/hostname 2>&1) && fail "evict outside DIR succeeded"
[[ $out != *evicted* ]] || fail "an evict that failed also said: $out"
echo more >> "$D/x"

"$CACHEMAX" status | t_grep "^$D\$" || fail "status does not list $D"
"$CACHEMAX" status | t_grep "health: *ok" || fail "status does not say ok"
"$CACHEMAX" status | t_grep "passthrough: *on" || fail "status: passthrough not on: $("$CACHEMAX" status)"
"$CACHEMAX" status --json | python3 -c '
import json,sys
d=json.load(sys.stdin)["directories"]
e=[x for x in d if x["dir"]==sys.argv[1]][0]
assert e["cache"]==sys.argv[2] and e["passthrough"] is True and e["daemon_pid"]>0 and e["health"]=="ok", e
' "$D" "$C" || fail "status --json is wrong"

# stop refuses while a process has a file open under DIR, and names it
exec 7<"$D/x"
expect 1 "in use by .*[0-9]+ \(" "$CACHEMAX" stop "$D"
grep -q " $D fuse.cachemax " /proc/mounts || fail "a refused stop unmounted anyway"
exec 7<&-
# A record written under another name (an older version hashed paths differently) must still be
# found, and the daemon's own fds on the covered directory must not count as holders.
mv "$CACHEMAX_RUN_DIR"/*.state "$CACHEMAX_RUN_DIR/written-by-an-older-version.state"
t_unmount "$D"
after=$(cd "$D" && find . -printf '%p %m %s\n' | sort)
[ "$before" != "$after" ] || fail "the write made through the mount is missing"
[ "$(cat "$D/x")" = "$(printf 'original\nmore')" ] || fail "origin content after stop: $(cat "$D/x")"
"$CACHEMAX" status | t_grep "no directory is accelerated" || fail "status still lists something after stop"

# --no-passthrough: status says why
t_mount "$D" "$C" --no-passthrough
"$CACHEMAX" status | t_grep "passthrough: *off (disabled by --no-passthrough)" || fail "status: $("$CACHEMAX" status)"
[ "$(head -1 "$D/x")" = original ] || fail "read through user-space path"
# --lazy detaches even with open files; the open file keeps working
exec 7<"$D/x"
"$CACHEMAX" stop "$D" --lazy | t_grep detached || fail "stop --lazy with an open file"
grep -q " $D fuse.cachemax " /proc/mounts && fail "stop --lazy left the mount visible"
[ "$(head -1 <&7)" = original ] || fail "open file broke after lazy stop"
exec 7<&-
echo "ok"
