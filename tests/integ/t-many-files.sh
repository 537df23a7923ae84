#!/usr/bin/env bash
# Real directories: a 200,000-inode tree (tiny files on tmpfs, to keep it quick) walked with
# find, stat of every file and a read of every file through the mount, with the daemon started
# from a shell with `ulimit -n 1024`: zero errors, the daemon's fds stay under its bound (nodes
# hold no fd of their own), and the node table costs at most 200 bytes per inode the kernel
# holds (measured as the daemon's RSS growth per node, with the unsanitized build: ASan's
# allocator would measure itself).
. "$(dirname "$0")/lib.sh"
need_root
CACHEMAX=${CACHEMAX_PLAIN:-$ROOT/build/cachemax}
DIRS=${T_MANY_DIRS:-200}
FILES=${T_MANY_FILES:-1000}
t_shm many
D=$SHM/data
mkdir -p "$D"
python3 - "$D" "$DIRS" "$FILES" <<'EOF'
import os, sys
base, dirs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    p = f'{base}/d{d:03d}'
    os.mkdir(p)
    for f in range(files - 1):
        with open(f'{p}/f{f:04d}', 'w') as fh:
            fh.write('x' * (f % 7 + 1))
EOF
want=$(find "$D" | wc -l)   # every inode, on the original
[ "$want" -ge $((DIRS * FILES)) ] || fail "tree has $want inodes"

json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# Not cached (--exclude '*'): this test is about nodes and fds; caching 200,000 tiny files
# would measure the store.
T_MOUNTS+=("$D")
bash -c "ulimit -n 1024; exec '$CACHEMAX' start '$D' --cache '$T_SCRATCH/cache' --exclude '*' \
  --entry-timeout 600 --attr-timeout 600" || fail "start from a shell with ulimit -n 1024"
j=$("$CACHEMAX" stats "$D" --json)
pid=$(json "$j" pid)
rss0=$(json "$j" rss_bytes)
nodes0=$(json "$j" nodes)
[ "$(json "$j" file_handles)" = True ] || fail "tmpfs gives file handles, yet: $(json "$j" file_handles_why)"
"$CACHEMAX" status | t_grep "inodes: *reached by file handle" || fail "status: $("$CACHEMAX" status)"

# The daemon's fds, sampled while the walk runs.
peak=$T_SCRATCH/peak
( max=0; while kill -0 "$pid" 2>/dev/null; do
    n=$(ls /proc/"$pid"/fd 2>/dev/null | wc -l); [ "$n" -gt "$max" ] && { max=$n; echo "$max" > "$peak"; }
    sleep 0.2; done ) &
T_PIDS+=($!)

errs=$T_SCRATCH/errs
bash -c "ulimit -n 1024
  cd '$D'
  find . > '$T_SCRATCH/find.out'
  find . -printf '%s %m %n\n' > '$T_SCRATCH/stat.out'
  tar cf - . | wc -c > '$T_SCRATCH/tar.out'
  du -s . > /dev/null" 2> "$errs" || fail "walk failed: $(head -5 "$errs")"
[ ! -s "$errs" ] || fail "errors during the walk: $(head -5 "$errs")"
[ "$(wc -l < "$T_SCRATCH/find.out")" -eq "$want" ] || fail "find saw $(wc -l < "$T_SCRATCH/find.out") of $want"
[ "$(wc -l < "$T_SCRATCH/stat.out")" -eq "$want" ] || fail "stat saw $(wc -l < "$T_SCRATCH/stat.out") of $want"
bytes=$(cat "$T_SCRATCH/tar.out")
[ "$bytes" -gt $((DIRS * FILES * 512)) ] || fail "tar read only $bytes bytes"

j=$("$CACHEMAX" stats "$D" --json)
nodes=$(json "$j" nodes); rss=$(json "$j" rss_bytes); fds=$(json "$j" fds)
max=$(cat "$peak" 2>/dev/null || echo 0)
# The metadata catalog keeps decoded listings in memory up to a fixed bound, whatever the
# number of nodes (CACHE_CATALOG_MEMORY_BYTES, src/cache/cache_catalog.h: 32 MiB): not counted
# per node.
catalog=$((32 << 20))
per_node=$(( (rss - rss0 - catalog) / (nodes - nodes0 > 0 ? nodes - nodes0 : 1) ))
echo "nodes $nodes (from $nodes0), rss $rss (from $rss0, less the catalog's $catalog): $per_node B/node; fds now $fds, peak $max;" \
     "node table $(json "$j" node_bytes) B; fd-cache misses $(json "$j" fd_cache_misses)"
[ "$nodes" -ge $((want / 2)) ] || fail "the kernel held only $nodes nodes: the walk did not exercise the table"
[ "$max" -le 512 ] || fail "the daemon's fds peaked at $max with a 1024 limit (bound: a quarter for the fd cache)"
[ "$per_node" -le 200 ] || fail "daemon memory grew by $per_node bytes per node (bound 200)"
grep -q "cachemaxd: error:" "$CACHEMAX_RUN_DIR"/*.log && fail "daemon logged errors: $(grep "cachemaxd: error:" "$CACHEMAX_RUN_DIR"/*.log | head -3)"

# Forgetting: the kernel drops the inodes of files deleted through the mount and sends FORGETs
# (BATCH_FORGET); their nodes go away.
gone=$(find "$D"/d0* | wc -l)
rm -rf "$D"/d0*
sleep 1
j=$("$CACHEMAX" stats "$D" --json)
left=$(json "$j" nodes)
echo "after deleting $gone inodes through the mount: $left nodes"
[ "$left" -le $((nodes - gone * 9 / 10)) ] || fail "FORGET freed too few nodes: $left of $nodes left"
t_unmount "$D"
