#!/usr/bin/env bash
# Install the Debian packages the build, the demo and the tests use, and only those missing.
# Idempotent: when everything is present it does no network access and returns at once.
set -euo pipefail

pkgs=(
  build-essential pkg-config meson ninja-build
  clang libclang-rt-14-dev llvm
  libssl-dev openssl libjansson-dev libsecp256k1-dev libcmocka-dev
  libevent-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev
  python3 python3-pytest python3-cryptography python3-requests
  libsqlite3-dev wireguard-go wireguard-tools iproute2 libc-ares-dev
  haproxy wrk knot knot-dnsutils
  pebble
  certbot python3-certbot-dns-rfc2136 time
  xxd curl nginx osslsigncode
  podman runc busybox-static
  cpio xz-utils qemu-system-x86 qemu-utils dosfstools mtools libyaml-dev
  chromium
  mmdebstrap erofs-utils cryptsetup-bin kmod file docker-registry skopeo
)
# node and npm run the published SDKs and the reference verifiers; the machine image may bring
# its own node, otherwise Debian's.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root or install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
