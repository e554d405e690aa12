#!/usr/bin/env bash
# The attestation path alone, without a VM, on a simulated TDX platform (make demo runs the
# whole stack: scripts/demo.sh):
#   1. initialise a simulated platform (PCK chain, collateral, TD) in a temp dir;
#   2. measure an app into RTMR3 (tdxctl extend; each event goes to the event log);
#   3. issue an RA-TLS certificate signed by a throwaway CA (tdxctl gen-ra-cert);
#   4. read the quote back out of the certificate and print its fields;
#   5. replay the event log carried in the certificate and compare with the quote's RTMRs.
# Exits non-zero when the replayed RTMRs differ from the quote. Binaries: $DSTACK_BUILD
# (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${DSTACK_BUILD:-$PWD/build}
tdxctl=$build/src/tdxctl/tdxctl
[ -x "$tdxctl" ] || { echo "demo: $tdxctl not built (run make)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dstack-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DSTACK_TEE=sim DSTACK_SIM_DIR=$work/sim

step() { printf '\n== %s\n' "$*"; }
# Value of "key": "..." / number in tdxctl's indented JSON (first match).
field() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$2" | head -1; }
short() { local v=$1; [ ${#v} -gt 32 ] && v="${v:0:16}…${v: -16}"; printf '%s' "$v"; }

step "1. simulated TDX platform"
"$tdxctl" sim init "$work/sim" | sed 's/^/   /'

step "2. measure the app into RTMR3"
cat >"$work/docker-compose.yaml" <<'YAML'
services:
  web:
    image: nginx:stable
    ports: ["8080:80"]
YAML
compose_hash=$("$tdxctl" hash sha256 -i "$work/docker-compose.yaml" -o '!' -t - )
app_id=${compose_hash:0:40}
printf '   compose-hash = sha256(docker-compose.yaml) = %s\n' "$(short "$compose_hash")"
# The guest's boot events (runtime events: each name is bound to its digest), in boot order;
# a verifier takes the app's identity only from these, before boot-mr-done.
for ev in "system-preparing:" "app-id:$app_id" "compose-hash:$compose_hash" \
          "instance-id:$(head -c 20 /dev/urandom | "$tdxctl" hex)" "boot-mr-done:"; do
  out=$("$tdxctl" extend -a "${ev%%:*}" --payload "${ev#*:}")
  printf '   %-13s %s\n' "${ev%%:*}" "${out%%:*}: $(short "${out##*: }")"
done

step "3. RA-TLS certificate signed by a throwaway CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=Demo Throwaway CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
"$tdxctl" gen-ra-cert --ca-cert "$work/ca.pem" --ca-key "$work/ca.key" \
  -c "$work/cert.pem" -k "$work/key.pem"
openssl verify -CAfile "$work/ca.pem" "$work/cert.pem" | sed 's/^/   openssl verify: /'
printf '   key file mode: %s\n' "$(stat -c %a "$work/key.pem")"

step "4. the quote inside the certificate"
"$tdxctl" ratls-info --eventlog-out "$work/eventlog.jsonl" "$work/cert.pem" >"$work/info.json"
for k in subject issuer report_data_binds_key app_id; do
  printf '   %-22s %s\n' "$k" "$(field "$k" "$work/info.json")"
done
for k in version tee_type body_type mr_td rt_mr0 rt_mr1 rt_mr2 rt_mr3 report_data fmspc; do
  printf '   quote.%-16s %s\n' "$k" "$(short "$(field "$k" "$work/info.json")")"
done
[ "$(field report_data_binds_key "$work/info.json")" = true ] ||
  { echo "demo: the quote does not bind the certificate key" >&2; exit 1; }
[ "$(field app_id "$work/info.json")" = "$app_id" ] ||
  { echo "demo: app id in the certificate differs" >&2; exit 1; }

step "5. replay of the event log carried in the certificate"
"$tdxctl" eventlog replay "$work/eventlog.jsonl" >"$work/replay.json"
printf '   %s events\n' "$(wc -l <"$work/eventlog.jsonl")"
ok=yes
for i in 0 1 2 3; do
  q=$(field "rt_mr$i" "$work/info.json"); r=$(field "rtmr$i" "$work/replay.json")
  same=yes; [ -n "$q" ] && [ "$q" = "$r" ] || { same=no; ok=no; }
  printf '   RTMR%s quote %s  replay %s  %s\n' "$i" "$(short "$q")" "$(short "$r")" "$same"
done

echo
echo "RTMR3 from quote == RTMR3 from event log replay: $ok"
[ "$ok" = yes ]
