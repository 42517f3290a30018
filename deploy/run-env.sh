#!/usr/bin/env bash
# Usage: run-env.sh FILE
# The environment `make run` gives its processes (honcho -e FILE): the key the panel and tickets
# share (HELPDESK_PANEL_KEY), drawn once and kept, readable by this user alone; and the panel's
# address as a trusted proxy, so that auth throttles logins per browser address rather than
# taking every panel login for one address (HELPDESK_TRUSTED_PROXIES, docs/configuration.md).
set -euo pipefail
file=$1
mkdir -p "$(dirname "$file")"
umask 077
if [ ! -f "$file" ]; then
    printf 'HELPDESK_PANEL_KEY=%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" > "$file"
fi
if ! grep -q '^HELPDESK_TRUSTED_PROXIES=' "$file"; then
    printf 'HELPDESK_TRUSTED_PROXIES=127.0.0.1/32\n' >> "$file"
fi
