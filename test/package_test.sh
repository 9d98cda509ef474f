#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` in a build directory, then what the package holds (the
# binary, the manual page, bash completion, the systemd unit), its Depends (from the binary's
# libraries), and the binary run from the unpacked package. Usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d /tmp/assent-deb.XXXXXX)
trap 'rm -rf "$root"' EXIT
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build"/assent_*.deb | head -1)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/assent ./usr/share/man/man1/assent.1 ./usr/share/bash-completion/completions/assent \
         ./usr/lib/systemd/system/assent.service ./usr/share/doc/assent/README.md; do
  grep -qx "$f" <<<"$contents" || { echo "FAIL the package lacks $f"; exit 1; }
done
depends=$(dpkg-deb -f "$deb" Depends)
# libpq5 and libcurl4 are loaded when first used (dlopen): named in Depends by hand.
for lib in libsqlite3 libssl3 libpq5 libcurl4 libsodium23 libzstd1; do
  grep -q "$lib" <<<"$depends" || { echo "FAIL Depends lacks $lib: $depends"; exit 1; }
done
dpkg-deb -x "$deb" "$root"
ASAN_OPTIONS=detect_leaks=0 "$root/usr/bin/assent" --version | grep -q "^assent 0.1.0 (commit " \
  || { echo "FAIL the packaged binary does not run"; exit 1; }
grep -q "ProtectSystem=strict" "$root/usr/lib/systemd/system/assent.service"
grep -q "^.TH ASSENT 1" "$root/usr/share/man/man1/assent.1"
echo "1 passed, 0 failed"
