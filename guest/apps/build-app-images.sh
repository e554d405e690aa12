#!/usr/bin/env bash
# Build the demo apps' container images as OCI layouts (or take them from the cache).
#
#   guest/apps/build-app-images.sh OUTDIR
#
# OUTDIR/dstack-demo-web/  busybox httpd on :8080 with a page naming the container (hostname,
#                          $DSTACK_APP_ID) and /cgi-bin/whoami
# OUTDIR/dstack-demo-app/  the demo's app (scripts/demo/compose.yaml): dstack-demo-web's page
#                          (/start.sh, the default) plus /attest.sh, which asks tappd's socket
#                          for a key and a quote (dstack-attest, app/attest.c, static) and serves
#                          them over TLS with that key on :8443 (Debian's openssl s_server)
# OUTDIR/dstack-demo-sdk/  Debian's nodejs and the published @phala/dstack-sdk (the version
#                          tests/sdk/package-lock.json pins) running /app/sdk-check.mjs: info,
#                          getKey and getQuote over /var/run/dstack.sock, served as JSON on :8081
# Each is an OCI image layout with one image tagged "latest" (push with
# `skopeo copy oci:OUTDIR/NAME:latest docker://REGISTRY/NAME:latest`). The last stdout line is
# OUTDIR. Everything is made from Debian packages and the npm registry, reproducibly (fixed
# mtimes and owners, sorted tar, gzip without timestamps); the cache entry in
# ${DSTACK_CACHE_DIR:-/var/cache/dstack}/apps/<key>/ is keyed by every input and used only when
# every blob still matches its digest.
set -euo pipefail

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"

log() { echo "build-app-images: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
for tool in apt-get apt-cache dpkg-deb python3 npm sha256sum gcc; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/deps.sh)"
done

mkdir -p "$1"
outdir=$(cd "$1" && pwd)
epoch=${SOURCE_DATE_EPOCH:-1704067200}
export SOURCE_DATE_EPOCH=$epoch
cache_root=${DSTACK_CACHE_DIR:-/var/cache/dstack}
debs=${DSTACK_GUEST_DEBS:-$cache_root/guest/debs}
mkdir -p "$cache_root/apps" "$debs"
APPS=(dstack-demo-web dstack-demo-app dstack-demo-sdk)
lock="$repo/tests/sdk/package-lock.json"
[ -f "$lock" ] || die "$lock missing"

# shellcheck source=../apt.sh
. "$here/../apt.sh"
apt_setup
trap 'rm -rf "$APT_DIR"' EXIT
mapfile -t web_pkgs < <(apt_resolve busybox-static)
mapfile -t sdk_pkgs < <(apt_resolve nodejs)
mapfile -t tls_pkgs < <(apt_resolve openssl)
jansson_a=/usr/lib/$(gcc -print-multiarch)/libjansson.a
[ -f "$jansson_a" ] || die "$jansson_a missing (libjansson-dev)"

key=$( {
  echo "script $(sha256sum <"$script" | cut -d' ' -f1)"
  (cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  echo "apt.sh $(sha256sum <"$here/../apt.sh" | cut -d' ' -f1)"
  echo "lock $(sha256sum <"$lock" | cut -d' ' -f1)"
  echo "web ${web_pkgs[*]}"
  echo "sdk ${sdk_pkgs[*]}"
  echo "tls ${tls_pkgs[*]}"
  echo "cc $(gcc --version | head -n 1) $(dpkg-query -W -f='${Version}' libc6-dev libjansson-dev)"
  echo "epoch $epoch"
} | sha256sum | cut -d' ' -f1)
entry="$cache_root/apps/$key"

# 0 when every app's layout is there and each blob matches its digest
entry_ok() {
  local a b
  for a in "${APPS[@]}"; do
    [ -f "$1/$a/index.json" ] && [ -f "$1/$a/oci-layout" ] || return 1
    for b in "$1/$a"/blobs/sha256/*; do
      [ -f "$b" ] && [ "$(sha256sum <"$b" | cut -d' ' -f1)" = "${b##*/}" ] || return 1
    done
  done
}
install_entry() {
  local a
  for a in "${APPS[@]}"; do
    rm -rf "${outdir:?}/$a"
    cp -r "$1/$a" "$outdir/$a"
  done
  entry_ok "$outdir" || die "the copy in $outdir does not match its digests"
  echo "$outdir"
}
if entry_ok "$entry"; then
  log "cached: $entry"
  install_entry "$entry"
  exit 0
fi

t0=$(date +%s)
work=$(mktemp -d "$cache_root/apps/.build.XXXXXX")
trap 'rm -rf "$APT_DIR" "$work"' EXIT

# a minimal /etc for a container
base_etc() {
  mkdir -p "$1/etc" "$1/tmp" "$1/var/run" "$1/proc" "$1/sys" "$1/dev"
  chmod 1777 "$1/tmp"
  echo "root:x:0:0:root:/root:/bin/sh" >"$1/etc/passwd"
  echo "root:x:0:" >"$1/etc/group"
  echo "hosts: files dns" >"$1/etc/nsswitch.conf"
}

# --- dstack-demo-web ---------------------------------------------------------------------------
web="$work/web"
mkdir -p "$web/root"
deb_unpack_set "$web/deb" "${web_pkgs[@]}"
root="$web/root"
mkdir -p "$root/bin" "$root/www/cgi-bin"
install -m 0755 "$web/deb/bin/busybox" "$root/bin/busybox"
for applet in sh hostname httpd cat echo printf ls; do
  ln -s busybox "$root/bin/$applet"
done
base_etc "$root"
install -m 0755 "$here/web/start.sh" "$root/start.sh"
install -m 0755 "$here/web/whoami.cgi" "$root/www/cgi-bin/whoami"
python3 "$here/oci_layout.py" "$root" "$work/out/dstack-demo-web" --tag latest \
  --entrypoint '["/start.sh"]' --port 8080/tcp --epoch "$epoch" >/dev/null

# --- dstack-demo-app: the web page, plus a key and a quote served over TLS ----------------------
app="$work/app"
root="$app/root"
mkdir -p "$app/deb"
cp -a "$web/root" "$root"
deb_unpack_set "$app/deb" "${tls_pkgs[@]}"
# openssl and exactly the libraries it loads (no docs, locales or gconv)
mkdir -p "$root/usr/bin" "$root/usr/lib/x86_64-linux-gnu" "$root/lib64" "$root/usr/lib/ssl"
install -m 0755 "$app/deb/usr/bin/openssl" "$root/usr/bin/openssl"
for lib in libssl.so.3 libcrypto.so.3 libc.so.6; do
  src="$app/deb/usr/lib/x86_64-linux-gnu/$lib"
  [ -f "$src" ] || src="$app/deb/lib/x86_64-linux-gnu/$lib"
  [ -f "$src" ] || die "$lib not in the openssl package set"
  install -m 0644 "$(readlink -f "$src")" "$root/usr/lib/x86_64-linux-gnu/$lib"
done
ld_real=$(find "$app/deb" -name 'ld-linux-x86-64.so.2' -type f | head -n 1)
[ -n "$ld_real" ] || die "no ld-linux-x86-64.so.2 in the openssl package set"
install -m 0755 "$ld_real" "$root/lib64/ld-linux-x86-64.so.2"
ln -s ../../lib64/ld-linux-x86-64.so.2 "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
cp "$app/deb/usr/lib/ssl/openssl.cnf" "$root/usr/lib/ssl/openssl.cnf" 2>/dev/null ||
  cp "$app/deb/etc/ssl/openssl.cnf" "$root/usr/lib/ssl/openssl.cnf"
gcc -std=gnu17 -O2 -Wall -Wextra -Werror -static -ffile-prefix-map="$here"=. \
  -o "$root/bin/dstack-attest" "$here/app/attest.c" "$here/app/reply.c" "$jansson_a"
strip --strip-all "$root/bin/dstack-attest"
install -m 0755 "$here/app/attest.sh" "$root/attest.sh"
# the image runs what it holds: openssl with its own libraries, the static client
chroot "$root" /usr/bin/openssl version >/dev/null || die "openssl does not run in dstack-demo-app"
rc=0
chroot "$root" /bin/dstack-attest 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || die "dstack-attest does not run (exit $rc)"
for applet in mkdir chmod sleep; do
  ln -s busybox "$root/bin/$applet"
done
# a command, not an entrypoint: compose's `command: ["/attest.sh"]` replaces it
python3 "$here/oci_layout.py" "$root" "$work/out/dstack-demo-app" --tag latest \
  --cmd '["/start.sh"]' --port 8080/tcp --port 8443/tcp --epoch "$epoch" >/dev/null

# --- dstack-demo-sdk ---------------------------------------------------------------------------
sdk="$work/sdk"
root="$sdk/root"
mkdir -p "$root"
deb_unpack_set "$root" "${sdk_pkgs[@]}"
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/lintian"
mkdir -p "$sdk/npm"
cp "$repo/tests/sdk/package.json" "$lock" "$sdk/npm/"
(cd "$sdk/npm" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error \
  --cache "$cache_root/apps/npm-cache" >&2) || die "npm ci failed"
sdk_dir=$(python3 - "$lock" <<'EOF'
import json, sys
lock = json.load(open(sys.argv[1]))
# the newest @phala/dstack-sdk the lock pins, under whatever alias
best = max(((tuple(int(x) for x in v["version"].split(".")), k)
            for k, v in lock["packages"].items()
            if v.get("name") == "@phala/dstack-sdk"), default=None)
print(best[1] if best else "")
EOF
)
[ -n "$sdk_dir" ] && [ -d "$sdk/npm/$sdk_dir" ] || die "no @phala/dstack-sdk in $lock"
mkdir -p "$root/app/node_modules/@phala"
cp -r "$sdk/npm/$sdk_dir" "$root/app/node_modules/@phala/dstack-sdk"
[ -d "$sdk/npm/node_modules/@noble" ] && cp -r "$sdk/npm/node_modules/@noble" "$root/app/node_modules/"
install -m 0644 "$here/sdk/sdk-check.mjs" "$root/app/sdk-check.mjs"
base_etc "$root"
[ -e "$root/bin" ] || ln -s usr/bin "$root/bin"
[ -e "$root/lib" ] || ln -s usr/lib "$root/lib"
[ -e "$root/lib64" ] || ln -s usr/lib64 "$root/lib64"
[ -x "$root/usr/bin/node" ] || die "nodejs has no /usr/bin/node"
python3 "$here/oci_layout.py" "$root" "$work/out/dstack-demo-sdk" --tag latest \
  --entrypoint '["/usr/bin/node", "/app/sdk-check.mjs"]' --workdir /app --port 8081/tcp \
  --env NODE_PATH=/app/node_modules --epoch "$epoch" >/dev/null

# publish
entry_ok "$work/out" || die "built layouts fail their own check"
rm -rf "$entry"
mv -T "$work/out" "$entry" 2>/dev/null || entry_ok "$entry" || die "cannot publish $entry"
log "built ${APPS[*]} in $(($(date +%s) - t0)) s: $entry"
install_entry "$entry"
