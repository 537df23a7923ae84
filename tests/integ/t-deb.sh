#!/usr/bin/env bash
# The Debian package: dpkg-buildpackage builds cachemax_VERSION_ARCH.deb from the tracked files
# (debian/), and it holds what `make install PREFIX=/usr` installs: the binary (its --version is
# the changelog's), the man page, the bash completion and every systemd/*.service, with the
# shared libraries it links as dependencies. Built in this test's scratch directory.
. "$(dirname "$0")/lib.sh"
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
  skip "needs dpkg-dev and debhelper (make deps)"
fi
SRC=$T_SCRATCH/pkg/cachemax
mkdir -p "$SRC"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null -cf - -T -) | tar -xf - -C "$SRC"
[ -x "$SRC/debian/rules" ] || fail "debian/rules is not tracked or not executable"
VERSION=$(cd "$SRC" && dpkg-parsechangelog -S Version)
(cd "$SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b) \
  > "$T_SCRATCH/build.log" 2>&1 || fail "dpkg-buildpackage failed: $(tail -30 "$T_SCRATCH/build.log")"
debs=("$T_SCRATCH"/pkg/cachemax_"$VERSION"_*.deb)   # not cachemax-dbgsym_*
DEB=${debs[0]}
[ -f "$DEB" ] || fail "no cachemax_${VERSION}_*.deb: $(ls "$T_SCRATCH/pkg")"

dpkg-deb -c "$DEB" | sed 's/ -> .*//' | awk '{print $NF}' > "$T_SCRATCH/contents"
want=(./usr/bin/cachemax ./usr/share/man/man1/cachemax.1.gz
      ./usr/share/bash-completion/completions/cachemax ./usr/share/doc/cachemax/copyright)
for unit in "$ROOT"/systemd/*.service; do
  [ -e "$unit" ] && want+=("./usr/lib/systemd/system/$(basename "$unit")")
done
if "$ROOT/build/cachemax" help systemd-generator >/dev/null 2>&1; then
  want+=(./usr/lib/systemd/system-generators/cachemax-generator)
fi
for f in "${want[@]}"; do
  grep -qxF "$f" "$T_SCRATCH/contents" || fail "$DEB lacks $f: $(cat "$T_SCRATCH/contents")"
done
depends=$(dpkg-deb -f "$DEB" Depends)
for lib in libbpf libmicrohttpd libc6; do
  [[ $depends == *"$lib"* ]] || fail "Depends does not name $lib: $depends"
done
dpkg-deb -x "$DEB" "$T_SCRATCH/root"
# Built with Debian's hardening flags (debian/rules: hardening=+all reaches compile and link).
grep -q 'BIND_NOW' <<< "$(readelf -d "$T_SCRATCH/root/usr/bin/cachemax")" \
  || fail "the packaged binary was not linked with Debian's LDFLAGS (-z now)"
grep -q '__snprintf_chk' <<< "$(nm -D "$T_SCRATCH/root/usr/bin/cachemax")" \
  || fail "the packaged binary was not compiled with _FORTIFY_SOURCE (CPPFLAGS)"
GENERATOR=$T_SCRATCH/root/usr/lib/systemd/system-generators/cachemax-generator
if [ -L "$GENERATOR" ]; then   # dh_link makes it relative; it must still reach the binary
  [ "$(readlink -f "$GENERATOR")" = "$(readlink -f "$T_SCRATCH/root/usr/bin/cachemax")" ] \
    || fail "cachemax-generator points to $(readlink "$GENERATOR"), not usr/bin/cachemax"
fi
got=$("$T_SCRATCH/root/usr/bin/cachemax" --version)
[[ $got == *"$VERSION"* ]] || fail "the packaged cachemax --version says '$got', the changelog $VERSION"
echo "$(basename "$DEB"): ${#want[@]} files checked, Depends: $depends; --version: $got"
