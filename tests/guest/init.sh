#!/bin/sh
# /init of the dstack test guest (busybox sh, PID 1).
#
# Boots the way teepod's guests do, in miniature: mounts the read-only config disk labelled
# DSTACKSHR, talks to teepod over the host channel (virtio-serial port org.dstack.host.0, one
# JSON object per line, docs/teepod.md), brings up eth0 by DHCP, serves a page on :8080, and
# powers off cleanly on the ACPI power button. PID 1 must never exit (the kernel would panic),
# so every step that fails is reported and the guest keeps running.

PATH=/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec </dev/console >/dev/console 2>&1

say() { echo "test-guest: $*"; }

# Modules the kernel does not build in, dependencies first (written by build-test-image.sh).
while read -r mod; do
  [ -n "$mod" ] || continue
  insmod "/lib/modules/$mod" || say "warning: insmod $mod failed"
done </etc/modules.load

say init

# --- the host channel ------------------------------------------------------------------------

HOST_PORT=
HOST_OK=0
RPC_ID=0

# The vportNpM whose name is org.dstack.host.0; the name arrives from QEMU shortly after the
# port, so look for up to 3 s. Creates the device node when devtmpfs has not (yet).
host_port_find() {
  tries=0
  while [ "$tries" -lt 30 ]; do
    for d in /sys/class/virtio-ports/vport*; do
      [ -r "$d/name" ] || continue
      [ "$(cat "$d/name")" = org.dstack.host.0 ] || continue
      node=/dev/${d##*/}
      if [ ! -c "$node" ]; then
        IFS=: read -r major minor <"$d/dev" || return 1
        mknod "$node" c "$major" "$minor" || return 1
      fi
      HOST_PORT=$node
      return 0
    done
    sleep 0.1
    tries=$((tries + 1))
  done
  return 1
}

# JSON string content: backslashes and quotes escaped (payloads here hold no control bytes).
json_esc() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

# notify EVENT PAYLOAD: one Notify request, then its reply. A write that blocks for 5 s (no
# host attached) disables the channel for the rest of the boot; a reply is awaited 5 s.
notify() {
  [ "$HOST_OK" = 1 ] || return 1
  RPC_ID=$((RPC_ID + 1))
  line="{\"id\":$RPC_ID,\"method\":\"Notify\",\"params\":{\"event\":\"$1\",\"payload\":\"$(json_esc "$2")\"}}"
  if ! timeout -s KILL 5 sh -c 'printf "%s\n" "$1" >&3' notify "$line"; then
    say "warning: host channel: write failed, channel disabled"
    HOST_OK=0
    return 1
  fi
  n=0
  while [ "$n" -lt 8 ]; do
    if ! read -t 5 -r reply <&3; then
      say "warning: host channel: no reply to request $RPC_ID"
      return 1
    fi
    # whitespace between JSON tokens is allowed: match on the line without it
    compact=$(printf '%s' "$reply" | tr -d ' \t\r')
    case "$compact" in
      *"\"id\":$RPC_ID,"* | *"\"id\":$RPC_ID}"*)
        case "$compact" in
          *'"error":'*) say "warning: host channel: $1 refused: $reply"; return 1 ;;
        esac
        return 0 ;;
    esac
    n=$((n + 1)) # a late reply to an earlier request: skip it
  done
  return 1
}

# rpc METHOD PARAMS: one request; its reply line is left in RPC_REPLY. Fails on an error reply.
RPC_REPLY=
rpc() {
  [ "$HOST_OK" = 1 ] || return 1
  RPC_ID=$((RPC_ID + 1))
  line="{\"id\":$RPC_ID,\"method\":\"$1\",\"params\":$2}"
  timeout 5 sh -c 'printf "%s\n" "$1" >&3' rpc "$line" || return 1
  n=0
  while [ "$n" -lt 8 ]; do
    read -t 10 -r RPC_REPLY <&3 || return 1
    case "$RPC_REPLY" in
      *"\"id\":$RPC_ID,"*)
        case "$RPC_REPLY" in *'"error":'*) return 1 ;; esac
        return 0 ;;
    esac
    n=$((n + 1))
  done
  return 1
}

# field NAME: the string value of NAME in RPC_REPLY
field() {
  printf '%s' "$RPC_REPLY" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}

progress() {
  say "progress: $1"
  notify boot.progress "$1"
}

boot_error() {
  say "error: $1"
  notify boot.error "$1"
}

if host_port_find && exec 3<>"$HOST_PORT"; then
  HOST_OK=1
  say "host channel on $HOST_PORT"
else
  say "warning: no host channel (virtio-serial port org.dstack.host.0 not found)"
fi

# The power button: acpid runs /etc/acpi/PWRF/00000080, which sends SIGUSR1 here.
stopping() {
  say "power button: stopping"
  notify shutdown.progress stopping
  sync
  poweroff -f
}
trap stopping USR1

progress init

# --- the config disk ---------------------------------------------------------------------------

disk=
tries=0
while [ "$tries" -lt 30 ]; do
  disk=$(findfs LABEL=DSTACKSHR 2>/dev/null) && break
  disk=
  sleep 0.1
  tries=$((tries + 1))
done

compose_sha=
if [ -z "$disk" ]; then
  boot_error "config disk (label DSTACKSHR) not found"
elif ! mount -t vfat -o ro,codepage=437,iocharset=iso8859-1 "$disk" /config; then
  boot_error "config disk $disk: mount failed"
else
  progress "config disk mounted"
  if [ -f /config/app-compose.json ]; then
    compose_sha=$(sha256sum /config/app-compose.json | cut -d' ' -f1)
    say "compose sha256 $compose_sha"
    instance_id=
    if [ -f /config/.instance_info ]; then
      instance_id=$(sed -n 's/.*"instance_id" *: *"\([0-9a-fA-F]\{40\}\)".*/\1/p' \
        /config/.instance_info | head -n 1)
    fi
    if [ -z "$instance_id" ]; then
      instance_id=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
    fi
    say "instance id $instance_id"
    notify instance.info "{\"compose_sha256\":\"$compose_sha\",\"instance_id\":\"$instance_id\"}"
  else
    boot_error "config disk: app-compose.json missing"
  fi
fi

# --- the network -------------------------------------------------------------------------------

ip link set lo up
tries=0
while [ ! -e /sys/class/net/eth0 ] && [ "$tries" -lt 30 ]; do
  sleep 0.1
  tries=$((tries + 1))
done
if ip link set eth0 up && udhcpc -i eth0 -f -q -n -t 5 -T 1 -s /etc/udhcpc.script; then
  say "eth0: $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
  progress "network up"
else
  boot_error "eth0: no DHCP lease"
fi

# --- the app: a page on :8080 ------------------------------------------------------------------

mkdir -p /www
{
  echo "<!doctype html><title>dstack-test-guest</title>"
  echo "<p>dstack-test-guest</p>"
  echo "<p>compose_sha256 ${compose_sha:-none}</p>"
} >/www/index.html
if httpd -p 8080 -h /www; then
  progress "app started"
else
  boot_error "httpd did not start"
fi

# --- simulated TDX: the host plays the TDX module; publish a quote for the tests --------------

if rpc Info '{}' && [ "$(field platform)" = sim ]; then
  # one runtime event on RTMR3, then a quote over fixed report data, and the boot event log
  digest=$(printf 'dstack-test-guest' | sha512sum | cut -c1-96)
  rd=$(printf 'test-guest' | od -An -tx1 | tr -d ' \n')
  if rpc Tdx.Extend "{\"index\":3,\"digest\":\"$digest\"}" &&
     rpc Tdx.Quote "{\"report_data\":\"$rd\"}"; then
    field quote >/www/quote.hex
    echo "$digest" >/www/rtmr3-digest.hex
    rpc Tdx.EventLog '{}' && field ccel >/www/ccel.b64
    # the host never lets a guest touch RTMR0-2
    if rpc Tdx.Extend "{\"index\":2,\"digest\":\"$digest\"}"; then
      echo extended >/www/rtmr2-extend.txt
    else
      echo refused >/www/rtmr2-extend.txt
    fi
    say "simulated TDX: quote published"
  else
    boot_error "simulated TDX: quote failed"
  fi
fi

# acpid reads the input devices present when it starts: the power button is one of them.
if ls /dev/input/event* >/dev/null 2>&1; then
  acpid -d -c /etc/acpi &
else
  say "warning: no input devices; the power button will not work"
fi

progress "done"

# PID 1 stays; the trap above runs between two sleeps.
while :; do
  sleep 1
done
