#!/usr/bin/env bash
# Build the dstack guest image from Debian 12 packages (or take it from the cache).
#
#   guest/build-image.sh BUILD_DIR OUTDIR [--dev]
#
# Produces OUTDIR/dstack-<version>[-dev]/ with metadata.json, vmlinuz, initrd.img, rootfs.img
# (erofs + dm-verity hash tree), sha256sum.txt and measurements.json; the last stdout line is
# that folder's path, progress goes to stderr. docs/guest-image.md describes the image.
#
# Steps and their caches (under ${DSTACK_CACHE_DIR:-/var/cache/dstack}/guest/):
#   debs/            every .deb used, as apt's archive cache (shared by all builds)
#   base/<key>.tar   the Debian tree made by mmdebstrap, key = the resolved package list with
#                    versions + the base recipe; reused when only our binaries change
#   image/<key>/     the finished image, key = hash of every input (this script, guest/ files,
#                    package versions, our binaries, stage 1); used only when its files match
#                    its sha256sum.txt
# After a build the 4 most recently used images and 3 base trees are kept.
#
# Reproducible: SOURCE_DATE_EPOCH fixed, mmdebstrap's reproducible tarball, erofs with fixed
# timestamps and UUID, verity with a fixed salt, a sorted cpio with fixed mtimes and gzip -n.
#
# Environment:
#   DSTACK_CACHE_DIR        cache root (default /var/cache/dstack)
#   DSTACK_GUEST_DEBS       .deb cache (default <cache>/guest/debs)
#   SOURCE_DATE_EPOCH       timestamp of every file (default below)
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR OUTDIR [--dev]" >&2
  exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
dev=0
if [ $# -eq 3 ]; then
  [ "$3" = --dev ] || usage
  dev=1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"

log() { echo "build-image: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for tool in apt-get apt-cache dpkg-deb dpkg-query mmdebstrap mkfs.erofs veritysetup depmod cpio \
  gzip xz sha256sum python3 tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/deps.sh)"
done

build=$(cd "$1" && pwd) || die "no build folder $1"
mkdir -p "$2"
outdir=$(cd "$2" && pwd)

# the version: meson.build's project version, the one place it is written
VERSION=$(sed -n "s/^ *version *: *'\([0-9][0-9.]*\)'.*/\1/p" "$repo/meson.build" | head -n 1)
[ -n "$VERSION" ] || die "no version in meson.build"
IMAGE_NAME="dstack-$VERSION"
[ "$dev" = 1 ] && IMAGE_NAME="$IMAGE_NAME-dev"
epoch=${SOURCE_DATE_EPOCH:-1704067200}
export SOURCE_DATE_EPOCH=$epoch
# shellcheck source=apt.sh
. "$here/apt.sh"
# shellcheck source=kmods.sh
. "$here/kmods.sh"
SUITE=$GUEST_SUITE
MIRRORS=("${GUEST_MIRRORS[@]}")
KERNEL_META=linux-image-6.12-cloud-amd64
# fixed salt of the verity hash tree (any fixed value keeps the build reproducible)
VERITY_SALT=64737461636b2d726f6f7466732d76657269747900000000000000000000000a
EROFS_UUID=2f0e6f5a-6473-4b61-8d63-6b2d726f6f74
CMDLINE_BASE="console=ttyS0 panic=-1 apparmor=0 quiet"
IMAGE_FILES=(metadata.json vmlinuz initrd.img rootfs.img measurements.json)

# What the guest runs: podman with its Docker API and Debian's docker-compose, the tools tboot
# calls, and (added below) the libraries our binaries link.
PACKAGES=(
  podman conmon crun netavark aardvark-dns iptables docker-compose
  cryptsetup-bin e2fsprogs wireguard-tools iproute2 kmod ca-certificates mount
)
# a development image adds busybox-static, unpacked over the same base tree
DEV_PACKAGE=busybox-static

# Kernel options stage 1 needs before the root is mounted: "y" built in only, "m" built in or a
# module that goes into the initramfs with its dependencies.
KERNEL_NEEDS=(
  "BLK_DEV_INITRD y" "RD_GZIP y" "DEVTMPFS y" "TMPFS y" "SERIAL_8250_CONSOLE y" "PCI y"
  "VIRTIO_PCI m virtio_pci" "VIRTIO_BLK m virtio_blk" "VIRTIO_CONSOLE m virtio_console"
  "BLK_DEV_DM m dm_mod" "DM_VERITY m dm_verity" "CRYPTO_SHA256 m sha256_generic"
  "EROFS_FS m erofs" "OVERLAY_FS m overlay"
)
# Kernel options tboot and podman need later, loaded from the root with modprobe: built in or
# modules (then in the root's /usr/lib/modules with modules.dep).
KERNEL_LATER=(WIREGUARD DM_CRYPT OVERLAY_FS BRIDGE VETH NF_TABLES NFT_NAT NFT_MASQ
  NETFILTER_XT_MATCH_CONNTRACK IP_NF_IPTABLES CGROUPS MEMCG TUN TDX_GUEST_DRIVER TSM_REPORTS)

cache_root=${DSTACK_CACHE_DIR:-/var/cache/dstack}/guest
debs=${DSTACK_GUEST_DEBS:-$cache_root/debs}
mkdir -p "$cache_root/base" "$cache_root/image" "$debs"

# --- our binaries ---------------------------------------------------------------------------

declare -A BINARIES=(
  [src/tboot/tboot]=/usr/sbin/tboot
  [src/tappd/tappd]=/usr/bin/tappd
  [src/tdxctl/tdxctl]=/usr/bin/tdxctl
)
stage1="$build/src/tboot/tboot-init"
for b in "${!BINARIES[@]}" src/tboot/tboot-init; do
  [ -x "$build/$b" ] || die "$build/$b missing (build first: scripts/build.sh build)"
done
file -b "$stage1" 2>/dev/null | grep -q 'statically linked' ||
  ldd "$stage1" 2>&1 | grep -q 'not a dynamic' || die "$stage1 is not statically linked"

# the Debian packages holding the shared libraries our binaries link (one dpkg query: usrmerge
# registers a library under /lib or /usr/lib, so both names are asked)
lib_packages() {
  local b libs=() names=() lib out
  mapfile -t libs < <(for b in "${!BINARIES[@]}"; do
    ldd "$build/$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
  done | sort -u)
  for lib in "${libs[@]}"; do
    lib=$(readlink -f "$lib")
    names+=("$lib" "${lib#/usr}")
  done
  out=$(dpkg-query -S "${names[@]}" 2>/dev/null || true)
  for lib in "${libs[@]}"; do
    grep -q "/${lib##*/}\$" <<<"$out" || grep -q "/$(basename "$(readlink -f "$lib")")\$" <<<"$out" ||
      die "no package holds $lib"
  done
  awk -F': ' '{ split($1, p, ":"); print p[1] }' <<<"$out" | tr -d ' ' | tr ',' '\n' | sort -u
}
mapfile -t libpkgs < <(lib_packages)
PACKAGES+=("${libpkgs[@]}")

# --- resolving the package set ----------------------------------------------------------------

apt_setup
trap 'rm -rf "$APT_DIR"' EXIT

mapfile -t essential < <(apt-cache "${APT_OPTS[@]}" dumpavail 2>/dev/null |
  awk '/^Package: / { p = $2 } /^Essential: yes/ { print p }' | sort -u)
[ ${#essential[@]} -gt 10 ] || die "no essential packages in the apt lists (apt-get update?)"

pkgset=$(apt_resolve "${essential[@]}" "${PACKAGES[@]}")
[ -n "$pkgset" ] || die "apt resolved no packages"

# the kernel: the package linux-image-6.12-cloud-amd64 names; unpacked, not installed (its
# initramfs-tools dependency has no place here)
kinfo=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$KERNEL_META" 2>/dev/null) ||
  die "$KERNEL_META unknown to apt (apt-get update?)"
kernel_pkg=$(grep -m1 '^Depends:' <<<"$kinfo" | grep -o 'linux-image-[^ ,|]*' | head -n 1)
[ -n "$kernel_pkg" ] || die "$KERNEL_META names no kernel"
kinfo=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$kernel_pkg")
kernel_ver=$(sed -n 's/^Version: //p' <<<"$kinfo" | head -n 1)
kernel_sha=$(sed -n 's/^SHA256: //p' <<<"$kinfo" | head -n 1)
[[ $kernel_sha =~ ^[0-9a-f]{64}$ ]] || die "no SHA256 for $kernel_pkg in the apt lists"
dev_line=
if [ "$dev" = 1 ]; then
  dinfo=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$DEV_PACKAGE")
  dev_ver=$(sed -n 's/^Version: //p' <<<"$dinfo" | head -n 1)
  dev_sha=$(sed -n 's/^SHA256: //p' <<<"$dinfo" | head -n 1)
  [[ $dev_sha =~ ^[0-9a-f]{64}$ ]] || die "no SHA256 for $DEV_PACKAGE in the apt lists"
  dev_line="$DEV_PACKAGE $dev_ver $dev_sha"
fi

# the base recipe: what mmdebstrap gets; the hash names the cached tree
base_recipe=$(
  echo "suite $SUITE"
  printf 'mirror %s\n' "${MIRRORS[@]}"
  echo "epoch $epoch"
  sed -n '/^# >>> base recipe/,/^# <<< base recipe/p' "$script"
  printf '%s\n' "$pkgset"
)
base_key=$(sha256sum <<<"$base_recipe" | cut -d' ' -f1)
base_tar="$cache_root/base/$base_key.tar"
base_tmp="$cache_root/base/.$base_key.$$.tar"
trap 'rm -rf "$APT_DIR" "$base_tmp"' EXIT

# --- the base tree (mmdebstrap) ---------------------------------------------------------------

# >>> base recipe (this block's text is part of the base tree's cache key)
base_build() {
  local tmp=$base_tmp includes
  includes=$(tr '\n' ',' <<<"$pkgset")
  # Every package pinned to the resolved version; docs, man pages and locales left out; the
  # .debs copied in from the shared cache, and new ones back by rename (builds running side by
  # side never see a half-written file). In root mode mmdebstrap's tarball
  # is reproducible for a given SOURCE_DATE_EPOCH.
  mmdebstrap --mode=root --variant=essential --format=tar \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --include="${includes%,}" \
    --skip=download/empty --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in '$debs' /var/cache/apt/archives/" \
    --customize-hook="for f in \"\$1\"/var/cache/apt/archives/*.deb; do n=\${f##*/}; [ -e '$debs'/\$n ] || { cp \"\$f\" '$debs'/.\$n.\$\$ && mv -f '$debs'/.\$n.\$\$ '$debs'/\$n; }; done" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/ldconfig/aux-cache' \
    "$SUITE" "$tmp" "${MIRRORS[@]}" >&2 || { rm -f "$tmp"; return 1; }
  mv -f "$tmp" "$base_tar"
}
# <<< base recipe

# --- the image's cache key ------------------------------------------------------------------

files_hash() {
  (cd "$here" && find rootfs apt.sh kmods.sh -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) |
    sha256sum | cut -d' ' -f1
}
recipe=$(
  echo "script $(sha256sum <"$script" | cut -d' ' -f1)"
  echo "guest-files $(files_hash)"
  echo "base $base_key"
  echo "kernel $kernel_pkg $kernel_ver $kernel_sha"
  echo "dev-package $dev_line"
  for b in $(printf '%s\n' "${!BINARIES[@]}" | LC_ALL=C sort) src/tboot/tboot-init; do
    echo "binary $b $(sha256sum <"$build/$b" | cut -d' ' -f1)"
  done
  echo "version $VERSION dev $dev epoch $epoch"
)
key=$(sha256sum <<<"$recipe" | cut -d' ' -f1)
entry="$cache_root/image/$key"

# 0 when ENTRY holds exactly the image files and they match its sha256sum.txt
entry_ok() {
  local e=$1/$IMAGE_NAME f
  [ -f "$e/sha256sum.txt" ] || return 1
  [ "$(cut -c67- "$e/sha256sum.txt" | LC_ALL=C sort | tr '\n' ' ')" = \
    "$(printf '%s\n' "${IMAGE_FILES[@]}" | LC_ALL=C sort | tr '\n' ' ')" ] || return 1
  for f in "${IMAGE_FILES[@]}"; do
    [ -f "$e/$f" ] && [ ! -L "$e/$f" ] || return 1
  done
  (cd "$e" && sha256sum --quiet --strict -c sha256sum.txt >/dev/null 2>&1)
}

# copies the cached image into OUTDIR and checks the copy; prints its path
entry_install() {
  local src=$1/$IMAGE_NAME dst="$outdir/$IMAGE_NAME" f
  rm -rf "$dst"
  mkdir -p "$dst"
  for f in "${IMAGE_FILES[@]}" sha256sum.txt; do
    cp --reflink=auto "$src/$f" "$dst/$f"
  done
  (cd "$dst" && sha256sum --quiet --strict -c sha256sum.txt >/dev/null) ||
    die "copy in $dst does not match its sha256sum.txt"
  echo "$dst"
}

# keeps the cache bounded: the newest KEEP entries of DIR (by mtime; a cache hit refreshes it)
cache_prune() {
  local dir=$1 keep=$2 e
  ls -1t "$dir" | tail -n +$((keep + 1)) | while IFS= read -r e; do
    [ -n "$e" ] && rm -rf "${dir:?}/$e"
  done
}

if entry_ok "$entry"; then
  log "cached: $entry"
  touch "$entry" "$base_tar" 2>/dev/null || true
  entry_install "$entry"
  exit 0
fi
[ -e "$entry" ] && log "cache entry $entry altered or incomplete: building again"

# --- the build --------------------------------------------------------------------------------

t0=$(date +%s)
if [ -f "$base_tar" ] && tar -tf "$base_tar" >/dev/null 2>&1; then
  log "base tree cached: $base_tar"
  touch "$base_tar"
else
  log "base tree: mmdebstrap $SUITE with $(wc -l <<<"$pkgset") packages"
  base_build || die "mmdebstrap failed"
fi

work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$APT_DIR" "$base_tmp" "$work"' EXIT
root="$work/root"
mkdir -p "$root"
tar -C "$root" --numeric-owner -xpf "$base_tar"

# the kernel: vmlinuz out of the tree, its modules in it with modules.dep
kernel_deb=$(deb_fetch "$kernel_pkg" "$kernel_ver" "$kernel_sha")
dpkg-deb -x "$kernel_deb" "$work/kernel"
set -- "$work"/kernel/boot/vmlinuz-*
[ $# -eq 1 ] && [ -f "$1" ] || die "$kernel_pkg: expected one boot/vmlinuz-*"
vmlinuz=$1
kver=${vmlinuz##*/vmlinuz-}
kconfig="$work/kernel/boot/config-$kver"
[ -f "$kconfig" ] || die "$kernel_pkg: no config"
mkdir -p "$root/usr/lib/modules"
cp -a "$work/kernel/lib/modules/$kver" "$root/usr/lib/modules/"
depmod -b "$root/usr" "$kver" || die "depmod failed"
moddir="$root/usr/lib/modules/$kver"
for opt in "${KERNEL_LATER[@]}"; do
  grep -Eq "^CONFIG_$opt=(y|m)$" "$kconfig" || die "$kernel_pkg: CONFIG_$opt is not set, the guest needs it"
done

# our binaries and configuration
for b in "${!BINARIES[@]}"; do
  install -D -m 0755 "$build/$b" "$root${BINARIES[$b]}"
done
(cd "$here/rootfs" && find . -type f ! -name .keep -print0 | LC_ALL=C sort -z) |
  while IFS= read -r -d '' f; do
    install -D -m 0644 "$here/rootfs/$f" "$root/${f#./}"
  done
mkdir -p "$root/etc/dstack" "$root/etc/containers/registries.conf.d" "$root/data" "$root/tapp" "$root/dstack"
cat >"$root/etc/dstack/image" <<EOF
name=$IMAGE_NAME
version=$VERSION
kernel=$kernel_pkg $kernel_ver
EOF
if [ "$dev" = 1 ]; then
  dev_deb=$(deb_fetch "$DEV_PACKAGE" "$dev_ver" "$dev_sha")
  dpkg-deb -x "$dev_deb" "$work/dev"
  install -m 0755 "$work/dev/bin/busybox" "$root/usr/bin/busybox"
  # the marker tells tboot to offer a root shell on the serial console (docs/guest-image.md)
  echo "A development image: tboot starts /usr/bin/busybox sh on the serial console." \
    >"$root/etc/dstack/dev"
fi
: >"$root/etc/machine-id"
echo dstack >"$root/etc/hostname"
rm -f "$root/etc/resolv.conf"
: >"$root/etc/resolv.conf"

# the installed packages with versions, for metadata.json
packages_json=$( {
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version}\n'
  echo "$kernel_pkg $kernel_ver"
  [ "$dev" = 0 ] || echo "$DEV_PACKAGE $dev_ver"
} | LC_ALL=C sort | python3 -c 'import json,sys; print(json.dumps([l.rstrip("\n") for l in sys.stdin if l.strip()]))')

# --- the initramfs: stage 1 and the modules it needs ------------------------------------------

wanted=()
for need in "${KERNEL_NEEDS[@]}"; do
  read -r opt kind mod <<<"$need"
  val=$(sed -n "s/^CONFIG_$opt=//p" "$kconfig")
  case "$val:$kind" in
    y:*) ;;
    m:m) wanted+=("$mod") ;;
    *) die "$kernel_pkg: CONFIG_$opt is '${val:-not set}', the guest needs it${mod:+ (or module $mod)}" ;;
  esac
done
kmods_resolve "$moddir" "$kernel_pkg" "${wanted[@]}"

initrd_root="$work/initrd"
mkdir -p "$initrd_root"/{dev,proc,sys,run,mnt/ro,mnt/rw,newroot,etc,lib/modules}
mknod -m 0600 "$initrd_root/dev/console" c 5 1
install -m 0755 "$stage1" "$initrd_root/init"
: >"$initrd_root/etc/modules.load"
for m in "${order[@]}"; do
  rel=${mod_path[$m]%.xz}
  mkdir -p "$(dirname "$initrd_root/lib/modules/$rel")"
  case "${mod_path[$m]}" in
    *.ko.xz) xz -dc "$moddir/${mod_path[$m]}" >"$initrd_root/lib/modules/$rel" ;;
    *.ko) cp "$moddir/${mod_path[$m]}" "$initrd_root/lib/modules/$rel" ;;
    *) die "module $m: compression not handled: ${mod_path[$m]}" ;;
  esac
  echo "$rel" >>"$initrd_root/etc/modules.load"
done
log "initramfs modules: ${order[*]:-none}"

image="$work/$IMAGE_NAME"
mkdir -p "$image"
find "$initrd_root" -type d -exec chmod 0755 {} +
find "$initrd_root" -type f ! -name init -exec chmod 0644 {} +
find "$initrd_root" -exec touch -h -d "@$epoch" {} +
(cd "$initrd_root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
  gzip -n -9 >"$image/initrd.img"
install -m 0644 "$vmlinuz" "$image/vmlinuz"

# --- the root filesystem: erofs + dm-verity -----------------------------------------------------

find "$root" -newermt "@$epoch" -exec touch -h -d "@$epoch" {} + 2>/dev/null || true
mkfs.erofs -zlz4hc -T"$epoch" -U"$EROFS_UUID" "$image/rootfs.img" "$root" >"$work/mkfs.log" 2>&1 ||
  { cat "$work/mkfs.log" >&2; die "mkfs.erofs failed"; }
data_bytes=$(stat -c %s "$image/rootfs.img")
[ $((data_bytes % 4096)) -eq 0 ] || truncate -s $(((data_bytes + 4095) / 4096 * 4096)) "$image/rootfs.img"
data_blocks=$(($(stat -c %s "$image/rootfs.img") / 4096))
veritysetup format --no-superblock --data-blocks="$data_blocks" --hash-offset=$((data_blocks * 4096)) \
  --data-block-size=4096 --hash-block-size=4096 --hash=sha256 --salt="$VERITY_SALT" \
  "$image/rootfs.img" "$image/rootfs.img" >"$work/verity.log" 2>&1 ||
  { cat "$work/verity.log" >&2; die "veritysetup format failed"; }
root_hash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$work/verity.log")
[[ $root_hash =~ ^[0-9a-f]{64}$ ]] || die "veritysetup printed no root hash"
log "rootfs: $data_blocks data blocks, $(($(stat -c %s "$image/rootfs.img") / 1048576)) MiB with the hash tree, root hash $root_hash"

cmdline="$CMDLINE_BASE dstack.rootfs_hash=$root_hash dstack.rootfs_data_blocks=$data_blocks dstack.rootfs_salt=$VERITY_SALT"

python3 - "$image/metadata.json" "$cmdline" "$root_hash" "$VERSION" "$dev" "$packages_json" <<'EOF'
import json, sys
path, cmdline, root_hash, version, dev, packages = sys.argv[1:]
meta = {
    "kernel": "vmlinuz", "initrd": "initrd.img", "rootfs": "rootfs.img",
    "cmdline": cmdline, "rootfs_hash": root_hash, "version": version,
    "is_dev": dev == "1", "shared_mode": "disk", "packages": json.loads(packages),
}
with open(path, "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)
    f.write("\n")
EOF

"$build/src/tdxctl/tdxctl" measure "$image" --vcpu 1 --memory 1024M --json >"$image/measurements.json" ||
  die "tdxctl measure failed"
(cd "$image" && sha256sum "${IMAGE_FILES[@]}") >"$image/sha256sum.txt"
printf '%s\n' "$recipe" >"$work/recipe"

# publish: replaces an entry that failed its check; a concurrent build of the same key that
# published first wins (same bytes)
staged="$work/entry"
mkdir -p "$staged"
mv "$image" "$work/recipe" "$staged/"
[ -e "$entry" ] && ! entry_ok "$entry" && rm -rf "$entry"
mv -T "$staged" "$entry" 2>/dev/null || entry_ok "$entry" || die "cannot publish $entry"
entry_ok "$entry" || die "built entry $entry fails its own check"
log "built $IMAGE_NAME in $(($(date +%s) - t0)) s: $entry"
entry_install "$entry"
cache_prune "$cache_root/image" 4
cache_prune "$cache_root/base" 3
