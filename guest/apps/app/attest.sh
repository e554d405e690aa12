#!/bin/sh
# dstack-demo-app's attest service: a key and a quote from tappd (dstack-attest), then HTTPS on
# :8443 with that key, serving the public results (cert.pem, quote.json) from /out.
name=${TLS_NAME:?TLS_NAME is not set}
# PID 1 gets no default signal actions: stop on TERM/INT explicitly, while retrying too
pid=
trap '[ -z "$pid" ] || kill "$pid"; exit 0' TERM INT
mkdir -p /run/tls /out
chmod 700 /run/tls
tries=0
until /bin/dstack-attest /var/run/tappd.sock "$name" /run/tls /out; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "dstack-attest: giving up"; exit 1; }
  sleep 2
done
echo "dstack-attest: serving /out over TLS on :8443 as $name"
cd /out
openssl s_server -quiet -accept 8443 -cert /run/tls/cert.pem -cert_chain /run/tls/chain.pem \
  -key /run/tls/key.pem -WWW </dev/null &
pid=$!
wait "$pid"
