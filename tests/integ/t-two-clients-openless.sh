#!/usr/bin/env bash
# t-two-clients with both CacheMax instances started with --openless (issue 14, target (c)):
# the kernel keeps the files' pages across opens on a network original too, for
# --attr-timeout, and every change made through the other client or in the share must show
# after the attribute timeout as in the default mode (src/fs/fs_openless.h, "Timed"). Every
# check is t-two-clients.sh's; see there.
T_TWO_CLIENTS_OPENLESS=1 exec bash "$(dirname "$0")/t-two-clients.sh"
