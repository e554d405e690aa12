# Kernel modules for an initramfs, shared by guest/build-image.sh and
# tests/guest/build-test-image.sh (sourced; defines functions only).
#
#   kmods_resolve MODDIR KERNEL_PKG NAME...
#
# reads MODDIR/modules.dep and fills the global arrays
#   mod_path[name]  the module's path relative to MODDIR (as modules.dep gives it)
#   order           every module needed for NAME..., each after its dependencies
# Names use '_' (modules.dep's file names may use '-'). A name the kernel does not have is a
# fatal error naming KERNEL_PKG (die must be defined by the caller).

kmods_name() {
  local n=${1##*/}
  n=${n%%.ko*}
  printf '%s' "${n//-/_}"
}

kmods_resolve() {
  local moddir=$1 kernel_pkg=$2 line path m
  shift 2
  declare -gA mod_path=() mod_deps=() mod_seen=()
  order=()
  while IFS= read -r line; do
    path=${line%%:*}
    m=$(kmods_name "$path")
    mod_path[$m]=$path
    mod_deps[$m]=${line#*:}
  done <"$moddir/modules.dep"
  for m in "$@"; do
    kmods_add "$m" "$kernel_pkg"
  done
}

# load order: each module after its dependencies (modules.dep lists the deepest last)
kmods_add() {
  local name=$1 kernel_pkg=$2 deps=() i
  [ -z "${mod_seen[$name]:-}" ] || return 0
  [ -n "${mod_path[$name]:-}" ] || die "module $name not in $kernel_pkg"
  mod_seen[$name]=1
  read -ra deps <<<"${mod_deps[$name]}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
    kmods_add "$(kmods_name "${deps[i]}")" "$kernel_pkg"
  done
  order+=("$name")
}
