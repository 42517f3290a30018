#!/usr/bin/env bash
# Usage: run-env.sh FILE
# The environment `make run` gives its processes (honcho -e FILE): the key the panel and tickets
# share (HELPDESK_PANEL_KEY), drawn once and kept, readable by this user alone.
set -euo pipefail
file=$1
[ -f "$file" ] && exit 0
mkdir -p "$(dirname "$file")"
umask 077
printf 'HELPDESK_PANEL_KEY=%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" > "$file"
