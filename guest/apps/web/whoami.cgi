#!/bin/sh
# The container's identity as plain text.
printf 'Content-Type: text/plain\r\n\r\n'
echo "dstack demo"
echo "container: $(hostname)"
echo "app id: ${DSTACK_APP_ID:-unknown}"
