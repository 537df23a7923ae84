#!/usr/bin/env bash
# make demo: accelerate a generated sample directory in place, use it, show status, stop it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CM=$ROOT/build/cachemax
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (mounting in place needs CAP_SYS_ADMIN)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/cachemax-demo.XXXXXX)
DATA=$WORK/projects CACHE=/dev/shm/cachemax-demo-$$
cleanup() { "$CM" stop "$DATA" --lazy >/dev/null 2>&1 || true; rm -rf "$WORK" "$CACHE"; }
trap cleanup EXIT

echo "== a sample directory: $DATA"
mkdir -p "$DATA/src" "$DATA/assets"
for i in $(seq 1 20); do printf 'int f%d(void) { return %d; }\n' "$i" "$i" > "$DATA/src/f$i.c"; done
head -c 32M /dev/urandom > "$DATA/assets/big.bin"
sum_before=$(md5sum "$DATA/assets/big.bin" | cut -d' ' -f1)

echo "== cachemax start $DATA --cache $CACHE"
"$CM" start "$DATA" --cache "$CACHE"
echo "== the same path, the same files (mount type: $(awk -v d="$DATA" '$2==d {print $3}' /proc/mounts))"
ls -l "$DATA" "$DATA/src" | head -8
cat "$DATA/src/f1.c"
echo "// appended through the accelerated path" >> "$DATA/src/f1.c"
# A counter of the daemon's stats (cachemax stats --json), for saying only what they show.
counter() { "$CM" stats "$DATA" --json | grep -o "\"$1\": [0-9]*" | head -n1 | grep -o '[0-9]*$'; }
[ "$(md5sum "$DATA/assets/big.bin" | cut -d' ' -f1)" = "$sum_before" ] && echo "big.bin reads identical through the mount (first pass: passed through to the original; the cache fills behind it)"
# The completion after the first pass's close: wait until the stats count it (at most 10 s).
for _ in $(seq 1 100); do [ "$(counter completions)" -ge 1 ] && break; sleep 0.1; done
opens_before=$(counter passthrough_opens_cache) bytes_before=$(counter read_bytes_cache)
[ "$(md5sum "$DATA/assets/big.bin" | cut -d' ' -f1)" = "$sum_before" ] || { echo "demo: big.bin differs on the second pass" >&2; exit 1; }
# Say what the stats show of the second pass, nothing else.
if [ "$(counter passthrough_opens_cache)" -gt "$opens_before" ]; then
  echo "big.bin reads identical again (second pass: passed through to the cache copy: stats count an open 'to cache')"
elif [ "$(counter read_bytes_cache)" -gt "$bytes_before" ]; then
  echo "big.bin reads identical again (second pass: served from the cache copy by the daemon: stats count $(( ($(counter read_bytes_cache) - bytes_before) >> 20 )) MiB 'from cache')"
else
  echo "big.bin reads identical again (second pass: from the original: the stats count no read from the cache yet)"
fi
echo "== cachemax stats $DATA"
"$CM" stats "$DATA"
echo "== cachemax status"
"$CM" status
echo "== cachemax stop $DATA"
"$CM" stop "$DATA"
echo "== after stop, the original directory has the write:"
tail -n1 "$DATA/src/f1.c"
echo "== cachemax bench $DATA --cache $CACHE --size 16M --runtime 1"
echo "   (accelerates it for the run, measures, gives it back and removes its scratch files)"
"$CM" bench "$DATA" --cache "$CACHE" --size 16M --runtime 1
