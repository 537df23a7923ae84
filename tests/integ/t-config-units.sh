#!/usr/bin/env bash
# The systemd units pass `systemd-analyze verify` (no message at all), with the drop-in that
# cachemax-generator writes from a config file: RequiresMountsFor= every enabled directory and
# its cache, a path with a blank or a '%' written as systemd reads it back. Skipped (77) only
# where systemd-analyze is missing.
. "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing"

U=$T_SCRATCH/units
mkdir -p "$U" "$T_SCRATCH/gen"
# The units name the installed binary; here the one built (make install substitutes its bindir).
for f in cachemax.service cachemax-web.service; do
  grep -q "^ExecStart=/usr/local/bin/cachemax " "$ROOT/systemd/$f" || fail "$f: ExecStart is not /usr/local/bin/cachemax"
  sed "s|/usr/local/bin/cachemax|$ROOT/build/cachemax|" "$ROOT/systemd/$f" > "$U/$f"
done
grep -qx "ExecStart=$ROOT/build/cachemax start --all" "$U/cachemax.service" || fail "cachemax.service does not run start --all"
grep -qx "ExecStop=$ROOT/build/cachemax stop --all" "$U/cachemax.service" || fail "cachemax.service does not run stop --all"
grep -qx "Type=oneshot" "$U/cachemax.service" && grep -qx "RemainAfterExit=yes" "$U/cachemax.service" \
  || fail "cachemax.service is not a oneshot that remains"
grep -qx "After=local-fs.target remote-fs.target network-online.target" "$U/cachemax.service" \
  || fail "cachemax.service ordering"

export CACHEMAX_CONFIG=$T_SCRATCH/cachemax.conf
cat > "$CACHEMAX_CONFIG" <<'CONF'
[/srv/data]
cache = /mnt/fast/data
[/srv/a b%c]
cache = /mnt/fast/ab
[relative]
cache = /x
CONF
chmod 644 "$CACHEMAX_CONFIG"
# run under its systemd name, as systemd does
ln -s "$ROOT/build/cachemax" "$T_SCRATCH/cachemax-generator"
err=$("$T_SCRATCH/cachemax-generator" "$T_SCRATCH/gen" "$T_SCRATCH/gen" "$T_SCRATCH/gen" 2>&1) || fail "the generator failed: $err"
echo "$err" | t_grep -F "cachemax.conf:5: section [relative]" || fail "the generator did not report line 5: $err"
drop=$T_SCRATCH/gen/cachemax.service.d/50-cachemax-mounts.conf
[ -f "$drop" ] || fail "no drop-in written"
grep -qx "RequiresMountsFor=/srv/data /mnt/fast/data" "$drop" || fail "drop-in: $(cat "$drop")"
grep -qxF 'RequiresMountsFor="/srv/a b%%c" /mnt/fast/ab' "$drop" || fail "drop-in quoting: $(cat "$drop")"
grep -q "relative" "$drop" && fail "the bad section made it into the drop-in"
cp -r "$T_SCRATCH/gen/cachemax.service.d" "$U/"
out=$(systemd-analyze verify --man=no "$U/cachemax.service" "$U/cachemax-web.service" 2>&1) \
  || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
# The check can fail: a wrong key in the drop-in is reported.
echo "RequiresMountFor=/x" >> "$U/cachemax.service.d/50-cachemax-mounts.conf"
out=$(systemd-analyze verify --man=no "$U/cachemax.service" 2>&1) || true
echo "$out" | t_grep "RequiresMountFor" || fail "systemd-analyze verify did not read the drop-in: $out"
# No config file: nothing to require, no failure.
rm "$CACHEMAX_CONFIG"
rm -rf "$T_SCRATCH/gen"/*
"$ROOT/build/cachemax" systemd-generator "$T_SCRATCH/gen" || fail "the generator failed without a config file"
echo "PASS"
