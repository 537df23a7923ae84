#!/usr/bin/env bash
# bench/one-pass-fill.sh — does one pass fill every file? Two builds side by side, each over its
# own copy of one tree of small files: a cold `find | sort | xargs cat` through the mount (in a
# shell with `ulimit -n 1024`), then the wait until the background completions stop growing,
# then `cachemax stop`, a page-cache drop, `cachemax start` and the same cat again. Hand-run, as
# root, under `flock /tmp/cm-bench.lock`; not a timed test.
#
# Usage: bench/one-pass-fill.sh --a BINARY --b BINARY [--files N] [--original local|sshfs]
#            [--fd-limit N] [--start-opts "OPTIONS"]
#   --a, --b BINARY    the two cachemax builds (copied first: a build may be rebuilt meanwhile)
#   --files N          small files of 1,000-4,000 bytes, 100 per directory (default 30000)
#   --original local   the trees on /var/tmp (ext4 here)
#   --original sshfs   each tree behind its own sshfs mount of a private sshd on 127.0.0.1
#                      (default)
#   --fd-limit N       the daemons' fd limit (CACHEMAX_FD_LIMIT; the fill queue holds an eighth
#                      of it, at most 4,096); default: the daemon's own (raised to the maximum)
#   --start-opts OPTS  extra options for both `cachemax start`s
# Prints, per build: the first pass's seconds, the completions when they stopped growing (and
# the seconds from the pass's end to then), completions deferred and skipped, and the second
# pass after the restart: seconds, opens served from the copies and from the original.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=one-pass-fill
. "$HERE/lib.sh"
A_BIN= B_BIN= N=30000 KIND=sshfs FD_LIMIT= START_OPTS=
while [ $# -gt 0 ]; do
  case $1 in
    --a) A_BIN=${2:?}; shift 2;;
    --b) B_BIN=${2:?}; shift 2;;
    --files) N=${2:?}; shift 2;;
    --original) KIND=${2:?}; shift 2;;
    --fd-limit) FD_LIMIT=${2:?}; shift 2;;
    --start-opts) START_OPTS=${2-}; shift 2;;
    -h|--help) bench_usage "$0"; exit 0;;
    *) bench_die "unknown argument '$1' (see --help)";;
  esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || bench_die "--files takes a number >= 1, not '$N'"
[ -z "$FD_LIMIT" ] || [[ $FD_LIMIT =~ ^[1-9][0-9]*$ ]] || bench_die "--fd-limit takes a number, not '$FD_LIMIT'"
case $KIND in local|sshfs) ;; *) bench_die "--original is local or sshfs, not '$KIND'";; esac
[ "$(id -u)" -eq 0 ] || bench_die "needs root (it mounts)"
[ -x "$A_BIN" ] && [ -x "$B_BIN" ] || bench_die "--a and --b must name two cachemax binaries"
for t in python3 bc sha1sum; do command -v "$t" >/dev/null || bench_die "needs $t"; done

export CACHEMAX=$B_BIN
# shellcheck source=../tests/integ/lib.sh
source "$HERE/../tests/integ/lib.sh"
set +e +o pipefail; set -u
[ "$KIND" = local ] || t_has_sshfs || bench_die "--original sshfs needs sshfs and openssh-server (make deps)"
W=$T_SCRATCH
cp "$A_BIN" "$W/cachemax-a"; cp "$B_BIN" "$W/cachemax-b"
make_tree() {
  python3 - "$1" "$N" <<'PY' || fail "cannot make the tree"
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2]); r = random.Random(7)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100)); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "f%03d" % (i % 100)), "wb").write(os.urandom(r.randint(1000, 4000)))
PY
}
bench_two_trees "$KIND"   # bench/lib.sh: sets A and B
# The files' times must be older than 3 s on an original no watcher covers (engine_settle.c).
sleep 4
want=$(cd "$A" && find . -type f | sort | xargs cat | sha1sum)
counters() { "$CACHEMAX" stats "$1" --json | python3 -c 'import json, sys
c = json.load(sys.stdin)["stats"]["counters"]
print(" ".join(str(c.get(k, "-")) for k in sys.argv[1:]))' "${@:2}"; }
[ -z "$FD_LIMIT" ] || export CACHEMAX_FD_LIMIT=$FD_LIMIT
start() {   # start BUILD DIR CACHE
  # shellcheck disable=SC2086  # START_OPTS: options, split on purpose
  CACHEMAX="$1" t_mount "$2" "$3" $START_OPTS >/dev/null
}
# pass DIR: the cat through the mount in a shell with ulimit -n 1024; its seconds in SECS
pass() {
  local s got
  sync; echo 3 > /proc/sys/vm/drop_caches
  s=$(date +%s.%N)
  got=$(bash -c "ulimit -n 1024; cd '$1' && find . -type f | sort | xargs cat | sha1sum")
  SECS=$(echo "$(date +%s.%N) - $s" | bc)
  [ "$got" = "$want" ] || fail "the bytes read through $1 differ from the original's"
}
# settle DIR: until the completions stop growing for 10 s (at most 30 min); the seconds from
# the call to the last growth in WAITED
settle() {
  local last=-1 s v t_last
  s=$(date +%s.%N); t_last=$s
  for _ in $(seq 1 1800); do
    v=$(counters "$1" completions)
    if [ "$v" != "$last" ]; then last=$v; t_last=$(date +%s.%N)
    elif [ "$(echo "$(date +%s.%N) - $t_last > 10" | bc)" = 1 ]; then break; fi
    sleep 1
  done
  WAITED=$(echo "$t_last - $s" | bc)
}
run() {   # run NAME BUILD DIR
  local cache=$W/cache-$1
  start "$2" "$3" "$cache"
  pass "$3"; local p1=$SECS
  settle "$3"
  read -r done1 deferred skipped dropped <<< "$(counters "$3" completions completions_deferred completions_skipped fills_dropped)"
  "$2" stop "$3" >/dev/null
  start "$2" "$3" "$cache"
  pass "$3"; local p2=$SECS
  read -r hits origin <<< "$(counters "$3" passthrough_opens_cache passthrough_opens_origin)"
  "$2" stop "$3" >/dev/null
  printf '%s: pass 1 %.1f s; completions %s of %s (%.1f s after the pass; deferred %s, skipped %s, fills_dropped %s); restart, pass 2 %.1f s: %s opens from copies, %s from the original\n' \
    "$1" "$p1" "$done1" "$N" "$WAITED" "$deferred" "$skipped" "$dropped" "$p2" "$hits" "$origin"
}
echo "one-pass-fill: $KIND original, $N files, daemon fd limit ${FD_LIMIT:-default}, load $(cut -d' ' -f1-3 /proc/loadavg)"
run A "$W/cachemax-a" "$A"
run B "$W/cachemax-b" "$B"
