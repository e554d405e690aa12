# Shared by guest/build-image.sh and guest/apps/build-app-images.sh (sourced): apt restricted to
# the Debian archive (the host may list other repositories) with an empty package database, so
# a resolution is what a fresh tree gets, and .deb downloads checked against the apt lists.
# The caller defines die() and sets $debs (the .deb cache folder).

GUEST_SUITE=bookworm
GUEST_MIRRORS=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)

# sets APT_DIR (remove it when done) and APT_OPTS
apt_setup() {
  APT_DIR=$(mktemp -d)
  printf '%s\n' "${GUEST_MIRRORS[@]}" >"$APT_DIR/sources.list"
  : >"$APT_DIR/status"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::status=$APT_DIR/status" -o "Debug::NoLocking=1"
    -o "APT::Install-Recommends=false" -o "Dir::Cache::pkgcache=$APT_DIR/pkgcache.bin"
    -o "Dir::Cache::srcpkgcache=$APT_DIR/srcpkgcache.bin")
}

# apt_resolve PKG...: "name=version" of every package a fresh install of PKG... brings, sorted
apt_resolve() {
  local out
  out=$(apt-get "${APT_OPTS[@]}" -s install "$@" 2>&1) ||
    die "apt cannot resolve $*: $(tail -n 5 <<<"$out")"
  awk '$1 == "Inst" { v = $3; gsub(/[()]/, "", v); print $2 "=" v }' <<<"$out" | LC_ALL=C sort -u
}

# apt_field PKG[=VERSION] FIELD: the field of that package in the apt lists
apt_field() {
  apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null | sed -n "s/^$2: //p" | head -n 1
}

# deb_fetch PKG VERSION SHA256: the .deb from the cache, downloaded once and checked against the
# SHA256 of the apt lists each time it is used; prints its path
deb_fetch() {
  local pkg=$1 ver=$2 sha=$3 f tmp
  for f in "$debs/$sha.deb" "$debs/${pkg}_${ver//:/%3a}_"*.deb; do
    [ -f "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$sha" ] && { echo "$f"; return 0; }
  done
  tmp=$(mktemp -d "$debs/.get.XXXXXX")
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${APT_OPTS[@]}" "$pkg=$ver" >&2) ||
    { rm -rf "$tmp"; die "apt-get download $pkg=$ver failed"; }
  set -- "$tmp"/*.deb
  [ $# -eq 1 ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$sha" ] ||
    { rm -rf "$tmp"; die "$pkg=$ver: not one .deb with the SHA256 of the apt lists"; }
  mv -f "$1" "$debs/$sha.deb"
  rm -rf "$tmp"
  echo "$debs/$sha.deb"
}

# deb_unpack_set DIR NAME=VERSION...: unpacks each package (no maintainer scripts) into DIR
deb_unpack_set() {
  local dir=$1 shas line name ver sha n=0
  shift
  shas=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$@" 2>/dev/null | awk -F': ' '
    /^Package: / { p = $2 } /^Version: / { v = $2 } /^SHA256: / { print p "=" v " " $2 }')
  while read -r line; do
    name=${line%%=*}
    ver=${line#*=}
    ver=${ver%% *}
    sha=${line##* }
    [[ $sha =~ ^[0-9a-f]{64}$ ]] || die "no SHA256 for $name=$ver in the apt lists"
    dpkg-deb -x "$(deb_fetch "$name" "$ver" "$sha")" "$dir"
    n=$((n + 1))
  done <<<"$shas"
  [ "$n" -eq $# ] || die "the apt lists describe $n of the $# packages asked for"
}
