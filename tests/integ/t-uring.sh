#!/usr/bin/env bash
# FUSE-over-io_uring: with --io-uring the mount says "transport io_uring", its ring threads are
# pinned one CPU each, requests really arrive through the rings (uring_requests grows), small
# replies are committed yielding and the threads return to SCHED_OTHER (also backing off on a
# contended CPU), the differential test and a concurrent read/write load agree with a plain directory, and stop
# gives the directory back with the daemon gone and no leak. Then the fallback: when ring
# setup fails (injected io_uring_setup ENOMEM), the mount still works over /dev/fuse and says
# so; and when a queue's registration fails after io_uring was advertised, the daemon makes
# the kernel fall back instead of leaving requests hanging. --no-io-uring keeps /dev/fuse
# even where enable_uring is on.
. "$(dirname "$0")/lib.sh"
need_root
PARAM=/sys/module/fuse/parameters/enable_uring
[ -e "$PARAM" ] || modprobe fuse 2>/dev/null || true
[ -e "$PARAM" ] || skip "this kernel has no FUSE-over-io_uring (no $PARAM: CONFIG_FUSE_IO_URING is off)"
PARAM_BEFORE=$(cat "$PARAM")   # --io-uring turns it on; put back at exit, also on failure
T_RESTORE+=("$PARAM=$PARAM_BEFORE")
# Who turned it on is recorded machine-wide (src/control/control_uring.h). Unless a daemon of
# another run relies on it now, start from N so that stop must put N back.
RECORD=/run/cachemax-enable_uring
uring_holders() { [ -s "$RECORD" ] && sed -n 's/^holders=//p' "$RECORD" | tr ' ' '\n' | while read -r p; do kill -0 "$p" 2>/dev/null && echo "$p"; done; true; }
STRICT=0
if [ -z "$(uring_holders)" ]; then STRICT=1; echo N > "$PARAM"; fi
# Holders that are daemons of another test run (their command line names no path of this run):
# one that started with --io-uring after the check above keeps enable_uring on, rightly.
other_holders() { uring_holders | while read -r p; do tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | t_grep "cmtest-$CMTEST_RUN" || echo "$p"; done; true; }
param_back() {  # param_back WHAT: enable_uring is N again, nothing recorded
  [ $STRICT = 1 ] || return 0
  if [ -n "$(other_holders)" ]; then echo "$1: another run's daemon holds enable_uring now; not checked"; return 0; fi
  [ "$(cat "$PARAM")" = N ] || fail "$1: enable_uring is $(cat "$PARAM"), not N as before --io-uring"
  [ -z "$(uring_holders)" ] || fail "$1: the record still names holders: $(cat "$RECORD")"
}
DIFFTEST=$TOOLS/diff/difftest
[ -x "$DIFFTEST" ] || fail "missing $DIFFTEST (make all)"
OPS=${DIFF_OPS:-20000}
# Leaks at teardown (rings, buffers, threads) are reported into the daemon log, which fails us.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

t_shm uring
json_get() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])' "$1" "$2"; }
status_get() {  # status_get DIR KEY
  python3 -c '
import json,sys
for d in json.loads(sys.argv[1])["directories"]:
    if d["dir"] == sys.argv[2]: print(d[sys.argv[3]])' "$("$CACHEMAX" status --json)" "$1" "$2"
}
daemon_pid() { status_get "$1" daemon_pid; }

# Several writers and readers at once, each checking what it reads back.
load() {  # load DIR
  local d=$1/load pids=() i
  mkdir -p "$d"
  for i in 1 2 3 4; do
    (
      head -c 3M /dev/urandom > "$T_SCRATCH/src$i"
      for r in 1 2 3; do
        dd if="$T_SCRATCH/src$i" of="$d/f$i" bs=64k oflag=direct status=none
        cmp "$T_SCRATCH/src$i" "$d/f$i" || exit 1
        dd if="$d/f$i" of=/dev/null bs=4k iflag=direct status=none || exit 1
        dd if="$d/f$i" bs=1M iflag=direct status=none | cmp - "$T_SCRATCH/src$i" || exit 1
        ls -l "$d" > /dev/null
      done
    ) & pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || fail "concurrent load on $1: a worker saw wrong data"; done
}

# --- io_uring -------------------------------------------------------------------------------
M=$SHM/mnt-uring P=$SHM/plain-uring
mkdir -p "$M" "$P"
t_mount "$M" "$T_SCRATCH/cache-uring" --io-uring --no-passthrough
[ "$(cat "$PARAM")" = Y ] || fail "--io-uring did not turn on $PARAM"
[ "$(status_get "$M" transport)" = io_uring ] || fail "status: transport $(status_get "$M" transport) ($(status_get "$M" transport_reason)), expected io_uring"
"$CACHEMAX" status | t_grep "transport:    io_uring" || fail "status text: $("$CACHEMAX" status)"
pid=$(daemon_pid "$M")
grep -q "transport io_uring" "$(status_get "$M" log)" || fail "the daemon log does not name the transport"
[ $STRICT = 0 ] || t_grep -x "holders=$pid" "$RECORD" || fail "the record does not name the daemon: $(cat "$RECORD")"

# One ring thread set per possible CPU, each pinned to its own CPU.
ncpu=$(python3 -c 'import os; print(os.sysconf("SC_NPROCESSORS_CONF"))')
for task in /proc/"$pid"/task/*; do
  name=$(cat "$task/comm")
  case $name in cm-uring-q*) ;; *) continue;; esac
  q=${name#cm-uring-q}
  allowed=$(awk '/^Cpus_allowed_list/ {print $2}' "$task/status")
  [ "$allowed" = "$q" ] || fail "ring thread $name may run on CPUs '$allowed', expected only $q"
  seen="${seen:-} $q"
done
for q in $(seq 0 $((ncpu - 1))); do
  [[ " ${seen:-} " == *" $q "* ]] || fail "no ring thread for CPU queue $q (threads:${seen:-})"
done

head -c 4M /dev/urandom > "$M/f"
dd if="$M/f" of=/dev/null bs=4k iflag=direct status=none
dd if="$M/f" of=/dev/null bs=1M iflag=direct status=none    # full 1 MiB payloads
j=$("$CACHEMAX" stats "$M" --json)
[ "$(json_get "$j" transport)" = io_uring ] || fail "stats: transport is not io_uring: $j"
n=$(json_get "$j" uring_requests)
[ "$n" -ge 1024 ] || fail "stats: only $n requests came through the rings after 1028 O_DIRECT reads"

# The yielding commit: small replies are committed in SCHED_IDLE (so the reader stays on its
# CPU), and every ring thread is back in its own policy afterwards (stat field 41: 0 OTHER,
# 5 IDLE). On a contended CPU (a busy loop pinned to the reader's CPU) a commit waits behind
# the other task, so the thread backs off, and the reads go on at normal priority.
[ "$(json_get "$j" uring_yields)" -ge 1 ] || fail "no reply was committed yielding: $j"
ring_policies() {
  local task
  for task in /proc/"$pid"/task/*; do
    case $(cat "$task/comm") in cm-uring-q*) awk '{print $41}' "$task/stat";; esac
  done | sort -u | tr '\n' ' '
}
[ "$(ring_policies)" = "0 " ] || fail "ring threads not all SCHED_OTHER after the reads: policies $(ring_policies)"
taskset -c 0 sh -c 'while :; do :; done' & hog=$!
T_PIDS+=("$hog")
sleep 0.2
timeout 60 taskset -c 0 dd if="$M/f" of=/dev/null bs=4k count=1000 iflag=direct status=none ||
  fail "4K reads pinned to a busy CPU did not finish within 60 s"
kill "$hog"; wait "$hog" 2>/dev/null || true
j=$("$CACHEMAX" stats "$M" --json)
[ "$(json_get "$j" uring_yield_backoffs)" -ge 1 ] || fail "reads on a contended CPU: no ring thread backed off from yielding: $j"
[ "$(ring_policies)" = "0 " ] || fail "ring threads not all SCHED_OTHER after contended reads: policies $(ring_policies)"

mkdir "$M/diff"
if ! "$DIFFTEST" --seed 11 --ops "$OPS" "$M/diff" "$P"; then
  fail "io_uring: the mount and a plain directory disagree (seed 11)"
fi
load "$M"
n2=$(json_get "$("$CACHEMAX" stats "$M" --json)" uring_requests)
[ "$n2" -gt "$n" ] || fail "uring_requests did not grow during the differential test ($n -> $n2)"
t_unmount "$M"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "the daemon (pid $pid) still runs after stop: ring threads not ended?"
param_back "stop of the only --io-uring mount"
[ -f "$M/f" ] && [ "$(stat -c %s "$M/f")" -eq 4194304 ] || fail "stop did not give back the directory with its data"

# --- fallback: ring setup fails before the INIT reply -> /dev/fuse, and it says why ----------
M2=$SHM/mnt-fallback P2=$SHM/plain-fallback
mkdir -p "$M2" "$P2"
CACHEMAX_FAULT=io_uring_setup:1:ENOMEM t_mount "$M2" "$T_SCRATCH/cache-fallback" --io-uring --no-passthrough
[ "$(status_get "$M2" transport)" = dev_fuse ] || fail "fallback: transport $(status_get "$M2" transport), expected dev_fuse"
status_get "$M2" transport_reason | t_grep "io_uring setup failed" || fail "fallback: reason '$(status_get "$M2" transport_reason)'"
"$CACHEMAX" status | t_grep "transport:    dev_fuse (io_uring setup failed" || fail "fallback status text: $("$CACHEMAX" status)"
if ! "$DIFFTEST" --seed 12 --ops $((OPS / 4)) "$M2" "$P2"; then
  fail "fallback: the mount and a plain directory disagree (seed 12)"
fi
j=$("$CACHEMAX" stats "$M2" --json)
[ "$(json_get "$j" uring_requests)" -eq 0 ] || fail "fallback: requests came through a ring: $j"
[ "$(json_get "$j" transport)" = dev_fuse ] || fail "fallback: stats transport: $j"
t_unmount "$M2"

# --- fallback after the INIT reply: a queue's REGISTER cannot be submitted (injected
# io_uring_enter ENOMEM on the first call; one entry per queue with --threads = CPUs). io_uring
# was advertised, so without the forced fallback every request would hang on the ring. -------
M4=$SHM/mnt-late P4=$SHM/plain-late
mkdir -p "$M4" "$P4"
threads=$(( ncpu < 16 ? ncpu : 16 ))
CACHEMAX_FAULT=io_uring_enter:1:ENOMEM timeout 60 "$CACHEMAX" start "$M4" --cache "$T_SCRATCH/cache-late" \
  --io-uring --no-passthrough --threads "$threads" || { T_MOUNTS+=("$M4"); fail "late fallback: start failed"; }
T_MOUNTS+=("$M4")
[ "$(status_get "$M4" transport)" = dev_fuse ] || fail "late fallback: transport $(status_get "$M4" transport)"
status_get "$M4" transport_reason | t_grep "io_uring registration failed" || fail "late fallback: reason '$(status_get "$M4" transport_reason)'"
if ! timeout 120 "$DIFFTEST" --seed 13 --ops $((OPS / 4)) "$M4" "$P4"; then
  fail "late fallback: the mount hangs or disagrees with a plain directory (seed 13)"
fi
t_unmount "$M4"

param_back "stop of the fallback mounts"

# --- crash: the watchdog and the daemon killed; stop clears the dead mount and puts N back ---
M5=$SHM/mnt-crash
mkdir -p "$M5"
t_mount "$M5" "$T_SCRATCH/cache-crash" --io-uring --no-passthrough
[ "$(cat "$PARAM")" = Y ] || fail "--io-uring did not turn on $PARAM (crash case)"
kill -9 "$(status_get "$M5" watchdog_pid)" "$(daemon_pid "$M5")"
sleep 0.3
"$CACHEMAX" stop "$M5" | t_grep "cleared a dead mount" || fail "stop did not clear the dead mount"
param_back "stop after the watchdog and daemon were killed"

# --- --no-io-uring: /dev/fuse although enable_uring is on -----------------------------------
echo Y > "$PARAM"   # as an administrator would: nothing recorded, nothing put back
M3=$SHM/mnt-devfuse
mkdir -p "$M3"
t_mount "$M3" "$T_SCRATCH/cache-devfuse" --no-io-uring
[ "$(status_get "$M3" transport)" = dev_fuse ] || fail "--no-io-uring: transport $(status_get "$M3" transport)"
echo x > "$M3/x" && [ "$(cat "$M3/x")" = x ] || fail "--no-io-uring: the mount does not work"
t_unmount "$M3"
[ "$(cat "$PARAM")" = Y ] || fail "a value set by hand was changed"
echo ok
