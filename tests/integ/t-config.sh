#!/usr/bin/env bash
# The config file on real mounts: enable validates and records, start --all / stop --all act on
# every enabled directory and report each, disable removes; a bad config line is reported with
# its file and line number and fails the command; several caches on one file system do not
# each count on the same free space; status says whose directory it is and with what options;
# the logs go where they should (a log directory, or the journal's stream under systemd).
# The config file is a temporary one (CACHEMAX_CONFIG or --config), never the machine's /etc.
. "$(dirname "$0")/lib.sh"
need_root

D1=$T_SCRATCH/data1 D2=$T_SCRATCH/data\ two D3=$T_SCRATCH/data3
t_shm caches
C1=$SHM/c1 C2=$SHM/c2 C3=$SHM/c3
export CACHEMAX_CONFIG=$T_SCRATCH/etc/cachemax.conf
T_MOUNTS+=("$D1" "$D2" "$D3")
mkdir -p "$D1" "$D2" "$D3"
echo one > "$D1/f" && echo two > "$D2/f" && echo three > "$D3/f"
chown nobody "$D2"
mounted() { awk '{print $2" "$3}' /proc/mounts | sed 's/\\040/ /g' | t_grep -xF "$1 fuse.cachemax"; }
expect() {  # expect RC PATTERN command...: exit code and a message matching PATTERN
  local want=$1 pat=$2; shift 2
  local rc=0
  OUT=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want: $OUT"
  echo "$OUT" | t_grep -E -- "$pat" || fail "'$*' said '$OUT', expected /$pat/"
}

# enable: the checks of start, nothing started, the options recorded under [DIR]
expect 0 "enabled $D1 in $CACHEMAX_CONFIG" "$CACHEMAX" enable "$D1" --cache "$C1" --size 64M --pin 'x*' --threads 2
mounted "$D1" && fail "enable started $D1"
grep -qx "\[$D1\]" "$CACHEMAX_CONFIG" || fail "no [$D1] section: $(cat "$CACHEMAX_CONFIG")"
for kv in "cache=$C1" "size=64M" "pin=x\*" "threads=2"; do
  grep -qx "$kv" "$CACHEMAX_CONFIG" || fail "no '$kv' in the config: $(cat "$CACHEMAX_CONFIG")"
done
[ "$(stat -c %a "$CACHEMAX_CONFIG")" = 644 ] || fail "config mode $(stat -c %a "$CACHEMAX_CONFIG")"
before=$(cat "$CACHEMAX_CONFIG")
expect 2 "threads takes a number from 1 to 16, not '99'" "$CACHEMAX" enable "$D2" --cache "$C2" --threads 99
expect 1 "cannot accelerate '$T_SCRATCH/nope'" "$CACHEMAX" enable "$T_SCRATCH/nope" --cache "$C2"
expect 1 "inside" "$CACHEMAX" enable "$D2" --cache "$D2/cache"
expect 2 "needs --cache" "$CACHEMAX" enable "$D2"
expect 2 "for 'start' only" "$CACHEMAX" enable "$D2" --cache "$C2" --foreground
[ "$(cat "$CACHEMAX_CONFIG")" = "$before" ] || fail "a refused enable changed the config"
# --config names another file; env and option agree here. No --size: claims are checked below.
expect 0 "enabled $D2" "$CACHEMAX" enable "$D2" --cache "$C2" --no-passthrough --config "$CACHEMAX_CONFIG"
expect 0 "enabled $D3" "$CACHEMAX" enable "$D3" --cache "$C3"
# enable again replaces the section in place
expect 0 "enabled $D1" "$CACHEMAX" enable "$D1" --cache "$C1" --size 64M --pin 'x*' --threads 3
[ "$(grep -c "^\[" "$CACHEMAX_CONFIG")" -eq 3 ] || fail "sections: $(cat "$CACHEMAX_CONFIG")"
grep -qx "threads=3" "$CACHEMAX_CONFIG" && ! grep -qx "threads=2" "$CACHEMAX_CONFIG" \
  || fail "enable again did not replace the section: $(cat "$CACHEMAX_CONFIG")"
[ "$(grep -n "^\[" "$CACHEMAX_CONFIG" | head -n1 | cut -d'[' -f2)" = "$D1]" ] || fail "the section moved"

# start --all: every enabled directory, each reported
expect 0 "3 started, 0 already running, 0 failed" "$CACHEMAX" start --all
for d in "$D1" "$D2" "$D3"; do
  mounted "$d" || fail "start --all did not accelerate $d"
  echo "$OUT" | t_grep -F "accelerated $d " || fail "start --all did not report $d: $OUT"
done
[ "$(cat "$D2/f")" = two ] || fail "$D2/f reads '$(cat "$D2/f")'"
# the recorded options are in effect and shown; the owner is shown
st=$("$CACHEMAX" status)
echo "$st" | t_grep -F -- "--threads '3' --size '64M' --pin 'x*'" || fail "status options: $st"
echo "$st" | grep -A1 -F "$D2" | t_grep "owner:        nobody" || fail "status does not say $D2 is nobody's: $st"
echo "$st" | grep -A1 -F "$D1" | t_grep "owner:        root" || fail "status owner of $D1: $st"
"$CACHEMAX" status --json | t_grep -F '"owner": "nobody", "owner_uid": 65534' || fail "status --json has no owner"
echo "$st" | grep -A12 -F "$D2" | t_grep "passthrough:  off" || fail "no-passthrough not in effect for $D2: $st"
# several caches on one file system (C2 and C3 on /dev/shm, no --size): the second counts
# what the first (and any other running cache there) may fill, so the two fit together
echo "$OUT" | t_grep "note: .* other running cache.* on the file system at" \
  || fail "start --all did not say what the other caches claim: $OUT"
total=$(( $(stat -f -c '%b*%S' /dev/shm) ))
size_of() { "$CACHEMAX" status --json | tr '{' '\n' | grep -F "\"dir\": \"$1\"" | grep -o '"cache_size": [0-9]*' | grep -o '[0-9]*$'; }
s2=$(size_of "$D2") s3=$(size_of "$D3")
[ $((s2 + s3)) -le "$total" ] || fail "two default caches claim $s2 + $s3 bytes of a $total-byte file system"
# again: nothing to do, still success
expect 0 "0 started, 3 already running, 0 failed" "$CACHEMAX" start --all

# stop --all: every enabled directory back as it was
expect 0 "stop --all: 3 enabled, 0 failed" "$CACHEMAX" stop --all
for d in "$D1" "$D2" "$D3"; do mounted "$d" && fail "stop --all left $d accelerated"; done
[ "$(cat "$D1/f")" = one ] || fail "$D1/f after stop"
expect 0 "was not accelerated" "$CACHEMAX" stop --all

# what changes the service's directories is root's; the file stays as it was
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  before=$(cat "$CACHEMAX_CONFIG")
  NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups env CACHEMAX_CONFIG="$CACHEMAX_CONFIG")
  expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" disable "$D3"
  expect 1 "'enable' records what root's service starts: run it as root" "${NOBODY[@]}" "$CACHEMAX" enable "$D3" --cache "$C3"
  expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" start --all
  expect 1 "run it as root" "${NOBODY[@]}" "$CACHEMAX" stop --all
  [ "$(cat "$CACHEMAX_CONFIG")" = "$before" ] || fail "a refused non-root command changed the config"
fi

# disable removes exactly that section
expect 0 "disabled $D3" "$CACHEMAX" disable "$D3"
grep -qF "[$D3]" "$CACHEMAX_CONFIG" && fail "disable left [$D3]: $(cat "$CACHEMAX_CONFIG")"
grep -qF "[$D1]" "$CACHEMAX_CONFIG" || fail "disable removed [$D1]"
expect 1 "'$D3' is not enabled in $CACHEMAX_CONFIG" "$CACHEMAX" disable "$D3"

# a directory below another: whatever the order in the file, the outer one starts first (its
# mount would otherwise be refused for covering the inner one) and stops last
mkdir -p "$D1/inner" && echo in > "$D1/inner/f"
T_MOUNTS=("$D1/inner" "${T_MOUNTS[@]}")
expect 0 "enabled $D1/inner" "$CACHEMAX" enable "$D1/inner" --cache "$SHM/ci"
expect 0 "disabled $D1" "$CACHEMAX" disable "$D1"
expect 0 "enabled $D1" "$CACHEMAX" enable "$D1" --cache "$C1"
[ "$(grep "^\[" "$CACHEMAX_CONFIG" | tail -n1)" = "[$D1]" ] || fail "order: $(cat "$CACHEMAX_CONFIG")"
expect 0 "3 started, 0 already running, 0 failed" "$CACHEMAX" start --all
mounted "$D1" && mounted "$D1/inner" || fail "start --all: $D1 and $D1/inner not both accelerated: $OUT"
[ "$(cat "$D1/inner/f")" = in ] || fail "$D1/inner/f through both mounts"
expect 0 "stop --all: 3 enabled, 0 failed" "$CACHEMAX" stop --all
mounted "$D1/inner" && fail "stop --all left $D1/inner"
mounted "$D1" && fail "stop --all left $D1"
expect 0 "disabled $D1/inner" "$CACHEMAX" disable "$D1/inner"

# a config with mistakes: each reported with file and line, the command fails, the good
# section still starts, the bad ones do not
BAD=$T_SCRATCH/bad.conf
cat > "$BAD" <<EOF
# a hand-edited file
[$D1]
cache = $C1
threads = 40
[$D3]
cache = $C3
colour = blue
[$D2
[$T_SCRATCH/gone]
cache = $SHM/c4
EOF
chmod 644 "$BAD"
expect 1 "$BAD:4: threads takes a number from 1 to 16, not '40'" "$CACHEMAX" start --all --config "$BAD"
echo "$OUT" | t_grep -F "$BAD:7: unknown key 'colour'" || fail "line 7 not reported: $OUT"
echo "$OUT" | t_grep -F "$BAD:8: a section header needs its closing ']'" || fail "line 8 not reported: $OUT"
echo "$OUT" | t_grep -F "cannot accelerate '$T_SCRATCH/gone'" || fail "the failed start is not reported: $OUT"
echo "$OUT" | t_grep -E "0 started, 0 already running, [0-9]+ failed" || fail "summary: $OUT"
mounted "$D1" && fail "a section with a mistake was started"
# the same mistakes stop nothing else: stop --all still fails on them, and says so
expect 1 "$BAD:4:" "$CACHEMAX" stop --all --config "$BAD"
# a config file others may write is refused
chmod 666 "$BAD"
expect 1 "others may write" "$CACHEMAX" start --all --config "$BAD"

# logs: under CACHEMAX_LOG_DIR when set; to the journal's stream under systemd (JOURNAL_STREAM
# naming stderr's device and inode: here a file standing in for the journal)
mkdir -p "$T_SCRATCH/logs"
CACHEMAX_LOG_DIR=$T_SCRATCH/logs "$CACHEMAX" start "$D1" --cache "$C1" >/dev/null
"$CACHEMAX" status | grep -A20 -F "$D1" | t_grep "log:          $T_SCRATCH/logs/.*\.log" || fail "log not in CACHEMAX_LOG_DIR: $("$CACHEMAX" status)"
ls "$T_SCRATCH"/logs/*.log >/dev/null || fail "no log file in CACHEMAX_LOG_DIR"
"$CACHEMAX" stop "$D1" >/dev/null
J=$T_SCRATCH/journal
: > "$J"
( exec 2>>"$J"; JOURNAL_STREAM=$(stat -c '%d:%i' "$J") "$CACHEMAX" start "$D1" --cache "$C1" >/dev/null )
"$CACHEMAX" status | grep -A20 -F "$D1" | t_grep "log:          the journal" || fail "under systemd the log is not the journal: $("$CACHEMAX" status)"
grep -q "cachemaxd: info: serving '$D1'" "$J" || fail "the daemon's log is not on the journal stream: $(cat "$J")"
"$CACHEMAX" stop "$D1" >/dev/null
grep -E "AddressSanitizer|runtime error:" "$J" && fail "sanitizer report on the journal stream"
echo "PASS"
