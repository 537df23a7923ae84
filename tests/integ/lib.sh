# Shared helpers for integration tests (sourced). Every test gets a private scratch directory
# and a trap that stops any mount it made and removes the scratch, also when the test fails.
# Exit codes: 0 pass, 1 fail, 77 skip.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHEMAX=${CACHEMAX:-$ROOT/build/san/cachemax}
TOOLS=$ROOT/build/tests
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

T_MOUNTS=()
T_REMOVE=()   # extra paths to delete at exit (outside $T_SCRATCH, e.g. on /dev/shm)
T_RESTORE=()  # "FILE=VALUE": machine settings to write back at exit (e.g. a module parameter)
T_BINDS=()    # other mounts a test made (bind mounts): lazily unmounted at exit
T_PIDS=()     # background processes a test started (e.g. a CPU hog): killed at exit
T_LOOPS=()    # loop devices a test attached (t_hdd_make): unthrottled and detached at exit
T_CGROUPS=()  # cgroups a test made (t_memory_cgroup): removed at exit, children first
# Every scratch path of this run carries its id (run-all.sh sets one per run), so that a run
# sees only its own mounts while another `make check` runs on the same machine.
export CMTEST_RUN=${CMTEST_RUN:-solo$$}
T_SCRATCH=$(mktemp -d "/tmp/cmtest-$CMTEST_RUN.XXXXXX")
# A private run directory: this test's state records and daemon logs, nobody else's.
export CACHEMAX_RUN_DIR=$T_SCRATCH/run

t_cleanup() {
  local rc=$?
  local m
  for m in "${T_PIDS[@]+"${T_PIDS[@]}"}"; do kill "$m" 2>/dev/null || true; done
  for m in "${T_MOUNTS[@]+"${T_MOUNTS[@]}"}"; do
    "$CACHEMAX" stop "$m" --lazy >/dev/null 2>&1 || true
    # Belt and braces: whatever is left of ours at that path goes away lazily.
    while grep -q " $m fuse.cachemax " /proc/mounts 2>/dev/null; do umount -l "$m" 2>/dev/null || break; done
  done
  # A watchdog that was restarting a crashed daemon can mount again after the lines above (seen:
  # a daemon of a failed t-diff-mount remounted and stayed): this run's daemons and watchdogs
  # go, then whatever of this run's scratch paths is still mounted.
  local ours="(/tmp/cmtest-$CMTEST_RUN\\.|/dev/shm/cmtest-$CMTEST_RUN-)"
  if pkill -f "cachemax start $ours" 2>/dev/null; then
    sleep 0.5
    pkill -KILL -f "cachemax start $ours" 2>/dev/null || true
  fi
  { grep -oE " $ours[^ ]* fuse\.cachemax " /proc/mounts 2>/dev/null || true; } | awk '{print $1}' |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for m in "${T_BINDS[@]+"${T_BINDS[@]}"}"; do umount -l "$m" 2>/dev/null || true; done
  t_cgroups_remove   # after this run's daemons went (a cgroup with a process stays)
  t_sshd_stop   # after the sshfs mounts above went
  # After the mounts above them went (lazily: a busy device is detached at its last unmount).
  for m in "${T_LOOPS[@]+"${T_LOOPS[@]}"}"; do t_hdd_unthrottle "$m"; losetup -d "$m" 2>/dev/null || true; done
  # A sanitizer report in a daemon log fails the test, even if the watchdog restarted it.
  if grep -l -E "AddressSanitizer|LeakSanitizer|runtime error:" "$CACHEMAX_RUN_DIR"/*.log >/dev/null 2>&1; then
    echo "FAIL: sanitizer report in a daemon log:" >&2
    grep -h -A 30 -E "AddressSanitizer|LeakSanitizer|runtime error:" "$CACHEMAX_RUN_DIR"/*.log | head -60 >&2
    [ $rc -eq 0 ] && rc=1
  fi
  rm -rf "$T_SCRATCH" "${T_REMOVE[@]+"${T_REMOVE[@]}"}" 2>/dev/null || true
  # Machine settings a test changed, put back (T_RESTORE: "FILE=VALUE" items).
  for m in "${T_RESTORE[@]+"${T_RESTORE[@]}"}"; do echo "${m#*=}" > "${m%%=*}" 2>/dev/null || true; done
  exit $rc
}
# Never replace this trap in a test (its status would be lost): add paths to T_REMOVE instead.
trap t_cleanup EXIT
trap 'exit 130' INT TERM
# python3 may be a version manager's shim (pyenv's is a shell script that runs two more before
# the interpreter: 0.2-1.5 s a call here, against 0.09 s for the interpreter itself), and the
# tests call python3 hundreds of times: the interpreter it leads to, found once, comes first in
# PATH (also for the `#!/usr/bin/env python3` scripts), exec'd by its own path (a venv's
# interpreter finds its pyvenv.cfg by that path).
mkdir "$T_SCRATCH/bin"
printf '#!/bin/sh\nexec '\''%s'\'' "$@"\n' "$(python3 -c 'import sys; print(sys.executable)')" > "$T_SCRATCH/bin/python3"
chmod +x "$T_SCRATCH/bin/python3"
export PATH=$T_SCRATCH/bin:$PATH

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; [ -c /dev/fuse ] || skip "no /dev/fuse"; }

# t_mount DIR CACHE [options...]: accelerate DIR in place and register it for cleanup.
t_mount() {
  local dir=$1 cache=$2; shift 2
  T_MOUNTS+=("$dir")
  "$CACHEMAX" start "$dir" --cache "$cache" "$@"
  grep -q " $dir fuse.cachemax " /proc/mounts || fail "start $dir: no fuse.cachemax mount appeared"
}
t_unmount() {
  "$CACHEMAX" stop "$1"
  if grep -q " $1 fuse.cachemax " /proc/mounts; then fail "stop $1: mount still present"; fi
}

# t_backdoor ORIGIN BACK: bind-mount ORIGIN at BACK before it is accelerated, so a test can
# change the original behind the cache's back (unmounted at exit).
t_backdoor() {
  mkdir -p "$1" "$2"
  mount --bind "$1" "$2"
  T_BINDS+=("$2")
}

# t_shm NAME: make a scratch directory on tmpfs, removed at exit, and put its path in $SHM.
# (Not $(t_shm): a subshell would lose the T_REMOVE entry.)
t_shm() {
  SHM=$(mktemp -d "/dev/shm/cmtest-$CMTEST_RUN-$1.XXXXXX")
  T_REMOVE+=("$SHM")
}

# The HDD-like original (issue 14): a loop-backed ext4 image whose reads the cgroup v1 blkio
# controller throttles to a few hundred IOPS, so that a 4 KiB read costs about a disk seek.
T_BLKIO_READ_IOPS=/sys/fs/cgroup/blkio/blkio.throttle.read_iops_device

# t_hdd_make SIZE MOUNTPOINT: an ext4 image of SIZE (truncate syntax) in the scratch, attached to
# a loop device (direct I/O: no second page cache below it) and mounted at MOUNTPOINT; sets
# T_HDD_DEV (/dev/loopN). Unmounted, unthrottled and detached at exit.
t_hdd_make() {
  local img
  img=$(mktemp "$T_SCRATCH/hdd.XXXXXX.img")
  truncate -s "$1" "$img"
  # No lazy initialisation: a fresh ext4 otherwise keeps writing its inode tables for minutes
  # (which voids the catalog's seal and blurs read counts).
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img"
  T_HDD_DEV=$(losetup -f --show --direct-io=on "$img")
  T_LOOPS+=("$T_HDD_DEV")
  mkdir -p "$2"
  mount "$T_HDD_DEV" "$2"
  T_BINDS+=("$2")
}

# t_hdd_majmin DEV: "MAJ:MIN" of a block device
t_hdd_majmin() { printf '%d:%d\n' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"; }

# t_hdd_can_throttle: 0 when the cgroup v1 blkio throttle is there (else a test should skip)
t_hdd_can_throttle() { [ -w "$T_BLKIO_READ_IOPS" ]; }

# t_hdd_throttle DEV IOPS: limit reads of DEV to IOPS per second (root blkio cgroup: every
# process, the daemon's included); t_hdd_unthrottle DEV lifts it (also done at exit).
t_hdd_throttle() { echo "$(t_hdd_majmin "$1") $2" > "$T_BLKIO_READ_IOPS"; }
t_hdd_unthrottle() { echo "$(t_hdd_majmin "$1") 0" > "$T_BLKIO_READ_IOPS" 2>/dev/null || true; }

# t_hdd_reads DEV: read requests DEV has completed so far (field 1 of /sys/block/loopN/stat)
t_hdd_reads() { awk '{ print $1 }' "/sys/block/$(basename "$1")/stat"; }

# Memory cgroups (the kept objects' table is sized from the cgroup's limit, sys_memory.h):
# on cgroup v1 under this process's own memory cgroup, on cgroup v2 under the root when it
# hands the memory controller down; nothing of the machine's cgroups is changed.

# t_memory_cgroup LIMIT [PARENT]: make a cgroup whose memory limit is LIMIT bytes ("max" or
# "-1": none) under PARENT (a directory t_memory_cgroup made) or the place above; sets
# T_CGROUP. Returns 1 (nothing made) when neither hierarchy has the memory controller.
t_memory_cgroup() {
  local limit=$1 parent=${2:-} file v1
  if [ -z "$parent" ]; then
    v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { sub(/^[^:]*:[^:]*:/, ""); print; exit }' /proc/self/cgroup)
    if [ -n "$v1" ] && [ -w "/sys/fs/cgroup/memory$v1" ]; then
      parent=/sys/fs/cgroup/memory$v1
    elif grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
      parent=/sys/fs/cgroup
    else
      return 1
    fi
  fi
  # cgroup v2 (a cgroup.controllers file): a child has memory.max only if its parent hands
  # the memory controller down; a parent this function made holds no process, so it may.
  if [ -n "${2:-}" ] && [ -e "$parent/cgroup.controllers" ]; then
    t_grep -w memory "$parent/cgroup.subtree_control" || echo +memory > "$parent/cgroup.subtree_control" || return 1
  fi
  T_CGROUP=$(mktemp -u "$parent/cmtest-$CMTEST_RUN.XXXXXX")
  mkdir "$T_CGROUP" || return 1
  T_CGROUPS+=("$T_CGROUP")
  if [ -e "$T_CGROUP/cgroup.controllers" ]; then
    file=memory.max; [ "$limit" = -1 ] && limit=max
  else
    file=memory.limit_in_bytes; [ "$limit" = max ] && limit=-1
  fi
  echo "$limit" > "$T_CGROUP/$file"
}

# t_in_cgroup CGROUP command...: run the command inside CGROUP (its children too).
t_in_cgroup() {
  local cg=$1; shift
  ( echo "$BASHPID" > "$cg/cgroup.procs" && exec "$@" )
}

# Remove the cgroups of T_CGROUPS, children first (each waits up to 5 s for its processes).
t_cgroups_remove() {
  local i
  for (( i = ${#T_CGROUPS[@]} - 1; i >= 0; i-- )); do
    for _ in $(seq 1 50); do
      rmdir "${T_CGROUPS[i]}" 2>/dev/null && break
      [ -d "${T_CGROUPS[i]}" ] || break
      sleep 0.1
    done
    [ ! -d "${T_CGROUPS[i]}" ] || echo "warning: cgroup ${T_CGROUPS[i]} left behind (processes in it)" >&2
  done
}

# A network original over loopback (issue 14): a private sshd on 127.0.0.1 with its own port,
# host key, client key and config in the scratch (nothing of the machine's ssh setup is read
# or changed, except that /run/sshd, which sshd requires, is made if missing), and sshfs mounts
# through it. The mounts are lazily unmounted at exit, then the sshd and its per-connection
# processes are killed (t_sshd_stop).

# t_has_sshfs: 0 when sshfs and sshd are installed (else a test should skip; `make deps`)
t_has_sshfs() { command -v sshfs >/dev/null && [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null; }

# t_sshd_start: start the sshd (root logs in with the scratch's key only); sets T_SSHD_PORT and
# T_SSHD_KEY (the client key). A port another process holds is retried with another one.
t_sshd_start() {
  local d=$T_SCRATCH/sshd pid
  mkdir -p "$d" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  cp "$d/client_key.pub" "$d/authorized_keys"; chmod 600 "$d/authorized_keys"
  T_SSHD_KEY=$d/client_key
  for _ in 1 2 3 4 5; do
    T_SSHD_PORT=$(( 20000 + RANDOM % 20000 ))
    cat > "$d/sshd_config" <<CONF
Port $T_SSHD_PORT
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
PidFile none
StrictModes no
CONF
    # Not in T_PIDS: killed at exit after the mounts, with its children (t_sshd_stop).
    /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" &
    pid=$!
    for _ in $(seq 1 50); do   # listening within 5 s, or gone (the port was taken)
      kill -0 "$pid" 2>/dev/null || break
      # The port answers; ours only if it still runs and says it listens (another process
      # holding the port answers too, while ours is about to fail its bind).
      if (exec 3<>"/dev/tcp/127.0.0.1/$T_SSHD_PORT") 2>/dev/null && kill -0 "$pid" 2>/dev/null &&
         grep -q "Server listening on 127.0.0.1 port $T_SSHD_PORT\." "$d/sshd.log" 2>/dev/null; then
        return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
  done
  fail "sshd did not start on 127.0.0.1 (5 ports tried; see $d/sshd.log: $(tail -n 3 "$d/sshd.log" 2>/dev/null))"
}

# t_sshd_stop: kill every sshd started with this test's config (found by its -f path) and the
# processes it forked per connection ("sshd: root@notty", "sshd: root@internal-sftp": their
# command lines no longer name the config, so they are found as its descendants, before it
# goes). Called by t_cleanup after the mounts are gone; nothing when no sshd was started.
t_sshd_stop() {
  local cfg=$T_SCRATCH/sshd/sshd_config all="" queue next p
  queue=$(pgrep -f -- "sshd -D -f ${cfg//./\\.} " 2>/dev/null || true)
  while [ -n "$queue" ]; do
    all="$all $queue"
    next=""
    for p in $queue; do next="$next $(pgrep -P "$p" 2>/dev/null || true)"; done
    queue=$(echo $next)
  done
  [ -z "$all" ] || kill $all 2>/dev/null || true
}

# t_sshfs REMOTE-DIR MOUNTPOINT [sshfs options...]: mount REMOTE-DIR of the t_sshd_start server
# at MOUNTPOINT (lazily unmounted at exit).
t_sshfs() {
  local remote=$1 mnt=$2; shift 2
  mkdir -p "$mnt"
  sshfs "root@127.0.0.1:$remote" "$mnt" -p "$T_SSHD_PORT" -F /dev/null -o IdentityFile="$T_SSHD_KEY" \
    -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o allow_other "$@" \
    || fail "sshfs of 127.0.0.1:$T_SSHD_PORT:$remote at $mnt failed (see $T_SCRATCH/sshd/sshd.log)"
  T_BINDS+=("$mnt")
  grep -q " $mnt fuse.sshfs " /proc/mounts || fail "sshfs: no fuse.sshfs mount at $mnt"
}

# t_can_count_requests: 0 if FUSE requests can be counted (perf, and tracefs, which is mounted
# at /sys/kernel/tracing for this test if it is not, and unmounted at exit); else 1.
t_can_count_requests() {
  if ! grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    T_BINDS+=(/sys/kernel/tracing)
  fi
  grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && command -v perf > /dev/null
}

# t_requests MOUNT CMD [COMM]: "COUNT FUSE_OPCODE" lines for the requests MOUNT's FUSE
# connection got while CMD (a shell command) ran (perf on fuse:fuse_request_send; see
# t_can_count_requests); with COMM, only those sent by processes of that name (a request is
# sent in the context of the process that caused it). perf takes a second or more to start:
# what must happen within a time window of what came before runs in CMD, and COMM picks the
# part to count.
t_requests() {
  local conn
  conn=$(mountpoint -d "$1")
  perf record -q -a -e fuse:fuse_request_send -o "$T_SCRATCH/perf.data" -- sh -c "$2" > /dev/null 2>&1
  # (no request at all is an answer too, not a failure: grep's status is not the function's)
  perf script -F comm,trace -i "$T_SCRATCH/perf.data" 2>/dev/null |
    { grep "connection ${conn#*:} " || true; } | { grep "^ *${3:-[^ ]*} " || true; } |
    grep -o '(FUSE_[A-Z_]*)' | tr -d '()' | sort | uniq -c || true
}

# t_request_count OPCODE: the count of FUSE_OPCODE in t_requests' output on stdin (0: none)
t_request_count() { awk -v op="FUSE_$1" '$2 == op { n = $1 } END { print n + 0 }'; }

# t_grep ARGS...: grep ARGS with no output, for the end of a pipeline: `... | t_grep PATTERN`,
# not `grep -q`. grep -q exits at its first match, and under pipefail the writer then dies of
# SIGPIPE when it writes more (bash's echo writes line by line; `cachemax stats --json` is
# larger than a pipe write), which fails the test although the text matched (CI saw
# t-cli's "exactly one directory" fail that way). t_grep reads all of its input.
t_grep() { grep "$@" > /dev/null; }

# t_read_counter DIR NAME: the counter NAME of the daemon of DIR; daemon_X is X less its
# passthrough_X (what the daemon served itself)
t_read_counter() {
  "$CACHEMAX" stats "$1" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["stats"]["counters"]; k=sys.argv[1]; print(c[k[7:]] - c["passthrough_" + k[7:]] if k.startswith("daemon_") else c[k])' "$2"
}
# t_complete DIR FILE: read FILE through DIR's mount until a whole read of it is served by the
# cache (a passthrough open of the cache copy, or user-space reads that all hit), at most 30 s
# (10 s ran out in a CI run at load 4-5: each try runs four stats queries of the sanitizer build)
t_complete() {
  local misses opens end=$((SECONDS + 30))
  while [ $SECONDS -lt $end ]; do
    misses=$(t_read_counter "$1" daemon_read_ops_origin) opens=$(t_read_counter "$1" passthrough_opens_origin)
    cat "$2" > /dev/null
    [ "$(t_read_counter "$1" daemon_read_ops_origin)" = "$misses" ] &&
      [ "$(t_read_counter "$1" passthrough_opens_origin)" = "$opens" ] && return 0
    sleep 0.1
  done
  fail "$2 was not complete in the cache after 30 s"
}
