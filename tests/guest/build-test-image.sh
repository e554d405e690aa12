#!/usr/bin/env bash
# Build the dstack test guest image (or take it from the cache) and place it in OUTDIR.
#
#   tests/guest/build-test-image.sh OUTDIR
#
# Produces OUTDIR/dstack-test-<version>/ with metadata.json, vmlinuz (Debian 12's 6.12 cloud
# kernel) and initrd.img (gzip'ed cpio: static busybox, the modules the kernel lacks, /init
# from tests/guest/init.sh). The last line on stdout is that folder's path; progress goes to
# stderr.
#
# The build is reproducible: fixed mtimes (SOURCE_DATE_EPOCH), sorted cpio, gzip -n. Results
# are cached in ${DSTACK_CACHE_DIR:-/var/cache/dstack}/test-guest/<recipe hash>/, the hash
# covering this script, init.sh and the packages chosen; a cached image is used only when its
# files match the SHA256SUMS recorded with it, otherwise it is built again.
#
# Environment:
#   DSTACK_CACHE_DIR               cache root (default /var/cache/dstack)
#   DSTACK_TEST_GUEST_DOWNLOADS    where the .deb files are kept (default <cache>/test-guest/downloads)
#   DSTACK_TEST_GUEST_KERNEL       kernel package (default: what linux-image-6.12-cloud-amd64 names)
#   SOURCE_DATE_EPOCH              mtime of every file in the initramfs (default below)
set -euo pipefail

usage() {
  echo "usage: $0 OUTDIR" >&2
  exit 2
}
[ $# -eq 1 ] || usage
[ -n "$1" ] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"
init_sh="$here/init.sh"
kmods_sh="$here/../../guest/kmods.sh"
# shellcheck source=../../guest/kmods.sh
. "$kmods_sh"

IMAGE_VERSION=0.1.0
IMAGE_NAME="dstack-test-$IMAGE_VERSION"
KERNEL_META=linux-image-6.12-cloud-amd64
BUSYBOX_PKG="busybox-static"
CMDLINE="console=ttyS0 panic=-1 quiet"
epoch=${SOURCE_DATE_EPOCH:-1704067200}
IMAGE_FILES=(metadata.json vmlinuz initrd.img)

# Kernel options the guest needs: "y" means built in only, "m" built in or a module (the
# module, with its dependencies, then goes into the initramfs).
KERNEL_NEEDS=(
  "BLK_DEV_INITRD y" "RD_GZIP y" "DEVTMPFS y" "SERIAL_8250_CONSOLE y" "UNIX y" "INET y"
  "PCI y" "ACPI y" "INPUT y"
  "VIRTIO_PCI m virtio_pci" "VIRTIO_CONSOLE m virtio_console" "VIRTIO_BLK m virtio_blk"
  "VIRTIO_NET m virtio_net" "PACKET m af_packet"
  "FAT_FS m fat" "VFAT_FS m vfat" "NLS_CODEPAGE_437 m nls_cp437" "NLS_ISO8859_1 m nls_iso8859_1"
  "ACPI_BUTTON m button" "INPUT_EVDEV m evdev"
)

log() { echo "build-test-image: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for tool in apt-cache apt-get dpkg-deb cpio gzip xz sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/deps.sh)"
done

outdir=$1
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cache_root=${DSTACK_CACHE_DIR:-/var/cache/dstack}/test-guest
downloads=${DSTACK_TEST_GUEST_DOWNLOADS:-$cache_root/downloads}
mkdir -p "$cache_root" "$downloads"

# --- the recipe ---------------------------------------------------------------------------------

# "name|version|sha256|depends" of the candidate version of each package named, from the local
# apt lists (no network); nothing for a package apt does not know
apt_candidates() {
  { apt-cache show --no-all-versions "$@" 2>/dev/null || true; } | awk -F': ' '
    function out() { if (p != "") print p "|" v "|" s "|" d; p = v = s = d = "" }
    /^Package: / { p = $2 } /^Version: / { v = $2 } /^SHA256: / { s = $2 } /^Depends: / { d = $2 }
    /^$/ { out() } END { out() }'
}
# the fields of package NAME in apt_candidates' output LINES: sets cand_ver, cand_sha, cand_dep
cand_pick() {
  local line
  line=$(printf '%s\n' "$2" | awk -F'|' -v n="$1" '$1 == n { print; exit }')
  IFS='|' read -r _ cand_ver cand_sha cand_dep <<<"$line"
  [ -n "$cand_ver" ] || die "package $1 not known to apt (apt-get update?)"
  [[ $cand_sha =~ ^[0-9a-f]{64}$ ]] || die "no SHA256 for $1 $cand_ver in the apt lists"
}

kernel_pkg=${DSTACK_TEST_GUEST_KERNEL:-}
cands=$(apt_candidates "${kernel_pkg:-$KERNEL_META}" "$BUSYBOX_PKG")
cand_pick "$BUSYBOX_PKG" "$cands"
busybox_ver=$cand_ver busybox_sha=$cand_sha
if [ -z "$kernel_pkg" ]; then
  cand_pick "$KERNEL_META" "$cands"
  kernel_pkg=$(grep -o 'linux-image-[^ ,|]*' <<<"$cand_dep" | head -n 1) ||
    die "$KERNEL_META names no kernel package"
  cands=$(apt_candidates "$kernel_pkg")
fi
cand_pick "$kernel_pkg" "$cands"
kernel_ver=$cand_ver kernel_sha=$cand_sha

recipe=$(
  echo "script $(sha256sum <"$script" | cut -d' ' -f1)"
  echo "init $(sha256sum <"$init_sh" | cut -d' ' -f1)"
  echo "kmods $(sha256sum <"$kmods_sh" | cut -d' ' -f1)"
  echo "kernel $kernel_pkg $kernel_ver $kernel_sha"
  echo "busybox $BUSYBOX_PKG $busybox_ver $busybox_sha"
  echo "epoch $epoch"
)
hash=$(printf '%s\n' "$recipe" | sha256sum | cut -d' ' -f1)
entry="$cache_root/$hash"

# --- the cache ----------------------------------------------------------------------------------

# 0 when ENTRY holds exactly the image files and they match its SHA256SUMS
cache_entry_ok() {
  local e=$1 f
  [ -f "$e/SHA256SUMS" ] && [ -d "$e/$IMAGE_NAME" ] || return 1
  [ "$(cut -c67- "$e/SHA256SUMS" | LC_ALL=C sort | tr '\n' ' ')" = \
    "$(printf '%s\n' "${IMAGE_FILES[@]}" | LC_ALL=C sort | tr '\n' ' ')" ] || return 1
  for f in "${IMAGE_FILES[@]}"; do
    [ -f "$e/$IMAGE_NAME/$f" ] && [ ! -L "$e/$IMAGE_NAME/$f" ] || return 1
  done
  (cd "$e/$IMAGE_NAME" && sha256sum --quiet --strict -c ../SHA256SUMS >/dev/null 2>&1)
}

# copies the cached image into OUTDIR and checks the copy; prints its path
cache_entry_install() {
  local e=$1 dst="$outdir/$IMAGE_NAME" f
  mkdir -p "$dst"
  for f in "${IMAGE_FILES[@]}"; do
    rm -f "$dst/$f"
    cp --reflink=auto "$e/$IMAGE_NAME/$f" "$dst/$f"
  done
  (cd "$dst" && sha256sum --quiet --strict -c "$e/SHA256SUMS" >/dev/null) ||
    die "copy in $dst does not match $e/SHA256SUMS"
  echo "$dst"
}

if cache_entry_ok "$entry"; then
  log "cached: $entry"
  cache_entry_install "$entry"
  exit 0
fi
[ -e "$entry" ] && log "cache entry $entry incomplete or altered: building again"

# --- the build ----------------------------------------------------------------------------------

log "building $IMAGE_NAME ($kernel_pkg $kernel_ver, $BUSYBOX_PKG $busybox_ver)"
work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# fetch PKG VERSION SHA256: the .deb, kept in the downloads folder under its hash and checked
# against the apt lists each time it is used; prints its path
deb_fetch() {
  local pkg=$1 ver=$2 sha=$3 deb="$downloads/$3.deb" tmp
  if [ -f "$deb" ] && [ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$deb"
    return 0
  fi
  rm -f "$deb"
  tmp=$(mktemp -d "$downloads/.get.XXXXXX")
  # apt's sandbox user cannot write into a root-only folder
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
    { rm -rf "$tmp"; die "apt-get download $pkg=$ver failed"; }
  set -- "$tmp"/*.deb
  [ $# -eq 1 ] && [ -f "$1" ] || { rm -rf "$tmp"; die "apt-get download $pkg=$ver: no .deb"; }
  [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$sha" ] ||
    { rm -rf "$tmp"; die "$pkg=$ver: SHA256 differs from the apt lists"; }
  mv -f "$1" "$deb"
  rm -rf "$tmp"
  echo "$deb"
}

kernel_deb=$(deb_fetch "$kernel_pkg" "$kernel_ver" "$kernel_sha")
busybox_deb=$(deb_fetch "$BUSYBOX_PKG" "$busybox_ver" "$busybox_sha")
dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$busybox_deb" "$work/busybox"
busybox="$work/busybox/bin/busybox"
[ -x "$busybox" ] || die "$BUSYBOX_PKG has no bin/busybox"

set -- "$work"/kernel/boot/vmlinuz-*
[ $# -eq 1 ] && [ -f "$1" ] || die "$kernel_pkg: expected one boot/vmlinuz-*"
vmlinuz=$1
kver=${vmlinuz##*/vmlinuz-}
config="$work/kernel/boot/config-$kver"
moddir="$work/kernel/lib/modules/$kver"
[ -f "$config" ] && [ -d "$moddir" ] || die "$kernel_pkg: no config or modules for $kver"

# Which of the needed options are modules; anything not configured stops the build.
wanted=()
for need in "${KERNEL_NEEDS[@]}"; do
  read -r opt kind mod <<<"$need"
  val=$(sed -n "s/^CONFIG_$opt=//p" "$config")
  case "$val:$kind" in
    y:*) ;;
    m:m) wanted+=("$mod") ;;
    *) die "$kernel_pkg: CONFIG_$opt is '${val:-not set}', the test guest needs it built in${mod:+ or as module $mod}" ;;
  esac
done

# modules.dep of the whole kernel, made by busybox's depmod in the unpacked tree (the kernel
# package leaves it to the installing host)
"$busybox" depmod -b "$work/kernel" "$kver" || die "depmod failed"
kmods_resolve "$moddir" "$kernel_pkg" "${wanted[@]}"

# --- the initramfs tree -------------------------------------------------------------------------

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,config,etc/acpi/PWRF,lib/modules,www}
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"

install -m 0755 "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
  case "$applet" in
    busybox | "" | */*) ;;
    *) ln -s busybox "$root/bin/$applet" ;;
  esac
done < <("$busybox" --list | LC_ALL=C sort)

# busybox insmod hands the file to init_module(): store the modules decompressed
: >"$root/etc/modules.load"
for m in "${order[@]}"; do
  src="$moddir/${mod_path[$m]}"
  case "$src" in
    *.ko.xz) xz -dc "$src" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst | *.ko.gz) die "module $m: compression not handled: $src" ;;
    *) cp "$src" "$root/lib/modules/$m.ko" ;;
  esac
  echo "$m.ko" >>"$root/etc/modules.load"
done
log "modules: ${order[*]:-none}"

install -m 0755 "$init_sh" "$root/init"

cat >"$root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc's hook: configure the leased address and the default route.
case "$1" in
  bound | renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    if [ -n "$router" ]; then
      while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
      for r in $router; do
        route add default gw "$r" dev "$interface"
        break
      done
    fi
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
  deconfig)
    ifconfig "$interface" 0.0.0.0
    ;;
esac
exit 0
EOF
chmod 0755 "$root/etc/udhcpc.script"

# acpid runs /etc/acpi/<event>/<code> for an event; PWRF/00000080 is the power button
cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# The power button: /init sends shutdown.progress to the host and powers off.
kill -USR1 1
EOF
chmod 0755 "$root/etc/acpi/PWRF/00000080"

cat >"$root/etc/image" <<EOF
name=$IMAGE_NAME
kernel=$kernel_pkg $kernel_ver
busybox=$BUSYBOX_PKG $busybox_ver
recipe=$hash
EOF

# --- reproducible archive ----------------------------------------------------------------------

chmod 0755 "$root"
find "$root" -type d -exec chmod 0755 {} +
chmod 1777 "$root/tmp"
find "$root" -type f ! -perm -u+x -exec chmod 0644 {} +
find "$root" -type f -perm -u+x -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$epoch" {} +

image="$work/$IMAGE_NAME"
mkdir -p "$image"
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
  gzip -n -9 >"$image/initrd.img"
install -m 0644 "$vmlinuz" "$image/vmlinuz"

cat >"$image/metadata.json" <<EOF
{"kernel":"vmlinuz","initrd":"initrd.img","cmdline":"$CMDLINE","version":"$IMAGE_VERSION","shared_mode":"disk","is_dev":true}
EOF

(cd "$image" && sha256sum "${IMAGE_FILES[@]}") >"$work/SHA256SUMS"
printf '%s\n' "$recipe" >"$work/recipe"

# Publish: the new entry replaces one that failed the check; a concurrent build that published
# the same recipe first wins (its files are the same bytes).
staged="$work/entry"
mkdir -p "$staged"
mv "$image" "$work/SHA256SUMS" "$work/recipe" "$staged/"
if [ -e "$entry" ] && ! cache_entry_ok "$entry"; then
  rm -rf "$entry"
fi
if ! mv -T "$staged" "$entry" 2>/dev/null; then
  cache_entry_ok "$entry" || die "cannot publish $entry"
fi
cache_entry_ok "$entry" || die "built entry $entry fails its own check"
log "built: $entry"
cache_entry_install "$entry"
