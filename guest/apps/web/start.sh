#!/bin/sh
# dstack-demo-web: a page naming this container, served by busybox httpd on :8080.
# /cgi-bin/whoami answers the same as plain text, read at each request.
host=$(hostname)
mkdir -p /www
# /data (when a volume is mounted there) keeps the time of the first start across reboots:
# /first shows it, so a test can see the data survived
if [ -d /data ]; then
  [ -s /data/first ] || echo "$(date -u +%s)-$(od -An -N8 -tx1 /dev/urandom | tr -d " \n")" >/data/first
  cp /data/first /www/first
fi
cat >/www/index.html <<HTML
<!doctype html>
<html><head><title>dstack demo</title></head>
<body><h1>dstack demo</h1>
<p>container: <b>$host</b></p>
<p>app id: <b>${DSTACK_APP_ID:-unknown}</b></p>
<p><a href="/cgi-bin/whoami">whoami</a></p>
</body></html>
HTML
echo "dstack-demo-web: serving on :8080 as $host"
# PID 1 gets no default signal actions: stop on TERM/INT explicitly
httpd -f -v -p 8080 -h /www &
pid=$!
trap 'kill $pid; exit 0' TERM INT
wait $pid
