#!/usr/bin/env bash
# Installs the Debian packages CacheMax needs to build, test and benchmark, when they are missing.
# Idempotent: prints nothing and does nothing when everything is already there.
set -euo pipefail
need=(gcc make pkg-config libcmocka-dev fuse3 fio bindfs attr psmisc util-linux clang libclang-rt-dev)
need+=(llvm libbpf-dev bpftool)   # the passthrough counter (src/stats/bpf/)
need+=(libmicrohttpd-dev libjs-chart.js)   # cachemax web (src/web/): the server, the charts
need+=(libxxhash-dev)                       # cachemax verify, warm --verify: XXH3 (src/fs/fs_admin.c)
need+=(libinih-dev)                         # the config file (src/config/config_file.c)
need+=(chromium fonts-dejavu-core curl)    # t-web: the dashboard in a real browser, its screenshot
need+=(man-db groff-base)                  # t-install: the man page renders without a warning
need+=(dpkg-dev debhelper)                 # t-deb: the Debian package builds (debian/)
need+=(openssh-server sshfs git)           # bench/meta-bench.sh: the network original (sshfs over loopback)
need+=(acl)                                # t-network-xattr: getfacl and setfacl, compared through the mount and on sshfs
need+=(libsqlite3-dev)                     # bench/catalog-bench.c: the catalog's storage choice, measured
need+=(e2fsprogs xfsprogs)                 # t-meta-catalog-seal: an ext4 journal and an XFS log on another device
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
