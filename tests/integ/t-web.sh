#!/usr/bin/env bash
# cachemax web (docs/WEB.md) on a real mount: its first line is the dashboard's address with a
# token; the token file is root's; every line of /metrics is valid exposition (prom_check.py,
# and promtool where installed) and the counters move after reads; the dashboard, loaded in
# headless Chromium after a workload, shows the directory, "Working" and a non-zero hit ratio
# (a screenshot is kept in build/test-artifacts/); without the token it is refused (401/403);
# bad requests get 4xx and the server lives on; Chart.js missing: the numbers still show;
# evict through the API; SIGTERM: clean exit, token file gone.
. "$(dirname "$0")/lib.sh"
need_root
command -v chromium >/dev/null || skip "no chromium (scripts/install-deps.sh installs it)"
command -v curl >/dev/null || skip "no curl"
t_shm web
D=$SHM/data
mkdir -p "$D"
head -c 8M /dev/urandom > "$D/f"
head -c 1M /dev/urandom > "$D/g"
ARTIFACTS=$ROOT/build/test-artifacts
mkdir -p "$ARTIFACTS"
PROM_CHECK=$ROOT/tests/integ/prom_check.py

t_mount "$D" "$T_SCRATCH/cache" --count-syscalls   # exact hit ratios where fexit is refused (docs/STATS.md)

# web_start NAME [env...]: a server on a free loopback port; sets URL (with the token), BASE.
web_start() {
  local name=$1 line=""; shift
  env "$@" "$CACHEMAX" web --listen 127.0.0.1:0 > "$T_SCRATCH/$name.out" 2> "$T_SCRATCH/$name.err" &
  WEB_PID=$!
  T_PIDS+=("$WEB_PID")
  for _ in $(seq 1 100); do
    line=$(head -n1 "$T_SCRATCH/$name.out")
    [ -n "$line" ] && break
    sleep 0.05
  done
  [[ "$line" =~ ^dashboard:\ (http://127\.0\.0\.1:[0-9]+)/\?token=([0-9a-f]{32})$ ]] ||
    fail "first line of cachemax web: '$line' ($(cat "$T_SCRATCH/$name.err"))"
  BASE=${BASH_REMATCH[1]}
  TOKEN=${BASH_REMATCH[2]}
  URL=$BASE/?token=$TOKEN
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# chrome OUT ARGS...: headless Chromium as the machine allows it (no sandbox as root, no
# network but loopback), a fresh profile; timeout kills its whole process group if it hangs.
chrome() {
  local out=$1 profile; shift
  profile=$(mktemp -d "$T_SCRATCH/chrome.XXXXXX")
  timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=5000 "$@" > "$out" 2> "$profile.log" ||
    fail "chromium failed: $(tail -n 5 "$profile.log")"
  rm -rf "$profile" "$profile.log"
}
metrics() {  # metrics FILE: fetch /metrics, check every line, print the samples as JSON
  curl -sf "$BASE/metrics" > "$1" || fail "GET /metrics failed"
  python3 "$PROM_CHECK" "$1" || fail "invalid exposition in /metrics: $1: $(head -c 2000 "$1")"
  if command -v promtool >/dev/null; then
    promtool check metrics < "$1" || fail "promtool refused /metrics"
  fi
}
sample() {  # sample JSON SERIES
  python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2"
}

web_start web
# The token file: root's, 0600, holds the token of this start.
tokfile=$CACHEMAX_RUN_DIR/web-${BASE##*:}.token
[ "$(stat -c '%U %a' "$tokfile")" = "root 600" ] || fail "token file: $(stat -c '%U %a' "$tokfile")"
[ "$(cat "$tokfile")" = "$TOKEN" ] || fail "token file does not hold the printed token"

# Refused without the token, wrong token, bad requests: 4xx; never a crash.
[ "$(code "$BASE/")" = 401 ] || fail "/ without token: $(code "$BASE/")"
[ "$(code "$BASE/api/stats")" = 401 ] || fail "/api/stats without token"
[ "$(code "$BASE/api/stats?token=0000")" = 403 ] || fail "/api/stats with a wrong token"
[ "$(code -H "X-CacheMax-Token: nope" "$BASE/")" = 403 ] || fail "/ with a wrong header token"
[ "$(code -X POST "$BASE/api/evict?dir=$D&token=$TOKEN")" = 401 ] || fail "evict with the token only in the query"
[ "$(code "$BASE/nope")" = 404 ] || fail "unknown path"
[ "$(code -X POST "$BASE/metrics")" = 405 ] || fail "POST /metrics"
[ "$(code -X DELETE "$BASE/?token=$TOKEN")" = 405 ] || fail "DELETE /"
long=$(head -c 100000 /dev/zero | tr '\0' a)
c=$(code "$BASE/api/stats?token=$TOKEN&x=$long"); [[ $c == 4* ]] || fail "100 KB query: $c"
c=$(code -H "Cookie: $long" "$BASE/api/stats"); [[ $c == 4* ]] || fail "100 KB header: $c"
c=$(code -H "X-CacheMax-Token: ${long:0:5000}" "$BASE/api/stats"); [[ $c == 4* ]] || fail "5 KB token header: $c"
printf 'GARBAGE \x01\x02 HTTP/9\r\n\r\n' | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/${BASE##*:}" || true
kill -0 "$WEB_PID" || fail "the server died on a bad request: $(cat "$T_SCRATCH/web.err")"
[ "$(code "$BASE/api/stats?token=$TOKEN")" = 200 ] || fail "/api/stats with the token"
[ "$(code -H "Authorization: Bearer $TOKEN" "$BASE/api/stats")" = 200 ] || fail "/api/stats with a bearer token"

# /metrics before and after a workload: valid, and the counters moved.
m1=$(metrics "$T_SCRATCH/metrics1")
sel="{dir=\"$D\",source=\"cache\"}"
[ "$(sample "$m1" "cachemax_up{dir=\"$D\"}")" = 1.0 ] || fail "cachemax_up: $m1"
before=$(sample "$m1" "cachemax_read_bytes_total$sel")
[ "$before" = 0.0 ] || fail "cache reads before any read: $before"
cat "$D/f" > /dev/null     # the first read: from the original; the file is completed after it
for _ in $(seq 1 200); do
  [ "$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["counters"]["completions"])')" -ge 1 ] && break
  sleep 0.05
done
cat "$D/f" > /dev/null
cat "$D/f" > /dev/null
cat "$D/g" > /dev/null
m2=$(metrics "$T_SCRATCH/metrics2")
after=$(sample "$m2" "cachemax_read_bytes_total$sel")
want=$("$CACHEMAX" stats "$D" --json | python3 -c 'import json,sys; print(float(json.load(sys.stdin)["stats"]["counters"]["read_bytes_cache"]))')
python3 -c "import sys; sys.exit(0 if $after >= 16777216 and $after == $want else 1)" ||
  fail "cachemax_read_bytes_total{source=cache} after 2 cached reads of 8 MiB: $after (stats: $want)"
[ "$(sample "$m2" "cachemax_read_bytes_total{dir=\"$D\",source=\"origin\"}")" != 0.0 ] || fail "origin bytes did not move"
python3 -c "import sys; sys.exit(0 if $(sample "$m2" "cachemax_hit_ratio{dir=\"$D\",by=\"bytes\"}") > 0.5 else 1)" ||
  fail "hit ratio by bytes: $m2"

# The dashboard in a real browser, after the page's script ran. f stays open meanwhile: the
# top files name a file by its node, which the kernel may forget under the browser's memory
# pressure (then the row says "unknown", which is right, but not what this checks).
exec 9< "$D/f"
chrome "$T_SCRATCH/dom.html" --dump-dom "$URL"
grep -q "<td class=\"path dir\">$D</td>" "$T_SCRATCH/dom.html" || fail "the directory is not in the rendered table: $(head -c 3000 "$T_SCRATCH/dom.html")"
grep -q 'id="verdict">Working<' "$T_SCRATCH/dom.html" || fail "no 'Working' headline: $(grep -o 'id="verdict[^<]*<' "$T_SCRATCH/dom.html")"
hit=$(sed -n 's/.*id="hit-bytes" class="value">\([0-9.]*\)%<.*/\1/p' "$T_SCRATCH/dom.html")
python3 -c "import sys; sys.exit(0 if float('${hit:-0}') > 0 else 1)" || fail "no non-zero hit ratio in the page: '${hit}'"
grep -q '<td class="path">f</td><td>full</td>' "$T_SCRATCH/dom.html" || fail "the top files do not show f as full: $(grep -o '<td class="path">f</td><td>[^<]*' "$T_SCRATCH/dom.html")"
# The cache directory is marked DAX or not, with the daemon's reason as the tooltip (no pmem here).
grep -qE '<div class="muted" title="[^"]*without dax[^"]*">no DAX</div>' "$T_SCRATCH/dom.html" \
  || fail "the cache directory is not marked 'no DAX' with its reason: $(grep -o '<td class="path">[^<]*<div[^>]*>[^<]*' "$T_SCRATCH/dom.html")"
grep -q 'id="charts-missing" class="warning" hidden' "$T_SCRATCH/dom.html" || fail "Chart.js was not loaded"
chrome "$T_SCRATCH/shot.log" --window-size=1400,1100 --screenshot="$ARTIFACTS/t-web-dashboard.png" "$URL"
[ "$(head -c 8 "$ARTIFACTS/t-web-dashboard.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] ||
  fail "no PNG screenshot"
exec 9<&-
echo "screenshot: $ARTIFACTS/t-web-dashboard.png (hit ratio $hit% by bytes)"
# Without the token the browser gets the refusal, not the page.
chrome "$T_SCRATCH/refused.html" --dump-dom "$BASE/"
grep -q "token is needed" "$T_SCRATCH/refused.html" || fail "no refusal without the token: $(head -c 500 "$T_SCRATCH/refused.html")"
grep -q "$D" "$T_SCRATCH/refused.html" && fail "the directory shows without the token"

# Evict through the API (token in a header): the copy goes, the counter moves.
r=$(curl -s -X POST -H "X-CacheMax-Token: $TOKEN" "$BASE/api/evict?dir=$D&path=f")
[ "$r" = '{"evicted": 1}' ] || fail "evict f: $r"
[ "$(code -X POST -H "X-CacheMax-Token: $TOKEN" "$BASE/api/evict?dir=$D&path=../etc")" = 400 ] || fail "evict ../etc"
[ "$(code -X POST -H "X-CacheMax-Token: $TOKEN" "$BASE/api/evict?dir=/nonexistent")" = 404 ] || fail "evict elsewhere"
m3=$(metrics "$T_SCRATCH/metrics3")
[ "$(sample "$m3" "cachemax_evictions_total{dir=\"$D\"}")" = 1.0 ] || fail "evictions after evict: $m3"

# SIGTERM: a clean exit, the token file removed.
kill -TERM "$WEB_PID"
wait "$WEB_PID" || fail "cachemax web exited with $? on SIGTERM: $(cat "$T_SCRATCH/web.err")"
[ ! -e "$tokfile" ] || fail "the token file is left behind"
grep -E "AddressSanitizer|runtime error" "$T_SCRATCH/web.err" && fail "sanitizer report from cachemax web"

# Without Chart.js the page says so and still shows the numbers.
web_start web2 CACHEMAX_CHARTJS=/nonexistent/chart.min.js
grep -q "chart.min.js is missing" "$T_SCRATCH/web2.out" || fail "no note about the missing Chart.js: $(cat "$T_SCRATCH/web2.out")"
chrome "$T_SCRATCH/dom2.html" --dump-dom "$URL"
grep -q 'id="charts-missing" class="warning">' "$T_SCRATCH/dom2.html" || fail "the page does not say Chart.js is missing"
grep -q "<td class=\"path dir\">$D</td>" "$T_SCRATCH/dom2.html" || fail "no numbers without Chart.js"
kill -INT "$WEB_PID"
wait "$WEB_PID" || fail "cachemax web exited with $? on SIGINT"

# From an address other than loopback, /metrics needs the token too (where the machine has one).
ext=$(ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
if [ -n "$ext" ]; then
  "$CACHEMAX" web --listen "$ext:0" > "$T_SCRATCH/web3.out" 2> "$T_SCRATCH/web3.err" &
  WEB_PID=$!
  T_PIDS+=("$WEB_PID")
  for _ in $(seq 1 100); do grep -q '^dashboard:' "$T_SCRATCH/web3.out" && break; sleep 0.05; done
  line=$(head -n1 "$T_SCRATCH/web3.out")
  [[ "$line" =~ ^dashboard:\ (http://[0-9.]+:[0-9]+)/\?token=([0-9a-f]{32})$ ]] || fail "web on $ext: '$line'"
  [ "$(code "${BASH_REMATCH[1]}/metrics")" = 401 ] || fail "/metrics from $ext without the token"
  [ "$(code -H "Authorization: Bearer ${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}/metrics")" = 200 ] ||
    fail "/metrics from $ext with the bearer token"
  kill -TERM "$WEB_PID"
  wait "$WEB_PID" || fail "cachemax web on $ext exited with $?"
fi

t_unmount "$D"
echo ok
