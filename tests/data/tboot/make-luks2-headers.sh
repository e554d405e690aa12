#!/bin/sh
# Regenerates the LUKS headers the tboot unit tests read (luks2-*.bin, luks1.bin): each is the
# first 64 KiB of a sparse file formatted by cryptsetup with a throw-away key file. Only needed
# when the policy in src/tboot/luks2.c changes; the tests themselves never run cryptsetup.
# Usage: tests/data/tboot/make-luks2-headers.sh [OUTDIR]   (default: this script's directory)
set -eu
out=${1:-$(dirname "$0")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 64 /dev/urandom >"$tmp/key"
head -c 64 /dev/urandom >"$tmp/key2"

# What tboot formats with (the policy's reference header; cryptsetup picks 4096-byte sectors on a file).
fmt() { # name, extra luksFormat options...
  name=$1
  shift
  truncate -s 32M "$tmp/$name.img"
  cryptsetup luksFormat --batch-mode --disable-locks --key-file "$tmp/key" "$@" "$tmp/$name.img"
}
tboot_opts="--type luks2 --offset 32768 --cipher aes-xts-plain64 --key-size 512 --pbkdf pbkdf2 --hash sha256 --pbkdf-force-iterations 1000"

# shellcheck disable=SC2086
fmt good $tboot_opts
# shellcheck disable=SC2086
fmt good512 $tboot_opts --sector-size 512
fmt argon2 --type luks2 --offset 32768 --cipher aes-xts-plain64 --key-size 512 --pbkdf argon2id \
  --pbkdf-force-iterations 4 --pbkdf-memory 32 --pbkdf-parallel 1 --hash sha256
# shellcheck disable=SC2086
fmt twokeys $tboot_opts
cryptsetup luksAddKey --batch-mode --disable-locks --key-file "$tmp/key" --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 "$tmp/twokeys.img" "$tmp/key2"
fmt luks1 --type luks1 --cipher aes-xts-plain64 --key-size 512 --hash sha256 --iter-time 1

for n in good good512 argon2 twokeys; do
  head -c 65536 "$tmp/$n.img" >"$out/luks2-$n.bin"
done
head -c 65536 "$tmp/luks1.img" >"$out/luks1.bin"
