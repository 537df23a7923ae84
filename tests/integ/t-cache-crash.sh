#!/usr/bin/env bash
# kill -9 of the daemon at random points of a mixed read/write workload, 20 rounds, with the
# cache kept across rounds: afterwards every file reads identical to the origin through the
# mount, twice (the second read may pass through to the cache copy), so no record written
# before a crash ever claims bytes that are not the origin's.
. "$(dirname "$0")/lib.sh"
need_root
t_shm ccrash
D=$SHM/data BACK=$SHM/back C=$T_SCRATCH/cache
t_backdoor "$D" "$BACK"   # the original, reachable behind the mount
for i in 0 1 2 3 4 5; do head -c $(( (i + 1) * 700000 )) /dev/urandom > "$D/f$i"; done
ROUNDS=${CRASH_ROUNDS:-20}

daemon_pid() { "$CACHEMAX" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["directories"]; print(d[0]["daemon_pid"] if d else "")'; }

for round in $(seq 1 "$ROUNDS"); do
  t_mount "$D" "$C"
  pid=$(daemon_pid)
  python3 - "$D" "$round" <<'PY' > /dev/null 2>&1 &
import os, random, sys
d, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
while True:
    f = os.path.join(d, "f%d" % rnd.randrange(6))
    try:
        if rnd.random() < 0.6:
            with open(f, "rb") as h:
                while h.read(1 << 17):
                    pass
        else:
            fd = os.open(f, os.O_WRONLY)
            size = os.fstat(fd).st_size
            os.pwrite(fd, os.urandom(rnd.randrange(1, 300000)), rnd.randrange(0, size + 1))
            if rnd.random() < 0.3:
                os.ftruncate(fd, rnd.randrange(1, size + 2))
            os.fsync(fd)
            os.close(fd)
    except OSError:
        pass
PY
  load=$!
  sleep "0.$(( RANDOM % 9 + 1 ))"
  kill -9 "$pid"
  for _ in $(seq 1 100); do
    np=$(daemon_pid)
    [ -n "$np" ] && [ "$np" != "$pid" ] && "$CACHEMAX" status | t_grep "health: *ok" && break
    sleep 0.05
  done
  kill "$load" 2>/dev/null; wait "$load" 2>/dev/null || true
  [ -n "$np" ] && [ "$np" != "$pid" ] || fail "round $round: the daemon was not restarted"
  for i in 0 1 2 3 4 5; do
    want=$(md5sum < "$BACK/f$i")
    [ "$(md5sum < "$D/f$i")" = "$want" ] || fail "round $round: f$i differs from the origin after kill -9"
    [ "$(md5sum < "$D/f$i")" = "$want" ] || fail "round $round: f$i differs from the origin on the second read"
  done
  t_unmount "$D"
done
echo "$ROUNDS rounds of kill -9: every file identical to the origin"
echo ok
