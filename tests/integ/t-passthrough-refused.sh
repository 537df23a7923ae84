#!/usr/bin/env bash
# When the kernel refuses backing files (EPERM: no CAP_SYS_ADMIN), passthrough goes off for the
# mount, status says why, and every operation still works through the user-space path.
# The refusal is injected through the syscall seam (CACHEMAX_FAULT), at the start-up probe.
. "$(dirname "$0")/lib.sh"
need_root
D=$T_SCRATCH/data P=$T_SCRATCH/plain
mkdir -p "$D" "$P"
CACHEMAX_FAULT="backing_open:1:EPERM" t_mount "$D" "$T_SCRATCH/cache"
st=$("$CACHEMAX" status)
echo "$st" | t_grep "passthrough: *off (the kernel refused backing files (EPERM: needs CAP_SYS_ADMIN))" \
  || fail "status does not say why passthrough is off: $st"
"$CACHEMAX" status --json | t_grep '"passthrough": false' || fail "status --json: passthrough not false"
"$TOOLS/diff/difftest" --seed 7 --ops 20000 "$D" "$P" || fail "operations differ without passthrough"
t_unmount "$D"
echo ok
